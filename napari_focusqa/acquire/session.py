"""One acquisition: a useq ``MDASequence`` run by pymmcore-plus' runner on
:class:`~napari_focusqa.acquire.engine.FocusQAEngine`, with :class:`LiveQC` attached.

:func:`build_sequence` makes the time-lapse × positions sequence (with an ``AxesBasedAF``
autofocus plan over ``("t", "p")``), :func:`check_calibration` validates a calibration
before anything moves, :func:`run_acquisition` runs it and returns an
:class:`AcquisitionResult` (``to_dict()`` = the ``focusqa acquire`` JSON).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from napari_focusqa.acquire.engine import AutofocusEvent, FocusQAEngine
from napari_focusqa.acquire.qc import LiveQC
from napari_focusqa.autofocus.safety import StageLimits
from napari_focusqa.core.errors import FocusQAError

ENGINE_NAME = "pymmcore-plus MDA"
#: ``--autofocus`` choices; which of them run depends on run_autofocus' METHODS
AUTOFOCUS_CHOICES = ("none", "fewshot", "singleshot", "twoshot", "classic")


def available_methods() -> tuple[str, ...]:
    from napari_focusqa.autofocus import search

    return tuple(getattr(search, "METHODS", ()))


def build_sequence(
    *,
    timepoints: int,
    interval_s: float,
    positions: int,
    z_um: float,
    xy_um: tuple[float, float] = (0.0, 0.0),
    position_spacing_um: float = 100.0,
    autofocus: bool,
    z_plan: Any = None,
) -> Any:
    """Positions along x (``position_spacing_um`` apart) at nominal z ``z_um``, a time plan
    of ``timepoints`` × ``interval_s``, autofocus at every (t, p) when ``autofocus``."""
    import useq

    if timepoints < 1:
        raise FocusQAError(f"timepoints: expected >= 1, got {timepoints}")
    if positions < 1:
        raise FocusQAError(f"positions: expected >= 1, got {positions}")
    if interval_s < 0:
        raise FocusQAError(f"interval_s: expected >= 0 s, got {interval_s}")
    x0, y0 = xy_um
    kw: dict[str, Any] = {
        "stage_positions": [useq.Position(x=x0 + i * position_spacing_um, y=y0, z=z_um)
                            for i in range(positions)],
        "axis_order": "tpgcz",
    }
    if timepoints > 1:
        kw["time_plan"] = useq.TIntervalLoops(interval=timedelta(seconds=interval_s),
                                              loops=timepoints)
    if z_plan is not None:
        kw["z_plan"] = z_plan
    if autofocus:
        kw["autofocus_plan"] = useq.AxesBasedAF(axes=("t", "p"))
    return useq.MDASequence(**kw)


def check_calibration(calibration: Any, method: str, microscope: Any,
                      stack: str | None = None) -> None:
    """Raise a one-line FocusQAError when ``method`` cannot run on ``microscope`` with
    ``calibration`` (missing, made on another instrument/channel/stack, score model gone;
    twoshot without optics). Called before anything moves."""
    if method in ("none", "classic"):
        return
    if method == "twoshot":
        from napari_focusqa.autofocus.twoshot import resolve_optics

        resolve_optics(microscope, None)  # names the first missing optics field
        return
    if calibration is None:
        raise FocusQAError(f"calibration: --autofocus {method} needs a calibration "
                           "(`focusqa calibrate ... --out cal.json`, then --calibration)")
    from napari_focusqa.autofocus.spectral import instrument_mismatch, instrument_of

    bad = instrument_mismatch(calibration.instrument or {}, instrument_of(microscope))
    if bad:
        raise FocusQAError(f"calibration: recorded on another instrument or channel ({bad}); "
                           "recalibrate on this one")
    cal_file = (calibration.source or {}).get("file")
    if stack and cal_file and Path(str(cal_file)).name != Path(stack).name:
        raise FocusQAError(f"calibration: made on {Path(str(cal_file)).name}, not on this "
                           f"microscope's stack {Path(stack).name}; recalibrate")
    if calibration.score_name.startswith("blur:") and calibration.score_name != "blur:sf":
        from napari_focusqa.core.model import load_model

        ref = calibration.model_ref or calibration.score_name[5:]
        try:
            load_model(ref)
        except Exception as exc:
            raise FocusQAError(f"calibration: its score model {ref!r} cannot be loaded "
                               f"({str(exc).splitlines()[0]}); recalibrate") from exc


@dataclass
class AcquisitionResult:
    """What one acquisition produced (``to_dict()`` is the CLI's JSON)."""

    frames: list[dict[str, Any]]
    autofocus_events: list[AutofocusEvent]
    faults: list[dict[str, Any]]
    finish: str
    elapsed_s: float
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": ENGINE_NAME,
            "finish": self.finish,
            "elapsed_s": round(self.elapsed_s, 3),
            **self.info,
            "frames": self.frames,
            "autofocus_events": [a.to_dict() for a in self.autofocus_events],
            "faults": self.faults,
        }


