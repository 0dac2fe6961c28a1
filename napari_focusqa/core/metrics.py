"""Classic focus measures, vectorised over any leading axes.

Every function takes an array of shape ``(..., H, W)`` (one image, a stack, or a grid of
patches ``(rows, cols, P, P)``) of any real dtype and returns a float64 array of shape
``(...)`` (a Python-float-like 0-d array for one image). Higher always means sharper.
A constant image gives ``0.0`` for every measure (documented, never NaN).

References: spatial frequency as defined in the FluoCLIP paper (RF, CF, SF); PLLS from
Bray et al. 2012; Brenner 1971; Tenengrad (Krotkov 1987); variance of Laplacian
(Pech-Pacheco 2000); normalised variance (Groen 1985); Vollath F4 (Vollath 1987);
sum-modified Laplacian (Nayar 1994); blur effect (Crété-Roffet et al. 2007, as in
``skimage.measure.blur_effect``).

The blur effect runs from 0 (sharp) to 1 (blurred), the opposite of every other measure
here, so :data:`METRICS` exposes it as ``blur_sharpness = 1 - blur_effect`` (higher =
sharper, 0.0 for a constant image); :func:`blur_effect` gives the original value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from napari_focusqa.core.errors import ImageError


def _work_dtype(arr: np.ndarray) -> type[np.floating[Any]]:
    """Check an ``(..., H, W)`` array; the float dtype its measures compute in.

    8/16-bit and float images compute in float32 (fast); 32/64-bit integers can exceed
    float32's range once squared, so they compute in float64.
    """
    if arr.ndim < 2:
        raise ImageError(f"image: expected at least 2 dimensions (..., H, W), got {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise ImageError(f"image: expected a real numeric array, got dtype {arr.dtype}")
    if arr.shape[-1] < 3 or arr.shape[-2] < 3:
        raise ImageError(f"image: need at least 3x3 pixels for focus measures, got {arr.shape[-2:]}")
    wide = arr.dtype.kind in "iu" and arr.dtype.itemsize > 2
    return np.float64 if wide else np.float32


def _f32(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    out = arr.astype(_work_dtype(arr), copy=False)
    if out.dtype.kind == "f" and not np.isfinite(out).all():
        raise ImageError("image: contains NaN or infinite values (or values beyond float32)")
    return out


def _mean_sq(d: np.ndarray) -> np.ndarray:
    """Mean of squares over the last two axes (products in the input dtype, summed in
    float64 so that float32 and float64 inputs agree to ~1e-7)."""
    rows = np.einsum("...ij,...ij->...i", d, d)  # short float32 row sums
    return rows.sum(axis=-1, dtype=np.float64) / (d.shape[-1] * d.shape[-2])


_BLOCK_ROWS = 128  # rows per cache-friendly block for large 2D images


def _diff_energy(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean squared vertical and horizontal neighbour differences (RF², CF²).

    A 2D image is processed in blocks of rows, converted block by block into three
    reused buffers, so the float32 temporaries stay in cache (about 4x faster on a 2048²
    image than whole-array temporaries); stacks and patch grids are vectorised over their
    leading axes.
    """
    arr = np.asarray(image)
    dt = _work_dtype(arr)
    h, w = arr.shape[-2:]
    if arr.ndim != 2 or h <= 2 * _BLOCK_ROWS:
        x = _f32(arr)
        return _mean_sq(np.diff(x, axis=-2)), _mean_sq(np.diff(x, axis=-1))
    if arr.dtype.kind == "f":
        _f32(arr)  # NaN / infinity check (integers are converted block by block only)
    b = _BLOCK_ROWS
    a, d, e = np.empty((b + 1, w), dt), np.empty((b, w), dt), np.empty((b, w - 1), dt)
    sr = sc = 0.0
    for y in range(0, h, b):
        n = min(b + 1, h - y)  # this block's rows and the first row of the next
        blk = a[:n]
        np.copyto(blk, arr[y : y + n], casting="unsafe")
        dy, dx = d[: n - 1], e[: min(b, n)]
        np.subtract(blk[1:], blk[:-1], out=dy)
        np.subtract(blk[: min(b, n), 1:], blk[: min(b, n), :-1], out=dx)
        sr += float(np.einsum("ij,ij->", dy, dy))
        sc += float(np.einsum("ij,ij->", dx, dx))
    return np.asarray(sr / ((h - 1) * w)), np.asarray(sc / (h * (w - 1)))


