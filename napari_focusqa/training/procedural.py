"""Procedural in-focus fluorescence-like images, one generator per stain class.

Every generator returns a float32 ``(H, W)`` image scaled to roughly [0, 1] with a dark,
slightly uneven background, sharp (diffraction-limited) structures and empty regions, so that
training can run without any real data. Stains: nucleus, actin, tubulin, mitochondria,
membrane, puncta (and "generic", a random mix of the others).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

STAINS = ("nucleus", "actin", "tubulin", "mitochondria", "membrane", "puncta")


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    n = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return n / (n.std() + 1e-8)


def _cells(rng: np.random.Generator, shape: tuple[int, int], n: int) -> np.ndarray:
    """Cell centres, clustered so that part of the field stays empty."""
    h, w = shape
    n_clusters = max(1, n // int(rng.integers(3, 8)))
    centres = rng.uniform((0, 0), (h, w), size=(n_clusters, 2))
    idx = rng.integers(0, n_clusters, size=n)
    spread = rng.uniform(0.05, 0.2) * min(h, w)
    pts = centres[idx] + rng.normal(0, spread, size=(n, 2))
    return np.clip(pts, 0, [h - 1, w - 1])


def _splat(img: np.ndarray, y: np.ndarray, x: np.ndarray, v: np.ndarray | float) -> None:
    """Add values at sub-pixel positions with bilinear weights."""
    h, w = img.shape
    y0 = np.floor(y).astype(np.int64)
    x0 = np.floor(x).astype(np.int64)
    fy = y - y0
    fx = x - x0
    v = np.broadcast_to(np.asarray(v, dtype=np.float32), y.shape)
    for dy, dx, wt in (
        (0, 0, (1 - fy) * (1 - fx)),
        (0, 1, (1 - fy) * fx),
        (1, 0, fy * (1 - fx)),
        (1, 1, fy * fx),
    ):
        yy = y0 + dy
        xx = x0 + dx
        ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        np.add.at(img, (yy[ok], xx[ok]), (v * wt)[ok])


def _curve(
    rng: np.random.Generator, start: np.ndarray, length: float, curvature: float, step: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random curve (persistent random walk) sampled every ``step`` px."""
    n = max(2, int(length / step))
    theta = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, curvature * np.sqrt(step), n))
    y = start[0] + np.cumsum(step * np.sin(theta))
    x = start[1] + np.cumsum(step * np.cos(theta))
    return y, x


def _psf_blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """In-focus optical blur (Gaussian approximation of a ~3 px Airy disc)."""
    return ndimage.gaussian_filter(img, rng.uniform(0.6, 1.0))


