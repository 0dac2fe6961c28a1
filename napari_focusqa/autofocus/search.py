"""Autofocus algorithms over a :class:`~napari_focusqa.autofocus.microscope.Microscope`.

Entry point: :func:`run_autofocus` (``method`` = ``"fewshot"``, ``"singleshot"`` or
``"classic"``). Every stage move and snap goes through
:class:`~napari_focusqa.autofocus.safety.StageGuard`; on a refused move, a device fault
or cancel the run stops and the stage goes back to where it started. The result is an
:class:`~napari_focusqa.autofocus.run.AutofocusRun`.

fewshot (DeepFocus, Shajkofci & Liebling 2020)
    Needs a :class:`~napari_focusqa.autofocus.calibrate.Calibration`. Images at the start
    ``z1`` and at ``z1 ± 2 FWHM`` (planned inside the limits); while the triplet is not
    convex (the lowest blur not bracketed, or a quadratic fit no better than a line),
    extend / narrow it golden-section style; then find the focus ``f`` minimising
    ``sum_i (b_i - c - b_calib(z_i - f))**2`` (``c`` = sample offset, fitted for the
    ``blur:sf`` score whose level depends on the sample's contrast; 0 for a model score),
    and move there.
singleshot (DeepAf-like)
    One image -> signed defocus from the installed ``distance`` model (``fqa-distance``),
    patch outputs combined by confidence-weighted median -> move -> one confirmation
    image (and at most one correction move). Falls back to fewshot (reusing the images
    already taken) when no distance model is installed, the confidence is low, the
    patches disagree about the sign, or the calibration stack showed that the model does
    not track signed z on this microscope (correlation |r| < 0.7 between its output and
    the calibration z; its gain is used otherwise).
classic (Micro-Manager OughtaFocus-like baseline)
    Brent's bounded minimisation of ``-SF`` over ``start ± search range``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from napari_focusqa.autofocus.calibrate import Calibration, _find_distance_model
from napari_focusqa.autofocus.run import Acquisition, AutofocusRun
from napari_focusqa.autofocus.safety import HardwareError, StageGuard, StageLimits, UnsafeMoveError
from napari_focusqa.autofocus.scoring import Scorer
from napari_focusqa.core.errors import Cancelled, FocusQAError

METHODS = ("fewshot", "singleshot", "classic")
GOLDEN = (1 + 5**0.5) / 2

AcquisitionCallback = Callable[[Acquisition, np.ndarray], None]


class _Ctx:
    """Shared state of one run: guard, run record, callback."""

    def __init__(self, guard: StageGuard, run: AutofocusRun,
                 on_acquisition: AcquisitionCallback | None) -> None:
        self.guard = guard
        self.run = run
        self.on_acquisition = on_acquisition
        self.t0 = time.perf_counter()

    def acquire(self, z: float | None, scorer: Callable[[np.ndarray], tuple[float, dict[str, Any]]],
                ) -> tuple[Acquisition, np.ndarray]:
        if z is not None:
            self.guard.travel_to(z)
        img = self.guard.snap()
        zr = self.guard.z
        score, stats = scorer(img)
        acq = Acquisition(index=len(self.run.acquisitions), z_um=zr, score=float(score),
                          stats=stats, t_s=time.perf_counter() - self.t0)
        self.run.acquisitions.append(acq)
        if self.on_acquisition is not None:
            self.on_acquisition(acq, img)
        return acq, img


# ---------------------------------------------------------------------------- fewshot
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


def _fewshot(ctx: _Ctx, cal: Calibration, *, stain: str | None, max_images: int,
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
            z3 = zb + (zb - za) / GOLDEN if bb < ba else za - (zb - za) / GOLDEN
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


# ---------------------------------------------------------------------------- classic
def _classic(ctx: _Ctx, *, dof: float | None, search_range_um: float | None,
             tolerance_um: float | None, max_images: int, metric: str) -> float:
    from scipy.optimize import minimize_scalar

    guard, run = ctx.guard, ctx.run
    lim = guard.limits
    scorer = Scorer("sf") if metric == "sf" else _MetricScorer(metric)
    run.score_name = scorer.name
    z0 = guard.start_z
    full = lim.z_max_um - lim.z_min_um
    if search_range_um is None:
        search_range_um = 12.0 * dof if dof else full
    lo, hi = lim.clip(z0 - search_range_um), lim.clip(z0 + search_range_um)
    if tolerance_um is None:
        tolerance_um = dof / 4.0 if dof else (hi - lo) / 100.0
    cache: dict[float, float] = {}

    def f(z: float) -> float:
        key = round(float(z), 9)
        if key not in cache:
            if len(run.acquisitions) >= max_images:
                raise _Budget()
            acq, _ = ctx.acquire(float(z), scorer)
            cache[key] = -acq.score
        return cache[key]

    try:
        res = minimize_scalar(f, bounds=(lo, hi), method="bounded",
                              options={"xatol": tolerance_um, "maxiter": max_images})
        best = float(res.x)
        run.stop_reason = "converged" if res.success else f"brent: {res.message}"
    except _Budget:
        run.stop_reason = "max_images"
        best = run.acquisitions[int(np.argmax(run.scores))].z_um
    run.info["search"] = {"lo_um": lo, "hi_um": hi, "tolerance_um": tolerance_um,
                          "metric": metric}
    return best


class _Budget(Exception):
    pass


class _MetricScorer:
    """Any core metric as a sharpness score (higher is sharper)."""

    def __init__(self, metric: str) -> None:
        from napari_focusqa.core.metrics import METRICS

        if metric not in METRICS:
            raise FocusQAError(f"metric: unknown metric {metric!r}; choose from {sorted(METRICS)}")
        self.metric = metric
        self.name = metric

    def __call__(self, img: np.ndarray) -> tuple[float, dict[str, Any]]:
        from napari_focusqa.autofocus.scoring import image_stats
        from napari_focusqa.core.metrics import compute

        st = image_stats(img)
        return float(compute(self.metric, np.asarray(img, dtype=np.float32))), st


# ------------------------------------------------------------------------- singleshot
def predict_distance(img: np.ndarray, model: Any, *, stain: str | None = None,
                     ) -> tuple[float, float, dict[str, Any]]:
    """Signed defocus (DoF units, card convention) of one image from a distance model.

    Returns ``(distance, confidence, details)``: confidence-weighted median over the
    patches, the mean patch confidence, and ``sign_agreement`` (weighted fraction of
    patches whose sign matches the median; patches within ±0.5 DoF count as agreeing).
    """
    from napari_focusqa.core.model import load_model
    from napari_focusqa.core.patches import make_grid
    from napari_focusqa.core.validate import as_image2d

    fm = load_model(model)
    if fm.task != "distance":
        raise FocusQAError(f"model: {fm.id} is a {fm.task!r} model, not a distance model")
    im = as_image2d(img)
    grid = make_grid(im.shape, fm.patch_size)
    patches = grid.extract(im).reshape(-1, fm.patch_size, fm.patch_size)
    outs = fm.run(patches, stain=stain)
    names = fm.card.get("outputs") or {}
    d = np.asarray(outs.get(names.get("distance", "distance"),
                            next(iter(outs.values()))), dtype=np.float64).ravel()
    cname = names.get("confidence", "confidence")
    c = (np.asarray(outs[cname], dtype=np.float64).ravel() if cname in outs
         else np.ones_like(d))
    c = np.clip(np.nan_to_num(c), 0.0, 1.0)
    w = c if c.sum() > 0 else np.ones_like(c)
    order = np.argsort(d)
    cw = np.cumsum(w[order])
    med = float(d[order][int(np.searchsorted(cw, cw[-1] / 2.0))])
    agree = (np.sign(d) == np.sign(med)) | (np.abs(d) <= 0.5) if abs(med) > 0.5 else np.ones(
        len(d), bool)
    sign_agreement = float(np.sum(w * agree) / np.sum(w))
    return med, float(c.mean()), {"patches": int(d.size), "sign_agreement": sign_agreement,
                                  "model": fm.id}


def _singleshot(ctx: _Ctx, cal: Calibration | None, *, stain: str | None, dof: float | None,
                min_confidence: float, min_sign_agreement: float,
                fewshot_kwargs: dict[str, Any], distance_model: Any = "auto",
                min_track_r: float = 0.7) -> float:
    guard, run = ctx.guard, ctx.run
    lim = guard.limits
    model = _find_distance_model(distance_model)

    def fallback(why: str, initial: tuple[float, np.ndarray] | None) -> float:
        run.info["fallback"] = why
        run.method_used = "fewshot"
        if cal is None:
            raise FocusQAError(f"singleshot: {why}, and the fewshot fallback needs a "
                               "calibration (run `focusqa calibrate` / Calibrate first)")
        return _fewshot(ctx, cal, stain=stain, initial=initial, **fewshot_kwargs)

    if model is None:
        return fallback("no distance model installed", None)
    unit = model.card.get("dof_um") or dof
    gain = 1.0
    if cal is not None and cal.distance and cal.distance.get("model") == model.id:
        # the calibration stack shows whether the model tracks *signed* z here
        r, g = float(cal.distance.get("r", 0.0)), float(cal.distance.get("gain", 0.0))
        if abs(r) < min_track_r or abs(g) <= 0.1:
            return fallback(f"{model.id} does not track signed defocus on the calibration "
                            f"stack (r = {r:.2f}, gain = {g:.2f}): sign ambiguous", None)
        gain = g
        unit = cal.dof_um
    if not unit:
        return fallback("the depth of field is unknown (no calibration or optics)", None)
    run.info["distance_model"] = {"id": model.id, "gain": gain, "dof_unit_um": float(unit)}

    def score(img: np.ndarray) -> tuple[float, dict[str, Any]]:
        from napari_focusqa.autofocus.scoring import image_stats

        d, c, det = predict_distance(img, model, stain=stain)
        st = image_stats(img)
        st.update(distance_dof=d, confidence=c, sign_agreement=det["sign_agreement"])
        return d, st

    run.score_name = f"distance:{model.id}"
    z = guard.start_z
    for step in range(3):  # first image, confirmation, (one correction, no image)
        acq, img = ctx.acquire(None if step == 0 else z, score)
        d = acq.score
        conf, agree = acq.stats["confidence"], acq.stats["sign_agreement"]
        if conf < min_confidence or agree < min_sign_agreement:
            return fallback(f"low confidence ({conf:.2f}) or ambiguous sign "
                            f"(agreement {agree:.2f})", (acq.z_um, img))
        target = acq.z_um - d / gain * float(unit)
        if abs(d / gain) <= 1.0 and step > 0:
            run.stop_reason = "confirmed within 1 DoF"
            return acq.z_um
        if not lim.contains(target):
            run.info.setdefault("clipped_targets", []).append(target)
            target = lim.clip(target)
        z = target
        if step == 1:
            run.stop_reason = "corrected after confirmation"
            return z
    run.stop_reason = "converged"
    return z


# ----------------------------------------------------------------------------- runner
def default_limits(microscope: Any) -> StageLimits:
    """The travel of a simulated stage (max step = whole travel); real hardware must be
    given explicit limits."""
    travel = getattr(microscope, "travel", None)
    if travel is None:
        raise FocusQAError("limits: set z limits and a maximum step for real hardware "
                           "(StageLimits(z_min_um, z_max_um, max_step_um))")
    lo, hi = travel
    return StageLimits(lo, hi, hi - lo)


def _microscope_dof(microscope: Any) -> float | None:
    try:
        optics = (microscope.info() or {}).get("optics")
    except Exception:
        return None
    return None if not optics else float(optics.get("dof_um") or 0) or None


def run_autofocus(
    microscope: Any,
    method: str = "fewshot",
    *,
    calibration: Calibration | None = None,
    limits: StageLimits | None = None,
    stain: str | None = None,
    dof_um: float | None = None,
    cancel: Callable[[], bool] | None = None,
    on_acquisition: AcquisitionCallback | None = None,
    max_images: int | None = None,
    bracket_fwhm: float = 1.0,
    fit_offset: bool | None = None,
    refine: bool = False,
    adaptive: bool = True,
    search_range_um: float | None = None,
    tolerance_um: float | None = None,
    metric: str = "sf",
    min_confidence: float = 0.5,
    min_sign_agreement: float = 0.7,
    distance_model: Any = "auto",
) -> AutofocusRun:
    """Run one autofocus search; never leaves the stage at an unplanned place.

    Parameters
    ----------
    microscope : Microscope
    method : {"fewshot", "singleshot", "classic"}
    calibration : Calibration, optional
        Required by fewshot (and by singleshot's fallback).
    limits : StageLimits, optional
        Defaults to a simulated stage's travel; required for real hardware.
    stain : str, optional
        Stain class for stain-aware models.
    dof_um : float, optional
        Depth of field; defaults to the calibration's, else the microscope's optics.
    cancel : callable, optional
        Polled before every move/snap; True stops the run (status "cancelled").
    on_acquisition : callable, optional
        ``on_acquisition(acquisition, image)`` after every image (e.g. GUI updates).
    max_images : int, optional
        Image budget (fewshot 8, classic 40 by default).
    distance_model : str, path, FocusModel, "auto" or None
        Single-shot model; "auto" = the installed ``fqa-distance`` (or any distance
        model), None = none (fallback to fewshot).
    bracket_fwhm, fit_offset, refine, adaptive
        Few-shot options: half-width of the first triplet in FWHM; fit a sample offset
        (default: yes for ``blur:sf``); add one refinement image at the estimate; place
        the third image downhill of the first two (else symmetric around the start).

    Returns
    -------
    AutofocusRun
        ``status`` "ok" (stage at ``chosen_z_um``), or "cancelled" / "refused" /
        "failed" (stage back at ``start_z_um``; ``stop_reason`` says why).

    Raises
    ------
    FocusQAError
        Bad arguments (unknown method, missing calibration, stage outside the limits).
    """
    if method not in METHODS:
        raise FocusQAError(f"method: expected one of {METHODS}, got {method!r}")
    if method == "fewshot" and calibration is None:
        raise FocusQAError("calibration: the fewshot method needs a calibration "
                           "(`focusqa calibrate` or the widget's Calibrate button)")
    lim = limits or default_limits(microscope)
    guard = StageGuard(microscope, lim, cancel=cancel)
    dof = dof_um or (calibration.dof_um if calibration is not None else None) or \
        _microscope_dof(microscope)
    run = AutofocusRun(method=method, start_z_um=guard.start_z, method_used=method,
                       dof_um=dof)
    if calibration is not None:
        run.info["calibration"] = {"score": calibration.score_name,
                                   "fwhm_um": round(calibration.fwhm_um, 6),
                                   "dof_um": round(calibration.dof_um, 6),
                                   "dof_source": calibration.dof_source}
    ctx = _Ctx(guard, run, on_acquisition)
    fs_kwargs = {"max_images": max_images or 8, "bracket_fwhm": bracket_fwhm,
                 "fit_offset": fit_offset, "refine": refine, "adaptive": adaptive}
    try:
        if method == "fewshot":
            assert calibration is not None
            chosen = _fewshot(ctx, calibration, stain=stain, **fs_kwargs)
        elif method == "singleshot":
            chosen = _singleshot(ctx, calibration, stain=stain, dof=dof,
                                 min_confidence=min_confidence,
                                 min_sign_agreement=min_sign_agreement,
                                 fewshot_kwargs=fs_kwargs, distance_model=distance_model)
        else:
            chosen = _classic(ctx, dof=dof, search_range_um=search_range_um,
                              tolerance_um=tolerance_um, max_images=max_images or 40,
                              metric=metric)
        run.chosen_z_um = float(chosen)
        guard.travel_to(chosen)
        run.status = "ok"
    except Cancelled:
        run.status, run.stop_reason = "cancelled", "cancelled by the user"
    except UnsafeMoveError as exc:
        run.status, run.stop_reason = "refused", str(exc)
    except HardwareError as exc:
        run.status, run.stop_reason = "failed", str(exc)
    except FocusQAError as exc:
        run.status, run.stop_reason = "failed", str(exc)
    except Exception as exc:  # an unexpected bug must not leave the stage somewhere odd
        run.status, run.stop_reason = "failed", f"{type(exc).__name__}: {exc}"
    if run.status != "ok":
        err = guard.restore()
        run.info["returned_to_start"] = err is None
        if err:
            run.stop_reason += f"; {err}"
    try:
        run.final_z_um = guard.z
    except HardwareError:
        run.final_z_um = None
    run.elapsed_s = time.perf_counter() - ctx.t0
    run.limits = guard.summary()
    run.info["microscope"] = getattr(microscope, "name", type(microscope).__name__)
    truth = getattr(microscope, "truth", None)
    if callable(truth) and run.final_z_um is not None:
        t = truth()
        err_um = run.final_z_um - t["true_focus_um"]
        sim = dict(t, error_um=err_um)
        if dof:
            sim["error_dof"] = err_um / dof
        sim["wrong_direction_moves"] = run.wrong_direction_moves(t["true_focus_um"])
        run.info["simulation"] = sim
    return run

