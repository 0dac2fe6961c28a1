"""An embedded, procedurally generated multi-stain z-stack (no downloads needed).

Two channels of a synthetic cell field — "Hoechst" nuclei and "Phalloidin" actin
filaments — defocused with a geometric-optics disk PSF whose diameter grows linearly
with |z - z_focus| plus a small Gaussian core, then Poisson noise with a camera offset.
The actin channel's focus is one slice above the nuclei's (a chromatic shift), so the
per-channel best-focus finder has something to find.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_focusqa.io.reader import ImageData

SAMPLE_Z_STEP_UM = 0.5
SAMPLE_PIXEL_UM = 0.325
SAMPLE_FOCUS = (10, 11)
SAMPLE_CHANNELS = ("Hoechst 33342", "Phalloidin-488")


def _gauss_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(img, sigma, mode="reflect") if sigma > 0 else img


def _nuclei(rng: np.random.Generator, shape: tuple[int, int], n: int) -> np.ndarray:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros(shape, np.float32)
    for _ in range(n):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        a, b = rng.uniform(9, 16), rng.uniform(7, 12)
        t = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = (dx * np.cos(t) + dy * np.sin(t)) / a
        v = (-dx * np.sin(t) + dy * np.cos(t)) / b
        r2 = u * u + v * v
        out += np.where(r2 < 1, rng.uniform(0.6, 1.0) * (0.7 + 0.3 * (1 - r2)), 0)
    texture = _gauss_blur(rng.random(shape).astype(np.float32), 1.2)
    return out * (0.75 + 0.5 * texture)


def _filaments(rng: np.random.Generator, shape: tuple[int, int], n: int) -> np.ndarray:
    h, w = shape
    out = np.zeros(shape, np.float32)
    for _ in range(n):
        y, x = rng.uniform(0, h), rng.uniform(0, w)
        ang = rng.uniform(0, 2 * np.pi)
        length = int(rng.uniform(40, 160))
        val = rng.uniform(0.4, 1.0)
        for _ in range(length):
            ang += rng.normal(0, 0.05)
            y, x = y + np.sin(ang), x + np.cos(ang)
            iy, ix = int(y), int(x)
            if 0 <= iy < h and 0 <= ix < w:
                out[iy, ix] += val
    return _gauss_blur(out, 0.7) * 3.0


def disk_psf(diameter_px: float, size: int | None = None) -> np.ndarray:
    """Normalised disk (geometric defocus) convolved with a small Gaussian core."""
    r = max(diameter_px / 2.0, 0.5)
    size = size or int(2 * np.ceil(r) + 7)
    c = (size - 1) / 2
    yy, xx = np.mgrid[0:size, 0:size] - c
    # anti-aliased disk: 4x supersampling
    sub = np.zeros((size, size))
    for oy in (-0.375, -0.125, 0.125, 0.375):
        for ox in (-0.375, -0.125, 0.125, 0.375):
            sub += ((yy + oy) ** 2 + (xx + ox) ** 2) <= r * r
    k = _gauss_blur(sub, 0.8)
    return k / k.sum()


def _fft_convolve(img: np.ndarray, psf: np.ndarray) -> np.ndarray:
    from scipy.signal import fftconvolve

    pad = psf.shape[0] // 2 + 1
    big = np.pad(img, pad, mode="reflect")
    return fftconvolve(big, psf, mode="same")[pad:-pad, pad:-pad]


@dataclass(frozen=True)
class SampleSpec:
    shape: tuple[int, int] = (252, 336)
    n_slices: int = 21
    blur_px_per_slice: float = 2.4
    seed: int = 7


def make_sample_stack(spec: SampleSpec | None = None) -> ImageData:
    """The embedded sample as :class:`ImageData` (1, Z, 2, Y, X) uint16 with metadata."""
    spec = spec or SampleSpec()
    rng = np.random.default_rng(spec.seed)
    objects = [_nuclei(rng, spec.shape, 14), _filaments(rng, spec.shape, 60)]
    brightness = (1800.0, 1200.0)
    background, offset = 60.0, 100.0
    out = np.empty((spec.n_slices, 2, *spec.shape), dtype=np.uint16)
    for c, (obj, focus) in enumerate(zip(objects, SAMPLE_FOCUS)):
        for z in range(spec.n_slices):
            d = abs(z - focus) * spec.blur_px_per_slice
            blurred = _fft_convolve(obj, disk_psf(d)) if d > 0 else _gauss_blur(obj, 0.8)
            lam = np.clip(blurred, 0, None) * brightness[c] + background
            out[z, c] = np.clip(rng.poisson(lam) + offset, 0, 65535)
    return ImageData(
        data=out[None],
        path=None,
        channel_names=list(SAMPLE_CHANNELS),
        z_step_um=SAMPLE_Z_STEP_UM,
        pixel_size_um=SAMPLE_PIXEL_UM,
        original_axes="ZCYX",
        metadata={"info": "FocusQA procedural sample: nuclei + actin, 21 slices"},
    )


def napari_sample() -> list[tuple]:
    """npe2 sample-data command: one image layer per channel, scaled in µm."""
    img = make_sample_stack()
    scale = (img.z_step_um, img.pixel_size_um, img.pixel_size_um)
    layers = []
    colormaps = ("cyan", "magenta")
    for c, name in enumerate(img.channel_names):
        layers.append(
            (
                img.data[0, :, c],
                {
                    "name": name,
                    "scale": scale,
                    "colormap": colormaps[c % 2],
                    "blending": "additive",
                    "metadata": {
                        "focusqa": {
                            "channel_index": c,
                            "channel_name": name,
                            "z_step_um": img.z_step_um,
                            "pixel_size_um": img.pixel_size_um,
                            "source": "embedded-sample",
                        }
                    },
                },
                "image",
            )
        )
    return layers
