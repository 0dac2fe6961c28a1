"""Few-shot search (DeepFocus, Shajkofci & Liebling 2020) over a calibrated blur curve.

Images at the start ``z1`` and at ``z1 ± FWHM/2`` (planned inside the limits), a third
one downhill (a golden step, or two separations when the pair lies in the curve's flat
tail); while the points are not convex (lowest blur not bracketed, or a quadratic fit no better than a
line), extend / narrow them golden-section style; then find the focus ``f`` minimising
``sum_i (b_i - c - b_calib(z_i - f))**2`` (``c`` = sample offset, fitted for the
``blur:sf`` score whose level depends on the sample's contrast; 0 for a model score).

Why half an FWHM (the paper uses 2): a spatial-frequency curve's tails depend on the
sample (another region of the same slide can have a steeper flank on one side), so
points far out in the tails shift the fitted focus; points in the curve's core do not.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_focusqa.autofocus.calibrate import Calibration
from napari_focusqa.autofocus.context import RunContext

GOLDEN = (1 + 5**0.5) / 2


def _r2(y: np.ndarray, yhat: np.ndarray) -> float:
    sst = float(np.sum((y - y.mean()) ** 2))
    return 1.0 if sst <= 0 else 1.0 - float(np.sum((y - yhat) ** 2)) / sst


def is_convex(z: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """DeepFocus' convexity test on blur scores: lowest score bracketed by higher ones,
    quadratic fit opening upwards and better than a linear fit (R²)."""
    z = np.asarray(z, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    order = np.argsort(z)
    z, b = z[order], b[order]
    k = int(np.argmin(b))
    bracketed = 0 < k < len(z) - 1
    zc = z - z.mean()
    q = np.polyfit(zc, b, 2)
    lin = np.polyfit(zc, b, 1)
    r2q, r2l = _r2(b, np.polyval(q, zc)), _r2(b, np.polyval(lin, zc))
    convex = bool(bracketed and q[0] > 0 and r2q > r2l)
    return {"convex": convex, "bracketed": bracketed, "r2_quadratic": r2q, "r2_linear": r2l}


def fit_shift(z: np.ndarray, b: np.ndarray, cal: Calibration, lo: float, hi: float,
              fit_offset: bool) -> tuple[float, float, float]:
    """Focus position ``f`` in ``[lo, hi]`` minimising the squared distance between the
    measured blur scores and ``b_calib(z - f)`` (+ offset). Returns ``(f, offset, rmse)``."""
    z = np.asarray(z, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    step = max(min(cal.dof_um / 20.0, (hi - lo) / 400.0), (hi - lo) / 20000.0, 1e-6)
    grid = np.arange(lo, hi + step / 2, step)

    def sse_at(fs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pred = cal.curve((z[None, :] - fs[:, None]).ravel()).reshape(len(fs), len(z))
        resid = b[None, :] - pred
        c = resid.mean(axis=1) if fit_offset else np.zeros(len(fs))
        return np.sum((resid - c[:, None]) ** 2, axis=1), c

    sse, _ = sse_at(grid)
    i = int(np.argmin(sse))
    fine = np.linspace(max(lo, grid[i] - step), min(hi, grid[i] + step), 41)
    sse_f, c_f = sse_at(fine)
    j = int(np.argmin(sse_f))
    return float(fine[j]), float(c_f[j]), float(np.sqrt(sse_f[j] / len(z)))


#: a first pair whose blur difference is below this fraction of the calibration's
#: largest difference for the same separation lies in the flat tail of the curve
FLAT_PAIR = 0.3
#: third step after a flat pair, in units of the pair's separation (else 1/golden)
FAR_STEP = 2.0


def pair_range(cal: Calibration, sep: float) -> float:
    """Largest ``|b_calib(z) - b_calib(z + sep)|`` over z: what a pair of images ``sep``
    apart can differ by at most on this instrument."""
    grid = np.linspace(-3.0 * cal.fwhm_um, 3.0 * cal.fwhm_um, 601)
    return max(float(np.max(np.abs(cal.curve(grid) - cal.curve(grid + sep)))), 1e-12)


def fewshot(ctx: RunContext, cal: Calibration, *, stain: str | None, max_images: int,
             bracket_fwhm: float, fit_offset: bool | None, refine: bool,
             adaptive: bool = True, initial: tuple[float, np.ndarray] | None = None) -> float:
    guard, run = ctx.guard, ctx.run
    lim = guard.limits
    scorer = cal.scorer(stain)
    run.score_name = scorer.name
    if fit_offset is None:
        fit_offset = scorer.model is None
    pts: list[tuple[float, float]] = []  # (z, blur) used by this search
    n0 = len(run.acquisitions)

    def take(z: float | None) -> None:
        acq, _ = ctx.acquire(z, scorer)
        pts.append((acq.z_um, acq.score))

    if initial is not None:  # reuse an image already taken (single-shot fallback)
        z_img, img = initial
        s, _st = scorer(img)
        pts.append((z_img, s))
    else:
        take(None)
    z1 = pts[0][0]
    h = bracket_fwhm * cal.fwhm_um
    min_sep = max(cal.dof_um / 4.0, 1e-3)
    if adaptive:
        # second point on the side with more travel, third one downhill of the pair
        side = -1.0 if (z1 - lim.z_min_um) >= (lim.z_max_um - z1) else 1.0
        z2 = lim.clip(z1 + side * h)
        if abs(z2 - z1) > min_sep:
            take(z2)
            (za, ba), (zb, bb) = pts[0], pts[1]
            # a pair far out in the flat tail (its blur difference small next to the
            # largest the calibration curve gives for this separation) takes a long
            # third step; otherwise a golden step (the focus is near)
            contrast = abs(bb - ba) / pair_range(cal, zb - za)
            run.info["pair_contrast"] = round(contrast, 4)
            step = (zb - za) * (FAR_STEP if contrast < FLAT_PAIR else 1 / GOLDEN)
            z3 = zb + step if bb < ba else za - step
            zc = lim.clip(z3)
            if all(abs(zc - p[0]) > min_sep for p in pts):
                take(zc)
    else:
        for cand in (z1 - h, z1 + h):
            zc = lim.clip(cand)
            if all(abs(zc - p[0]) > min_sep for p in pts):
                take(zc)
    if len(pts) < 3:  # start at a limit: put the third point half way
        other = max(pts, key=lambda p: abs(p[0] - z1))[0]
        take((z1 + other) / 2.0)
    run.info["convexity"] = []
    reason = "converged"
    while True:
        zs = np.array([p[0] for p in pts])
        bs = np.array([p[1] for p in pts])
        test = is_convex(zs, bs)
        run.info["convexity"].append({k: (round(v, 4) if isinstance(v, float) else v)
                                      for k, v in test.items()})
        if test["convex"]:
            break
        if len(run.acquisitions) - n0 >= max_images:
            reason = "max_images"
            break
        order = np.argsort(zs)
        zs, bs = zs[order], bs[order]
        k = int(np.argmin(bs))
        span = zs[-1] - zs[0]
        new = None
        if k == 0 and zs[0] > lim.z_min_um + min_sep:
            new = lim.clip(zs[0] - span / GOLDEN)
        elif k == len(zs) - 1 and zs[-1] < lim.z_max_um - min_sep:
            new = lim.clip(zs[-1] + span / GOLDEN)
        else:  # narrow: golden point in the larger interval next to the minimum
            left = zs[k] - zs[k - 1] if k > 0 else -1.0
            right = zs[k + 1] - zs[k] if k < len(zs) - 1 else -1.0
            if right >= left:
                new = zs[k] + right / GOLDEN**2
            else:
                new = zs[k] - left / GOLDEN**2
        if new is None or min(abs(new - z) for z in zs) < min_sep:
            reason = "triplet cannot improve (limit or resolution reached)"
            break
        take(float(new))
    zs = np.array([p[0] for p in pts])
    bs = np.array([p[1] for p in pts])
    lo_f, hi_f = lim.z_min_um, lim.z_max_um
    if test["convex"]:
        # a bracketed valley has its minimum between the neighbours of the lowest point
        zo, bo = zs[np.argsort(zs)], bs[np.argsort(zs)]
        k = int(np.argmin(bo))
        lo_f, hi_f = float(zo[k - 1]), float(zo[k + 1])
    f, c, rmse = fit_shift(zs, bs, cal, lo_f, hi_f, fit_offset)
    run.info["fit"] = {"focus_um": f, "offset": c, "rmse": rmse, "fit_offset": fit_offset,
                       "points": len(pts), "search_um": [lo_f, hi_f]}
    if refine and len(run.acquisitions) - n0 < max_images:
        take(f)
        zs = np.array([p[0] for p in pts])
        bs = np.array([p[1] for p in pts])
        f, c, rmse = fit_shift(zs, bs, cal, lo_f, hi_f, fit_offset)
        run.info["fit_refined"] = {"focus_um": f, "offset": c, "rmse": rmse}
    run.stop_reason = reason
    return f