QC_THRESHOLDS = ("instrument", "card")


def qc_thresholds(model: Any, calibration: Any, rule: str,
                  microscope: Any = None) -> dict[str, Any]:
    """Verdict thresholds of a QC model (docs/acquire.md, "Which threshold").

    The returned dict holds four thresholds:
    - ``card``: the card's own threshold;
    - ``calibration``: the calibration's, None unless the calibration was made with this
      model;
    - ``optics``: the microscope's (:func:`~napari_focusqa.core.assess.
      in_focus_max_level_for` of its Airy disc), None unless the NA and pixel size are
      known;
    - ``used``: the one ``rule`` picks. For ``"instrument"`` that is the calibration's,
      else the optics', else the card's; for ``"card"`` it is the card's.
    """
    if rule not in QC_THRESHOLDS:
        raise FocusQAError(f"qc_threshold: expected one of {QC_THRESHOLDS}, got {rule!r}")
    card = getattr(model, "in_focus_max_level", None) if model is not None else None
    cal = (calibration.in_focus_max_level(model)
           if calibration is not None and model is not None else None)
    opt = None
    if model is not None and microscope is not None:
        from napari_focusqa.autofocus.optics import optics_for
        from napari_focusqa.core.assess import airy_diameter_px, in_focus_max_level_for

        try:
            o = optics_for(microscope)
        except FocusQAError:
            o = None
        airy = None if o is None else airy_diameter_px(o.na, o.wavelength_nm, o.pixel_size_um)
        opt = None if airy is None else in_focus_max_level_for(model, airy)
    used = card
    if rule == "instrument":
        used = cal if cal is not None else opt if opt is not None else card
    return {"rule": rule, "card": card, "calibration": cal, "optics": opt, "used": used}


def run_acquisition(
    microscope: Any,
    sequence: Any,
    *,
    limits: StageLimits,
    method: str | None,
    calibration: Any = None,
    model: Any = None,
    table: str | Path | None = None,
    truth: Callable[[Any], float | None] | None = None,
    reacquire: bool = False,
    on_fault: str = "continue",
    autofocus_options: dict[str, Any] | None = None,
    before_event: list[Callable[[Any], None]] | None = None,
    on_frame: Callable[[dict[str, Any], Any, Any], None] | None = None,
    engine: FocusQAEngine | None = None,
    qc_threshold: str = "instrument",
) -> AcquisitionResult:
    """Run ``sequence`` (blocking) with FocusQA autofocus and live QC.

    ``qc_threshold``: ``"instrument"`` (default) judges frames by the instrument's
    threshold: the calibration's when ``calibration`` was made with the QC model
    (:meth:`~napari_focusqa.autofocus.calibrate.Calibration.in_focus_max_level`), else the
    one the microscope's optics give (NA and pixel size, as for files), else the card's;
    ``"card"`` always uses the model card's. ``info["qc_in_focus_max_level"]`` records
    them all and the one used (:func:`qc_thresholds`).

    Refuses (FocusQAError) when another sequence is already running on the core.
    """
    core = microscope.core
    if core.mda.is_running():
        raise FocusQAError("refused: another MDA sequence is running on this "
                           "Micro-Manager core; stop it first")
    if method not in (None, "none") and method not in available_methods():
        raise FocusQAError(f"autofocus: {method!r} is not available in this build "
                           f"(available: {', '.join(available_methods())})")
    eng = engine or FocusQAEngine(
        microscope, limits, method=None if method == "none" else method,
        calibration=calibration, autofocus_options=autofocus_options, on_fault=on_fault)
    eng.before_event.extend(before_event or [])
    thr = qc_thresholds(model, calibration, qc_threshold, microscope)
    qc = LiveQC(model, table=table, truth=truth, engine=eng, reacquire=reacquire,
                in_focus_max_level=thr["used"])
    if on_frame is not None:
        qc.frameAssessed.connect(on_frame)
    previous = core.mda.set_engine(eng)
    qc.attach(core.mda)
    t0 = time.perf_counter()
    try:
        core.mda.run(sequence)
    finally:
        qc.close()
        if previous is not None:
            core.mda.set_engine(previous)
    # the runner's own record (signals may be queued to a GUI thread)
    cancelled = str(getattr(core.mda.status.finish_reason, "value", "")) == "canceled"
    finish = "completed"
    if cancelled:
        finish = "stopped after a fault" if eng.stopped_by_fault else "cancelled"
    info = {"autofocus_method": method, "on_fault": on_fault,
            "reacquisitions": eng.n_reacquisitions,
            "returned_to_start": eng.returned_to_start,
            "qc_listener_errors": qc.listener_errors,
            "qc_in_focus_max_level": thr,
            "limits": limits.to_dict()}
    return AcquisitionResult(frames=qc.rows, autofocus_events=eng.af_events,
                             faults=eng.faults, finish=finish,
                             elapsed_s=time.perf_counter() - t0, info=info)
