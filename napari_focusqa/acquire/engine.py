"""FocusQA inside pymmcore-plus MDA sequences: :class:`FocusQAEngine`.

A subclass of ``pymmcore_plus.mda.MDAEngine`` (the stock engine) that

- handles the sequence's ``autofocus_plan`` events (useq ``AxesBasedAF`` ->
  ``event.action`` = ``HardwareAutofocus``) with FocusQA's
  :func:`~napari_focusqa.autofocus.search.run_autofocus` (the user's method and
  calibration) instead of the hardware ``fullFocus()``;
- stores the per-position z correction in the stock engine's ``_z_correction`` map
  (``{p index: µm}``, as its hardware-autofocus path does) so that every later event at
  that position, z-stacks included, is moved to ``event.z_pos + correction``;
- moves the focus stage for every event through
  :class:`~napari_focusqa.autofocus.safety.StageGuard` (limits, max step, refuse-not-clamp);
- never lets a failed autofocus abort the sequence: ``run_autofocus`` has already put the
  stage back where the autofocus started (the last good z), the failure is recorded on
  that event (:attr:`FocusQAEngine.af_events`) and the correction stays the last good one;
- records camera/stage faults (:attr:`FocusQAEngine.faults`; the fault listeners, e.g. the
  live QC table, get a row) and either goes on (``on_fault="continue"``) or cancels the
  sequence and returns the stage to the z it had at the start (``on_fault="stop"``);
- can insert one bounded re-focus + re-acquisition of a frame that live QC flagged
  (:meth:`FocusQAEngine.request_reacquisition`), at the next event boundary.

While the sequence runs, FocusQA's own autofocus on that core is refused from any other
thread (``MMCoreMicroscope.check_idle``); this engine marks its thread in
``focusqa_af_thread``.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from pymmcore_plus.mda import MDAEngine, SkipEvent
from pymmcore_plus.mda._engine import ImagePayload
from useq import HardwareAutofocus, MDAEvent, MDASequence

from napari_focusqa.autofocus.safety import HardwareError, StageGuard, StageLimits, UnsafeMoveError
from napari_focusqa.core.errors import FocusQAError

ON_FAULT = ("continue", "stop")


@dataclass
class AutofocusEvent:
    """One autofocus event of a sequence (what the JSON's per-frame ``autofocus`` holds)."""

    t: int | None
    p: int | None
    method: str
    status: str
    stop_reason: str
    images_used: int
    z_um: list[float] = field(default_factory=list)
    start_z_um: float | None = None
    final_z_um: float | None = None
    correction_um: float = 0.0
    elapsed_s: float = 0.0
    refocus: bool = False

    def to_dict(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(float(v), 4)

        return {"t": self.t, "p": self.p, "method": self.method, "status": self.status,
                "stop_reason": self.stop_reason, "images_used": self.images_used,
                "z_um": [round(float(z), 4) for z in self.z_um],
                "start_z_um": r(self.start_z_um), "final_z_um": r(self.final_z_um),
                "correction_um": round(float(self.correction_um), 4),
                "elapsed_s": round(float(self.elapsed_s), 4), "refocus": self.refocus}


class _DeviceWatch:
    """The microscope as seen by one autofocus run: remembers a device fault (the run
    itself turns it into status "failed" and returns the stage to its start)."""

    def __init__(self, microscope: Any) -> None:
        self.m = microscope
        self.name = getattr(microscope, "name", "microscope")
        self.error: tuple[str, str] | None = None

    def _call(self, kind: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            if self.error is None:
                self.error = (kind, f"{type(exc).__name__}: {exc}")
            raise

    def get_z(self) -> float:
        return float(self._call("stage", self.m.get_z))

    def set_z(self, z_um: float) -> None:
        self._call("stage", self.m.set_z, z_um)

    def snap(self) -> Any:
        return self._call("camera", self.m.snap)

    def info(self) -> dict[str, Any]:
        return dict(self.m.info())


def _tp(event: MDAEvent) -> tuple[int | None, int | None]:
    return event.index.get("t"), event.index.get("p")


class FocusQAEngine(MDAEngine):
    """MDA engine with FocusQA autofocus, guarded z moves and fault recording.

    Parameters
    ----------
    microscope : MMCoreMicroscope
        The microscope whose ``core`` runs the sequence (``SimulatedMicroscope`` included).
    limits : StageLimits
        Focus-stage limits for every move of the sequence and of its autofocus.
    method : str or None
        FocusQA autofocus method for the ``autofocus_plan`` events; None hands them to the
        stock hardware autofocus.
    calibration : Calibration, optional
        Passed to ``run_autofocus`` (required by fewshot).
    autofocus_options : dict, optional
        Extra ``run_autofocus`` keyword arguments (``max_images``, ``stain``, ...).
    on_fault : {"continue", "stop"}
        After a camera/stage fault: record it and go on, or cancel the sequence and bring the
        stage back to its start z (guarded).
    max_reacquisitions : int
        Bound on QC-triggered re-focus + re-acquisitions per sequence.
    """

    def __init__(
        self,
        microscope: Any,
        limits: StageLimits,
        *,
        method: str | None = "fewshot",
        calibration: Any = None,
        autofocus_options: dict[str, Any] | None = None,
        on_fault: str = "continue",
        max_reacquisitions: int = 5,
    ) -> None:
        if on_fault not in ON_FAULT:
            raise FocusQAError(f"on_fault: expected one of {ON_FAULT}, got {on_fault!r}")
        super().__init__(microscope.core, use_hardware_sequencing=False,
                         restore_initial_state=False)
        self.microscope = microscope
        self.limits = limits
        self.method = method
        self.calibration = calibration
        self.autofocus_options = dict(autofocus_options or {})
        self.on_fault = on_fault
        self.max_reacquisitions = int(max_reacquisitions)
        #: callables run with each event before it is set up (e.g. a simulated drift)
        self.before_event: list[Callable[[MDAEvent], None]] = []
        #: ``listener(event, kind, message)`` after a fault (e.g. LiveQC.record_fault)
        self.fault_listeners: list[Callable[[MDAEvent, str, str], None]] = []
        #: ``listener(AutofocusEvent)`` after every autofocus event
        self.autofocus_listeners: list[Callable[[AutofocusEvent], None]] = []
        self.focusqa_af_thread: int | None = None
        self._reset()

    def _reset(self) -> None:
        self.af_events: list[AutofocusEvent] = []
        self.faults: list[dict[str, Any]] = []
        self.last_af: dict[tuple[int | None, int | None], AutofocusEvent] = {}
        self.start_z_um: float | None = None
        self.stopped_by_fault = False
        self.returned_to_start: bool | None = None
        self._requests: collections.deque[tuple[MDAEvent, str]] = collections.deque()
        self._reacquired: set[str] = set()
        self.n_reacquisitions = 0

    # --- sequence ----------------------------------------------------------------------
    def setup_sequence(self, sequence: MDASequence) -> Any:
        self._reset()
        self.focusqa_af_thread = threading.get_ident()
        self.start_z_um = self._guard().start_z  # refuses a stage outside the limits
        return super().setup_sequence(sequence)

    def teardown_sequence(self, sequence: MDASequence) -> None:
        try:
            super().teardown_sequence(sequence)
            if self.stopped_by_fault and self.start_z_um is not None:
                self.returned_to_start = self._safe_return()
        finally:
            self.focusqa_af_thread = None

    def _guard(self) -> StageGuard:
        return StageGuard(self.microscope, self.limits)

    def _safe_return(self) -> bool:
        try:
            assert self.start_z_um is not None
            self._guard().travel_to(self.start_z_um)
            return True
        except Exception as exc:  # recorded, never raised from teardown
            self.faults.append({"kind": "stage", "message": f"return to start z failed: {exc}",
                                "event": None})
            return False

    # --- events --------------------------------------------------------------------------
    def event_iterator(self, events: Iterable[MDAEvent]) -> Iterator[MDAEvent]:
        for ev in super().event_iterator(events):
            yield from self._pending_reacquisitions()
            yield ev
        yield from self._pending_reacquisitions()

    def setup_event(self, event: MDAEvent) -> None:
        for hook in self.before_event:
            hook(event)
        try:
            super().setup_event(event)
        except (UnsafeMoveError, HardwareError) as exc:
            is_af = isinstance(event.action, HardwareAutofocus)
            if is_af:
                self._record_af(event, status="failed", reason=f"stage: {exc}")
            self._fault(event, "stage", str(exc))
            raise SkipEvent(num_frames=0 if is_af else 1, reason=str(exc)) from exc

    def _set_event_z(self, event: MDAEvent) -> None:
        p = event.index.get("p")
        correction = self._z_correction.setdefault(p, 0.0)
        self._guard().travel_to(float(cast(float, event.z_pos)) + correction)

    def exec_event(self, event: MDAEvent) -> Iterable[Any]:
        if isinstance(event.action, HardwareAutofocus) and self.method:
            self._autofocus(event)
            return ()
        return super().exec_event(event)

    def exec_single_event(self, event: MDAEvent) -> Iterator[Any]:
        core = self.mmcore
        if core.getNumberOfCameraChannels() > 1:  # pragma: no cover - multi-camera rigs
            yield from super().exec_single_event(event)
            return
        try:
            core.snapImage()
            img = core.getImage()
        except Exception as exc:
            self._fault(event, "camera", f"snapping an image failed: {exc}")
            return
        t0 = event.metadata.get("runner_t0") or time.perf_counter()
        meta = self.get_frame_metadata(event, runner_time_ms=(time.perf_counter() - t0) * 1e3,
                                       include_position=True)
        yield ImagePayload(img, event, meta)

    def get_frame_metadata(self, event: MDAEvent, *args: Any, **kwargs: Any) -> Any:
        meta = cast(dict[str, Any], super().get_frame_metadata(event, *args, **kwargs))
        af = self.last_af.get(_tp(event))
        try:
            z = float(self.microscope.get_z())
        except Exception:
            z = None
        meta["focusqa"] = {
            "z_um": z,
            "z_correction_um": self._z_correction.get(event.index.get("p"), 0.0),
            "autofocus": None if af is None else af.to_dict(),
            "reacquisition_of": event.metadata.get("focusqa_reacquisition_of"),
        }
        return meta

    # --- autofocus ---------------------------------------------------------------------
    def _autofocus(self, event: MDAEvent) -> None:
        from napari_focusqa.autofocus import run_autofocus

        p = event.index.get("p")
        old = self._z_correction.get(p, 0.0)
        scope = _DeviceWatch(self.microscope)
        try:
            run = run_autofocus(scope, str(self.method), calibration=self.calibration,
                                limits=self.limits, cancel=self._cancel_requested,
                                **self.autofocus_options)
        except Exception as exc:  # bad arguments etc.: recorded, the sequence goes on
            self._record_af(event, status="failed", reason=f"{type(exc).__name__}: {exc}")
            return
        correction = old
        if run.ok and run.final_z_um is not None:
            nominal = (float(event.z_pos) if event.z_pos is not None
                       else run.start_z_um - old)
            correction = run.final_z_um - nominal
            self._z_correction[p] = correction
        self._record_af(event, status=run.status, reason=run.stop_reason,
                        images=run.images_used, zs=[a.z_um for a in run.acquisitions],
                        start=run.start_z_um, final=run.final_z_um, correction=correction,
                        elapsed=run.elapsed_s, method=run.method_used or run.method)
        if scope.error is not None:  # a device fault inside the autofocus
            self._fault(event, *scope.error)

    def _record_af(self, event: MDAEvent, *, status: str, reason: str, images: int = 0,
                   zs: list[float] | None = None, start: float | None = None,
                   final: float | None = None, correction: float | None = None,
                   elapsed: float = 0.0, method: str | None = None) -> None:
        t, p = _tp(event)
        rec = AutofocusEvent(
            t=t, p=p, method=method or str(self.method), status=status, stop_reason=reason,
            images_used=images, z_um=list(zs or []), start_z_um=start, final_z_um=final,
            correction_um=self._z_correction.get(p, 0.0) if correction is None else correction,
            elapsed_s=elapsed, refocus=bool(event.metadata.get("focusqa_refocus")))
        self.af_events.append(rec)
        self.last_af[(t, p)] = rec
        for cb in self.autofocus_listeners:
            cb(rec)

    def _cancel_requested(self) -> bool:
        return bool(self.mmcore.mda.status.cancel_requested)

    # --- faults ------------------------------------------------------------------------
    def _fault(self, event: MDAEvent, kind: str, message: str) -> None:
        is_af = isinstance(event.action, HardwareAutofocus)
        self.faults.append({"kind": kind, "message": message, "event": dict(event.index),
                            "during": "autofocus" if is_af else "frame"})
        if not is_af:  # a frame that was not acquired still gets its row
            for cb in self.fault_listeners:
                cb(event, kind, message)
        if self.on_fault == "stop" and not self.stopped_by_fault:
            self.stopped_by_fault = True
            self.mmcore.mda.cancel()

    # --- QC-triggered re-acquisition -----------------------------------------------------
    def request_reacquisition(self, event: MDAEvent, reason: str) -> bool:
        """Ask for one re-focus + re-acquisition of ``event`` (thread-safe; at most once
        per frame and ``max_reacquisitions`` per sequence). Returns whether it was queued."""
        if event.metadata.get("focusqa_reacquisition_of") is not None:
            return False
        key = repr(sorted(event.index.items()))
        if key in self._reacquired or len(self._reacquired) >= self.max_reacquisitions:
            return False
        self._reacquired.add(key)
        self._requests.append((event, reason))
        return True

    def _pending_reacquisitions(self) -> Iterator[MDAEvent]:
        while self._requests:
            event, reason = self._requests.popleft()
            key = repr(sorted(event.index.items()))
            md = {k: v for k, v in event.metadata.items() if k != "runner_t0"}
            if self.method:
                yield event.model_copy(update={
                    "action": HardwareAutofocus(), "min_start_time": None,
                    "reset_event_timer": False,
                    "metadata": {**md, "focusqa_refocus": True}})
            self.n_reacquisitions += 1
            yield event.model_copy(update={
                "min_start_time": None, "reset_event_timer": False,
                "metadata": {**md, "focusqa_reacquisition_of": key,
                             "focusqa_reacquisition_reason": reason}})
