"""Per-patch structure test: does a patch hold anything whose focus can be judged?

Yang et al. note that focus is only defined where there is foreground. Blank, constant and
pure-noise patches (an empty well, a camera frame with the shutter closed, the far planes
of a confocal stack where a point detector records sparse single-pixel photon speckles)
have no focus at all, and a model trained on cells reads their noise as sharp detail.
This module marks such patches ``empty`` so that they are left out of the aggregate, and
a plane with (almost) no structure gets the verdict ``no_structure``.

The rule (docs/verdicts.md)
---------------------------
The image is cut into ``b x b`` pixel blocks (``b = 4`` for patches of 32 px or more). The
block means are the *light smoothing*: they keep structure a few pixels wide and average
white noise down by ``b``. Per patch of the grid:

* ``noise`` sigma^2: from differences of horizontally neighbouring pixel columns of the
  block (``E[(c1 - c2)^2] = 2 b sigma^2`` for ``b``-pixel column sums of independent noise
  of any distribution: Gaussian, Poisson, or zero-inflated detector speckle). This is the
  patch's own noise.
* the block means are detrended by a least-squares plane (a smooth illumination ramp or
  vignetting is not structure) leaving residuals ``r``.
* ``correlation`` ``F = b^2 var(r) / sigma^2``: independent noise averages down by ``b^2``
  in a block, so ``F ~ 1`` for noise of *any* amplitude distribution (an isolated
  single-pixel speckle adds exactly as much to ``var(r)`` as it adds to ``sigma^2 / b^2``)
  and ``F >> 1`` when neighbouring pixels share signal (an object).
* ``contrast`` ``C = max(r) / sigma``: the brightest smoothed feature above the patch's
  mean level (``r`` has zero mean), in units of the pixel noise.

A patch has structure when ``F >= MIN_CORRELATION`` **and** ``C >= MIN_CONTRAST``. Both
are needed: ``F`` alone also fires on a faint, noise-buried texture; ``C`` alone fires on
two or three photon events in an otherwise empty patch. A constant patch has
``F = C = 0`` (empty); a noiseless patch with an object has ``sigma = 0`` and counts as
structured.

Cost: one float32 pass over the image (the ``b`` rows of each block row are added while
converting), then small passes over that ``1/b``-size array, vectorised over the grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_focusqa.core.patches import PatchGrid

#: a patch has structure only if its block-scale variance exceeds white noise this much
MIN_CORRELATION = 3.0
#: ... and its brightest smoothed feature stands this many noise sigmas above its mean
MIN_CONTRAST = 2.5
#: below this fraction of structured patches a plane's verdict is ``no_structure``
MIN_STRUCTURED_FRACTION = 0.01


@dataclass(frozen=True)
class Structure:
    """Per-patch structure statistics on a :class:`PatchGrid` (arrays ``(rows, cols)``)."""

    empty: np.ndarray
    correlation: np.ndarray
    contrast: np.ndarray
    noise_sigma: np.ndarray

    @property
    def structured_fraction(self) -> float:
        return structured_fraction(self.empty)


def structured_fraction(empty: np.ndarray) -> float:
    """Fraction of patches that are not ``empty`` (0.0 for an empty grid)."""
    e = np.asarray(empty, dtype=bool)
    return float(1.0 - e.mean()) if e.size else 0.0


def is_no_structure(fraction: float) -> bool:
    """True when a plane with ``fraction`` structured patches has no judgeable focus."""
    return fraction < MIN_STRUCTURED_FRACTION


def block_size(patch_size: int) -> int:
    """Block side used for patches of ``patch_size`` px (4, or 2 for patches < 32 px)."""
    return 4 if patch_size >= 32 else 2


#: image rows per strip of :func:`_pair_sums` (its temporaries then fit in a core's cache)
_STRIP_ROWS = 128


def _pair_sums(
    x: np.ndarray, b: int, dtype: type[np.floating[Any]] = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """Per ``b x b`` block: the pixel sum, and the sum of squared differences of
    horizontally neighbouring *column sums* (``b`` pixels tall), as ``(H // b, W // b)``
    arrays of ``dtype``.

    The ``b`` rows of each block row are added first (one pass over the image, converting
    on the fly); all later work is on that ``1/b``-size array, a strip of
    :data:`_STRIP_ROWS` image rows at a time in reused buffers. For independent noise of
    variance sigma^2 a column sum has variance ``b sigma^2`` and the difference of two
    neighbouring ones ``2 b sigma^2``; there are ``b / 2`` such pairs per block. Exact in
    float32 for integer data of <= 16 bits.
    """
    h, w = x.shape
    hb, wb = h // b, w // b
    wc = wb * b
    means, diff2 = np.empty((hb, wb), dtype), np.empty((hb, wb), dtype)
    k = max(1, _STRIP_ROWS // b)  # block rows per strip: the temporaries stay in cache
    rows = np.empty((k, w), dtype)
    pair, d = np.empty((k, wc // 2), dtype), np.empty((k, wc // 2), dtype)
    for r0 in range(0, hb, k):
        n = min(k, hb - r0)
        strip, rw = x[r0 * b : (r0 + n) * b], rows[:n]
        if strip.flags.c_contiguous:
            strip.reshape(n, b, w).sum(axis=1, dtype=dtype, out=rw)
        else:
            np.add(strip[0::b], strip[1::b], out=rw, dtype=dtype)
            for i in range(2, b):
                rw += strip[i::b]
        e, o, pr, dd = rw[:, 0:wc:2], rw[:, 1:wc:2], pair[:n], d[:n]
        np.add(e, o, out=pr)
        np.subtract(o, e, out=dd)
        np.multiply(dd, dd, out=dd)
        if b == 2:
            means[r0 : r0 + n], diff2[r0 : r0 + n] = pr, dd
        else:
            np.add(pr[:, 0::2], pr[:, 1::2], out=means[r0 : r0 + n])
            np.add(dd[:, 0::2], dd[:, 1::2], out=diff2[r0 : r0 + n])
    return means, diff2


def patch_structure(image: np.ndarray, grid: PatchGrid) -> Structure:
    """Structure statistics and the ``empty`` mask for every patch of ``grid``.

    ``image`` is a 2D real array of ``grid.image_shape``. Patches on the bottom/right edge
    whose start is not a multiple of the block size use the nearest block-aligned window.
    """
    img = np.asarray(image)
    b = block_size(grid.patch_size)
    nb = grid.patch_size // b
    h, w = grid.image_shape
    hb, wb = h // b, w // b
    with np.errstate(over="ignore", invalid="ignore"):
        means, diff2 = _pair_sums(img, b)
    if not (np.isfinite(means).all() and np.isfinite(diff2).all()):
        means, diff2 = _pair_sums(img, b, np.float64)  # values near float32's range
    rb = np.minimum(np.round(grid.row_starts / b).astype(np.int64), hb - nb)
    cb = np.minimum(np.round(grid.col_starts / b).astype(np.int64), wb - nb)
    win = np.lib.stride_tricks.sliding_window_view
    m = win(means, (nb, nb))[rb[:, None], cb[None, :]]  # (rows, cols, nb, nb) block sums
    d2 = win(diff2, (nb, nb))[rb[:, None], cb[None, :]]
    # b/2 pairs of column sums per block, each squared difference ~ 2 b sigma^2
    sigma2 = d2.sum(axis=(-2, -1), dtype=np.float64) / (nb * nb * b * b)

    # detrend the block means by a plane (centred coordinates: orthogonal projections)
    c = np.arange(nb, dtype=m.dtype) - (nb - 1) / 2.0
    cc = float(nb * (c * c).sum())
    r = m - m.mean(axis=(-2, -1), keepdims=True, dtype=np.float64).astype(m.dtype)
    gy = np.einsum("...ij,i->...", r, c) / cc
    gx = np.einsum("...ij,j->...", r, c) / cc
    r -= gy[..., None, None] * c[:, None] + gx[..., None, None] * c[None, :]
    r /= b * b  # block sums -> block means
    var_r = np.einsum("...ij,...ij->...", r, r, dtype=np.float64) / max(nb * nb - 3, 1)
    # brightest smoothed feature above the (zero) mean of the detrended block means
    peak = r.max(axis=(-2, -1)).astype(np.float64)

    # float32 rounding floor: differences below this are zero, not signal
    scale = max(float(np.abs(means).max(initial=0.0)) / (b * b), 1e-30)
    tiny = (1e-6 * scale) ** 2
    var_r = np.where(var_r > tiny / (b * b), var_r, 0.0)
    peak = np.where(peak * peak > tiny, peak, 0.0)
    noisy = sigma2 > tiny
    safe = np.where(noisy, sigma2, 1.0)
    corr = np.where(noisy, b * b * var_r / safe, np.where(var_r > 0, np.inf, 0.0))
    contrast = np.where(noisy, peak / np.sqrt(safe), np.where(peak > 0, np.inf, 0.0))
    empty = ~((corr >= MIN_CORRELATION) & (contrast >= MIN_CONTRAST))
    return Structure(empty, corr, contrast, np.sqrt(sigma2))