def row_frequency(image: np.ndarray) -> np.ndarray:
    """RF = sqrt( 1/((M-1)N) * sum_{i<M, j} (I(i+1,j) - I(i,j))^2 )."""
    return np.sqrt(_diff_energy(image)[0])


def column_frequency(image: np.ndarray) -> np.ndarray:
    """CF = sqrt( 1/(M(N-1)) * sum_{i, j<N} (I(i,j+1) - I(i,j))^2 )."""
    return np.sqrt(_diff_energy(image)[1])


def spatial_frequency(image: np.ndarray) -> np.ndarray:
    """SF = sqrt(RF^2 + CF^2), exactly as in the FluoCLIP paper (raw intensity units)."""
    rf2, cf2 = _diff_energy(image)
    return np.sqrt(rf2 + cf2)


def brenner(image: np.ndarray) -> np.ndarray:
    """Mean of squared differences two pixels apart, along x and y."""
    x = _f32(image)
    dx = x[..., :, 2:] - x[..., :, :-2]
    dy = x[..., 2:, :] - x[..., :-2, :]
    return _mean_sq(dx) + _mean_sq(dy)


def _sobel(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sx = x[..., :, 2:] - x[..., :, :-2]
    gx = sx[..., :-2, :] + 2 * sx[..., 1:-1, :] + sx[..., 2:, :]
    sy = x[..., 2:, :] - x[..., :-2, :]
    gy = sy[..., :, :-2] + 2 * sy[..., :, 1:-1] + sy[..., :, 2:]
    return gx, gy


def tenengrad(image: np.ndarray) -> np.ndarray:
    """Mean squared Sobel gradient magnitude."""
    gx, gy = _sobel(_f32(image))
    return _mean_sq(gx) + _mean_sq(gy)


def _laplacian(x: np.ndarray) -> np.ndarray:
    c = x[..., 1:-1, 1:-1]
    return x[..., :-2, 1:-1] + x[..., 2:, 1:-1] + x[..., 1:-1, :-2] + x[..., 1:-1, 2:] - 4 * c


def variance_of_laplacian(image: np.ndarray) -> np.ndarray:
    """Variance of the 4-neighbour Laplacian."""
    lap = _laplacian(_f32(image))
    m = lap.mean(axis=(-2, -1), dtype=np.float64)
    return _mean_sq(lap - m[..., None, None].astype(lap.dtype))


def sum_modified_laplacian(image: np.ndarray) -> np.ndarray:
    """Mean of |2I - I_left - I_right| + |2I - I_up - I_down| (Nayar)."""
    x = _f32(image)
    c = x[..., 1:-1, 1:-1]
    mx = np.abs(2 * c - x[..., 1:-1, :-2] - x[..., 1:-1, 2:])
    my = np.abs(2 * c - x[..., :-2, 1:-1] - x[..., 2:, 1:-1])
    return (mx + my).mean(axis=(-2, -1), dtype=np.float64)


def normalized_variance(image: np.ndarray) -> np.ndarray:
    """Variance divided by mean intensity; 0 where the mean is <= 0."""
    x = _f32(image)
    m = x.mean(axis=(-2, -1), dtype=np.float64)
    d = x - m[..., None, None].astype(x.dtype)  # centred first: exact 0 for flat images
    var = _mean_sq(d)
    return np.where(m > 0, var / np.where(m > 0, m, 1.0), 0.0)


def vollath_f4(image: np.ndarray) -> np.ndarray:
    """Vollath's F4 autocorrelation along x: mean(I(x)I(x+1)) - mean(I(x)I(x+2)).

    Computed along rows only, as Vollath defined it (some cameras' row read-out makes the
    vertical lag-2 correlation exceed lag-1, which would break a 2-direction version).
    """
    x = _f32(image).astype(np.float64)
    a = x[..., :, :-2]
    return (a * x[..., :, 1:-1]).mean(axis=(-2, -1)) - (a * x[..., :, 2:]).mean(axis=(-2, -1))


def _radial_bins(h: int, w: int, nbins: int) -> tuple[np.ndarray, np.ndarray]:
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    r = np.sqrt(fy * fy + fx * fx)
    edges = np.linspace(0.0, 0.5, nbins + 1)
    idx = np.minimum(np.digitize(r, edges) - 1, nbins - 1)
    idx[(r <= 0) | (r > 0.5)] = -1
    centers = 0.5 * (edges[:-1] + edges[1:])
    return idx.ravel(), centers


def power_log_log_slope(image: np.ndarray, nbins: int = 32) -> np.ndarray:
    """Power log-log slope (PLLS, Bray et al. 2012).

    Slope of the log radial power spectrum vs log spatial frequency, fitted over all
    radial frequencies in (0, 0.5] cycles/pixel after mean subtraction. Defocus removes
    high frequencies, so the slope gets more negative: higher (less negative) is sharper
    for images with good signal-to-noise. On noisy images a defocused image is dominated
    by the flat photon-noise floor, which raises its slope again, so PLLS can invert far
    from focus (its known weakness; Yang et al. report a patch-level F-score of 0.60).
    A flat image gives 0.0.
    """
    x = _f32(image).astype(np.float64)  # power of 16-bit+ images overflows float32
    h, w = x.shape[-2:]
    x = x - x.mean(axis=(-2, -1), keepdims=True)
    pw = np.abs(np.fft.rfft2(x)) ** 2
    idx, centers = _radial_bins(h, w, nbins)
    lead = pw.shape[:-2]
    flat = pw.reshape(-1, idx.size)
    ok = idx >= 0
    nb = flat.shape[0]
    # radial sums for every image at once: bin index offset by image number
    bins = (idx[ok][None, :] + nbins * np.arange(nb)[:, None]).ravel()
    sums = np.bincount(bins, weights=flat[:, ok].ravel(), minlength=nb * nbins)
    counts = np.bincount(idx[ok], minlength=nbins).astype(np.float64)
    use = counts > 0
    radial = sums.reshape(nb, nbins)[:, use] / counts[use]
    lx = np.log(centers[use])
    with np.errstate(divide="ignore"):
        ly = np.log(np.maximum(radial, 1e-30))
    lxc = lx - lx.mean()
    slope = ((ly - ly.mean(axis=-1, keepdims=True)) @ lxc) / (lxc @ lxc)
    flat_img = radial.max(axis=-1) <= 1e-20
    slope = np.where(flat_img, 0.0, slope)
    return slope.reshape(lead)


_BLUR_EPS = float(np.spacing(1))  # scikit-image's floor for gradient magnitudes


def _as_unit_float(image: np.ndarray) -> np.ndarray:
    """float64 scaled to a peak |value| of 1 per image.

    scikit-image scales by the dtype's range instead (``img_as_float``); the blur effect
    is scale-free except for its 2.2e-16 floor on gradients, so both agree to ~1e-15
    for 8/16-bit and float images, while per-image scaling keeps 32/64-bit integer
    images (where ``img_as_float`` pushes every gradient under that floor) correct.
    """
    arr = np.asarray(image)
    _f32(arr)  # shape, dtype and finiteness checks with the module's messages
    x = arr.astype(np.float64)
    peak = np.abs(x).max(axis=(-2, -1), keepdims=True)
    return x / np.where(peak > 0, peak, 1.0)


def _sl(x: np.ndarray, axis: int, start: int, stop: int) -> np.ndarray:
    """``x[..., start:stop, :]`` (axis -2) or ``x[..., start:stop]`` (axis -1), a view."""
    if axis == -1:
        return x[..., start:stop]
    return x[..., start:stop, :]


def _reflect_pad(x: np.ndarray, axis: int, n: int) -> np.ndarray:
    pad = [(0, 0)] * x.ndim
    pad[axis] = (n, n)
    return np.pad(x, pad, mode="symmetric")  # = scipy.ndimage mode "reflect"


def _box_mean(x: np.ndarray, axis: int, size: int) -> np.ndarray:
    """Centred moving mean of odd ``size`` along ``axis`` (scipy ``uniform_filter1d``)."""
    p = _reflect_pad(x, axis, size // 2 + 1)  # one extra leading sample for the difference
    c = np.cumsum(p, axis=axis)
    n = x.shape[axis]
    return (_sl(c, axis, size, size + n) - _sl(c, axis, 0, n)) / size


def _abs_sobel_inner(x: np.ndarray, axis: int) -> np.ndarray:
    """|Sobel derivative along ``axis``| on the inner region ``[2:H-1, 2:W-1]`` of the last
    two axes (scikit-image's weights: [1, 0, -1] along the axis, [1, 2, 1] / 4 across);
    the inner region needs no border handling."""
    h, w = x.shape[-2:]
    if axis == -2:
        d = x[..., 1 : h - 2, :] - x[..., 3:h, :]
        sm = d[..., 1 : w - 2] + 2 * d[..., 2 : w - 1] + d[..., 3:w]
    else:
        d = x[..., :, 1 : w - 2] - x[..., :, 3:w]
        sm = d[..., 1 : h - 2, :] + 2 * d[..., 2 : h - 1, :] + d[..., 3:h, :]
    return np.abs(sm) / 4.0


def blur_effect(image: np.ndarray, h_size: int = 11) -> np.ndarray:
    """Blur effect of Crété-Roffet et al. (2007): 0 = sharp, 1 = maximally blurred.

    The same numbers as ``skimage.measure.blur_effect(image, h_size)`` for a 2D 8/16-bit
    or float image (the maximum over the two axes of the loss of gradient energy after a
    re-blur with an ``h_size`` moving mean), vectorised over leading axes; unlike
    scikit-image, also dtype-independent for 32/64-bit integers. Images smaller than 4x4
    and constant images give 1.0 (no gradient left to lose).
    """
    x = _as_unit_float(image)
    h, w = x.shape[-2:]
    if h < 4 or w < 4:
        return np.ones(x.shape[:-2])
    out = []
    for axis in (-2, -1):
        sharp = np.maximum(_BLUR_EPS, _abs_sobel_inner(x, axis))
        blur = np.maximum(_BLUR_EPS, _abs_sobel_inner(_box_mean(x, axis, h_size), axis))
        m1 = sharp.sum(axis=(-2, -1))
        m2 = np.maximum(0.0, sharp - blur).sum(axis=(-2, -1))
        out.append(np.abs(m1 - m2) / m1)
    return np.maximum(out[0], out[1])


def blur_sharpness(image: np.ndarray) -> np.ndarray:
    """``1 - blur_effect(image)``: the blur effect on the higher-is-sharper scale."""
    return 1.0 - blur_effect(image)


METRICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sf": spatial_frequency,
    "plls": power_log_log_slope,
    "brenner": brenner,
    "tenengrad": tenengrad,
    "var_laplacian": variance_of_laplacian,
    "normalized_variance": normalized_variance,
    "vollath_f4": vollath_f4,
    "sml": sum_modified_laplacian,
    "blur_sharpness": blur_sharpness,
}


def compute(name: str, image: np.ndarray) -> np.ndarray:
    """Compute metric ``name`` (a key of :data:`METRICS`)."""
    try:
        fn = METRICS[name]
    except KeyError:
        raise ImageError(f"metric: unknown metric {name!r}; choose from {sorted(METRICS)}") from None
    return fn(image)
