"""Autofocus entry point: :func:`run_autofocus` over a
:class:`~napari_focusqa.autofocus.microscope.Microscope`.

Methods (one module each; see docs/autofocus.md):

fewshot (:mod:`~napari_focusqa.autofocus.fewshot`)
    DeepFocus: a calibrated blur curve, a convex triplet, a least-squares shift.
singleshot (:mod:`~napari_focusqa.autofocus.singleshot`)
    DeepAf-like, per instrument: the calibration's spatiospectral head gives a signed
    distance and a confidence from one image → one move → one confirming image; falls
    back to fewshot on low confidence (reason in ``stop_reason``).
twoshot (:mod:`~napari_focusqa.autofocus.twoshot`)
    Calibration-free: ``fqa-levels`` blur diameters + optics → ``|Δz|`` from one image,
    the sign from a second image at a known offset, then one move (2 + 1 images).
classic (:mod:`~napari_focusqa.autofocus.classic`)
    Micro-Manager OughtaFocus-like: Brent's bounded minimisation of ``-SF``.

Every stage move and snap goes through
:class:`~napari_focusqa.autofocus.safety.StageGuard`; on a refused move, a device fault
or cancel the run stops and the stage goes back to where it started. The result is an
:class:`~napari_focusqa.autofocus.run.AutofocusRun`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from napari_focusqa.autofocus.calibrate import Calibration, CalibrationError
from napari_focusqa.autofocus.classic import classic
from napari_focusqa.autofocus.context import AcquisitionCallback, RunContext
from napari_focusqa.autofocus.distance import predict_distance
from napari_focusqa.autofocus.fewshot import fewshot, fit_shift, is_convex
from napari_focusqa.autofocus.optics import Optics
from napari_focusqa.autofocus.run import AutofocusRun
from napari_focusqa.autofocus.safety import HardwareError, StageGuard, StageLimits, UnsafeMoveError
from napari_focusqa.autofocus.singleshot import singleshot
from napari_focusqa.autofocus.spectral import instrument_mismatch, instrument_of
from napari_focusqa.autofocus.twoshot import LevelGeometry, resolve_optics, twoshot
from napari_focusqa.core.errors import Cancelled, FocusQAError

METHODS = ("fewshot", "singleshot", "twoshot", "classic")

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


def _given_dof(optics: Optics | dict[str, Any] | None) -> float | None:
    """DoF of optics passed to a run (an :class:`Optics` or its dict), if valid."""
    if isinstance(optics, dict):
        try:
            optics = Optics.from_dict(optics)
        except (FocusQAError, KeyError, TypeError, ValueError):
            return None
    return None if optics is None else float(optics.dof_um)


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
    bracket_fwhm: float = 0.5,
    fit_offset: bool | None = None,
    refine: bool = False,
    adaptive: bool = True,
    search_range_um: float | None = None,
    tolerance_um: float | None = None,
    metric: str = "sf",
    min_confidence: float = 0.5,
    min_sign_agreement: float = 0.7,
    distance_model: Any = "auto",
    optics: Optics | dict[str, Any] | None = None,
    levels_model: Any = "auto",
) -> AutofocusRun:
    """Run one autofocus search; never leaves the stage at an unplanned place.

    Parameters
    ----------
    microscope : Microscope
    method : {"fewshot", "singleshot", "twoshot", "classic"}
    calibration : Calibration, optional
        Required by fewshot and singleshot (its single-shot head; fewshot fallback).
        A calibration recorded on another instrument or channel is refused.
    limits : StageLimits, optional
        Defaults to a simulated stage's travel; required for real hardware.
    stain : str, optional
        Stain class for stain-aware models.
    dof_um : float, optional
        Depth of field; defaults to the calibration's, else that of ``optics``, else
        the microscope's optics.
    cancel : callable, optional
        Polled before every move/snap; True stops the run (status "cancelled").
    on_acquisition : callable, optional
        ``on_acquisition(acquisition, image)`` after every image (e.g. GUI updates).
    max_images : int, optional
        Image budget (fewshot 8, classic 40 by default).
    min_confidence : float
        Single-shot: below this confidence the run falls back to fewshot.
    min_sign_agreement, distance_model
        Accepted for compatibility; single-shot now uses the calibration's head.
    optics : Optics or dict, optional
        Twoshot: NA, wavelength, immersion index, pixel size (else the microscope's).
    levels_model : str, path, FocusModel or "auto"
        Twoshot: the levels model whose card gives blur diameters (``fqa-levels``).
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
        Bad arguments (unknown method, missing calibration, a calibration from another
        instrument/channel, missing optics for twoshot, stage outside the limits).
    """
    if method not in METHODS:
        raise FocusQAError(f"method: expected one of {METHODS}, got {method!r}")
    if method in ("fewshot", "singleshot") and calibration is None:
        raise FocusQAError(f"calibration: the {method} method needs a calibration "
                           "(`focusqa calibrate` or the widget's Calibrate button)")
    if calibration is not None and calibration.instrument and method != "twoshot":
        bad = instrument_mismatch(calibration.instrument, instrument_of(microscope))
        if bad:
            raise CalibrationError(f"calibration: recorded on another instrument or channel "
                                   f"({bad}); recalibrate on this one")
    geom = None
    if method == "twoshot":
        from napari_focusqa.core.model import default_model_id, load_model

        ref = default_model_id() if levels_model == "auto" else levels_model
        if ref is None:
            raise FocusQAError("levels_model: twoshot needs a levels model (fqa-levels); "
                               "none is installed")
        geom = LevelGeometry(load_model(ref), resolve_optics(microscope, optics))
    lim = limits or default_limits(microscope)
    guard = StageGuard(microscope, lim, cancel=cancel)
    dof = dof_um or (calibration.dof_um if calibration is not None else None) or \
        (geom.optics.dof_um if geom is not None else None) or _given_dof(optics) or \
        _microscope_dof(microscope)
    run = AutofocusRun(method=method, start_z_um=guard.start_z, method_used=method,
                       dof_um=dof)
    if calibration is not None:
        run.info["calibration"] = {"score": calibration.score_name,
                                   "fwhm_um": round(calibration.fwhm_um, 6),
                                   "dof_um": round(calibration.dof_um, 6),
                                   "dof_source": calibration.dof_source}
    ctx = RunContext(guard, run, on_acquisition)
    fs_kwargs: dict[str, Any] = {"max_images": max_images or 8, "bracket_fwhm": bracket_fwhm,
                 "fit_offset": fit_offset, "refine": refine, "adaptive": adaptive}
    try:
        if method == "fewshot":
            assert calibration is not None
            chosen = fewshot(ctx, calibration, stain=stain, **fs_kwargs)
        elif method == "singleshot":
            chosen = singleshot(ctx, calibration, stain=stain, min_confidence=min_confidence,
                                fewshot_kwargs=fs_kwargs)
        elif method == "twoshot":
            assert geom is not None and dof is not None
            chosen = twoshot(ctx, geom, dof=float(dof), stain=stain)
        else:
            chosen = classic(ctx, dof=dof, search_range_um=search_range_um,
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
        run.info["restore"] = {"residual_um": guard.restore_residual_um,
                               "tolerance_um": guard.tolerance_um,
                               "moves": guard.restore_moves}
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



# re-exported for callers of the pre-split module
__all__ = ["METHODS", "AcquisitionCallback", "default_limits", "fit_shift", "is_convex",
           "predict_distance", "run_autofocus"]