def nuclei(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    img = np.zeros(shape, np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    scale = rng.uniform(0.5, 2.0)
    n = int(rng.integers(8, 45) / scale)
    tex = _smooth_noise(rng, shape, rng.uniform(1.0, 3.0))
    for cy, cx in _cells(rng, shape, max(n, 2)):
        a = rng.uniform(6, 16) * scale
        b = a * rng.uniform(0.6, 1.0)
        t = rng.uniform(0, np.pi)
        y0, y1 = int(max(cy - a - 3, 0)), int(min(cy + a + 4, h))
        x0, x1 = int(max(cx - a - 3, 0)), int(min(cx + a + 4, w))
        dy = yy[y0:y1, x0:x1] - cy
        dx = xx[y0:y1, x0:x1] - cx
        u = (dx * np.cos(t) + dy * np.sin(t)) / a
        v = (-dx * np.sin(t) + dy * np.cos(t)) / b
        r = np.sqrt(u * u + v * v)
        inside = np.clip((1.0 - r) * a, 0, 1)  # ~1 px soft edge
        bright = rng.uniform(0.3, 1.0)
        body = bright * (0.75 + 0.25 * tex[y0:y1, x0:x1]) * inside
        img[y0:y1, x0:x1] = np.maximum(img[y0:y1, x0:x1], body)
        k = int(rng.integers(0, 6))
        if k:  # chromocentres / nucleoli
            ang = rng.uniform(0, 2 * np.pi, k)
            rad = rng.uniform(0, 0.7, k) * b
            _splat(img, cy + rad * np.sin(ang), cx + rad * np.cos(ang), bright * rng.uniform(1, 3, k))
    return _psf_blur(img, rng)


def actin(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    img = np.zeros(shape, np.float32)
    for cy, cx in _cells(rng, shape, int(rng.integers(3, 14))):
        theta = rng.uniform(0, np.pi)
        size = rng.uniform(20, 60)
        for _ in range(int(rng.integers(10, 40))):  # stress fibres: long, nearly straight
            off = rng.normal(0, size / 2, 2)
            ln = rng.uniform(0.5, 1.5) * size
            tt = theta + rng.normal(0, 0.15)
            s = np.linspace(-ln / 2, ln / 2, int(ln * 2))
            y = cy + off[0] + s * np.sin(tt)
            x = cx + off[1] + s * np.cos(tt)
            _splat(img, y, x, rng.uniform(0.2, 1.0))
        ang = np.linspace(0, 2 * np.pi, int(size * 12))  # cortical actin ring
        rr = size * (1 + 0.15 * np.sin(3 * ang + rng.uniform(0, 6)))
        _splat(img, cy + rr * np.sin(ang), cx + rr * np.cos(ang), rng.uniform(0.3, 0.8))
    img += 0.05 * np.clip(_smooth_noise(rng, shape, 2.0), 0, None) * (img > 0)
    return _psf_blur(img, rng)


def tubulin(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    img = np.zeros(shape, np.float32)
    for cy, cx in _cells(rng, shape, int(rng.integers(3, 12))):
        size = rng.uniform(30, 90)
        for _ in range(int(rng.integers(20, 60))):  # curved microtubules radiating from the MTOC
            y, x = _curve(rng, np.array([cy, cx]) + rng.normal(0, 3, 2), rng.uniform(0.4, 1.2) * size, 0.06)
            _splat(img, y, x, rng.uniform(0.2, 0.6))
        _splat(img, np.array([cy]), np.array([cx]), 5.0)
    return _psf_blur(img, rng)


def mitochondria(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    img = np.zeros(shape, np.float32)
    for cy, cx in _cells(rng, shape, int(rng.integers(4, 14))):
        size = rng.uniform(15, 45)
        for _ in range(int(rng.integers(20, 80))):  # short tubular segments around the nucleus
            r = size * np.sqrt(rng.uniform(0.15, 1.0))
            a = rng.uniform(0, 2 * np.pi)
            y, x = _curve(rng, np.array([cy + r * np.sin(a), cx + r * np.cos(a)]), rng.uniform(3, 20), 0.3)
            v = rng.uniform(0.3, 1.0)
            _splat(img, y, x, v)
            _splat(img, y + 0.7, x, v)
            _splat(img, y, x + 0.7, v)
    return _psf_blur(img, rng)


def membrane(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    pts = _cells(rng, shape, int(rng.integers(10, 60)))
    yy, xx = np.mgrid[0:h, 0:w]
    d = np.sqrt((yy[None] - pts[:, 0, None, None]) ** 2 + (xx[None] - pts[:, 1, None, None]) ** 2)
    d.sort(axis=0)
    edge = d[1] - d[0] if len(pts) > 1 else np.full(shape, 99.0)
    width = rng.uniform(0.7, 1.5)
    img = np.exp(-0.5 * (edge / width) ** 2).astype(np.float32)
    reach = rng.uniform(30, 80)
    img *= (d[0] < reach).astype(np.float32)  # cells end: empty background beyond
    img *= np.clip(0.7 + 0.3 * _smooth_noise(rng, shape, 4.0), 0.1, None)
    return _psf_blur(img, rng)


def puncta(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    img = np.zeros(shape, np.float32)
    for cy, cx in _cells(rng, shape, int(rng.integers(4, 16))):
        size = rng.uniform(10, 40)
        k = int(rng.integers(10, 80))
        y = cy + rng.normal(0, size / 2, k)
        x = cx + rng.normal(0, size / 2, k)
        _splat(img, y, x, rng.uniform(0.5, 3.0, k))
    img = ndimage.gaussian_filter(img, rng.uniform(0.3, 1.0))
    return _psf_blur(img, rng)


def sparse(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Sparse objects on a dark field: sub-resolution spots, beads (0.5-3 px discs) and
    puncta clusters, 0.02-1 % of the pixels occupied, most of the field empty."""
    h, w = shape
    img = np.zeros(shape, np.float32)
    n_spots = int(rng.integers(3, max(4, int(h * w * rng.uniform(2e-5, 1e-3)))))
    if rng.random() < 0.5:  # clustered (puncta in a few cells) or uniform (beads on glass)
        pts = _cells(rng, shape, n_spots)
    else:
        pts = rng.uniform((0, 0), (h - 1, w - 1), size=(n_spots, 2))
    _splat(img, pts[:, 0], pts[:, 1], rng.uniform(0.3, 1.0, n_spots) * rng.uniform(1.0, 4.0))
    n_beads = int(rng.integers(0, 12))
    if n_beads:
        yy, xx = np.mgrid[0:h, 0:w]
        for cy, cx in rng.uniform((0, 0), (h - 1, w - 1), size=(n_beads, 2)):
            r = rng.uniform(0.5, 3.0)
            img += rng.uniform(0.5, 1.5) * ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r)
    return _psf_blur(img, rng)


def generate_sparse(rng: np.random.Generator, shape: tuple[int, int] = (384, 384)) -> np.ndarray:
    """One in-focus sparse image (:func:`sparse`), brightest objects about 1, background
    0-1 % of that."""
    img = sparse(rng, shape)
    img = img / (img.max() + 1e-6) * rng.uniform(0.5, 1.0)
    bg = rng.uniform(0.0, 0.01) * (1.0 + 0.3 * _smooth_noise(rng, shape, 40.0))
    return np.clip(img + np.clip(bg, 0, None), 0, None).astype(np.float32)


GENERATORS: dict[str, Callable[[np.random.Generator, tuple[int, int]], np.ndarray]] = {
    "nucleus": nuclei,
    "actin": actin,
    "tubulin": tubulin,
    "mitochondria": mitochondria,
    "membrane": membrane,
    "puncta": puncta,
}


def generate(
    stain: str, rng: np.random.Generator, shape: tuple[int, int] = (384, 384)
) -> np.ndarray:
    """One in-focus image of ``stain`` (``generic`` mixes two random stains).

    Parameters
    ----------
    stain : str
        A key of :data:`GENERATORS` or ``"generic"``.
    rng : numpy.random.Generator
        Source of randomness (the image is a deterministic function of its state).
    shape : (int, int)
        Image size in pixels.

    Returns
    -------
    ndarray
        float32 image, background about 0.02, brightest structures about 1.
    """
    if stain == "generic":
        a, b = rng.choice(len(STAINS), size=2, replace=False)
        img = generate(STAINS[a], rng, shape) + rng.uniform(0.2, 1.0) * generate(STAINS[b], rng, shape)
    else:
        img = GENERATORS[stain](rng, shape)
    img = img / (np.percentile(img, 99.8) + 1e-6)
    img *= rng.uniform(0.5, 1.0)
    bg = rng.uniform(0.0, 0.05) * (1.0 + 0.3 * _smooth_noise(rng, shape, 40.0))
    return np.clip(img + np.clip(bg, 0, None), 0, None).astype(np.float32)
