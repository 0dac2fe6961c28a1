"""Live focus QC of an MDA sequence: every ``mda.events.frameReady`` frame is assessed off
the acquisition thread and written, one atomic row per frame, to a results table.

:class:`LiveQC` ``attach``-es to a runner's ``frameReady`` (the slot only queues the frame,
so the acquisition never waits for the model); a worker thread runs
:func:`napari_focusqa.core.assess.assess_image`, adds the verdict / expected level /
certainty to the frame's metadata dict (key ``"focusqa"``, filled in when the assessment
finishes) and appends the row to the CSV (header by temp file + rename, each row in one
unbuffered ``os.write`` as in batch, so a kill or cancel keeps every row written).
Frames whose verdict is in ``alert_verdicts`` emit :attr:`LiveQC.alert` and, when
``reacquire`` is set, ask the engine for one bounded re-focus + re-acquisition.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from psygnal import Signal

from napari_focusqa.core.errors import FocusQAError

#: columns of the live results table (one row per frame, or per faulted event)
FRAME_COLUMNS = (
    "frame", "t", "p", "c", "z", "channel", "z_um", "z_correction_um", "reacquisition_of",
    "verdict", "expected_level", "predicted_level", "certainty", "structured_fraction", "sf",
    "af_method", "af_status", "af_images", "af_z_um", "true_focus_um", "focus_error_um",
    "qc_ms", "qc_latency_ms", "fault",
)
ALERT_VERDICTS = ("out_of_focus", "no_structure")
_INT_COLS = {"frame", "t", "p", "c", "z", "predicted_level", "af_images"}
_STR_COLS = {"channel", "reacquisition_of", "verdict", "af_method", "af_status", "af_z_um",
             "fault"}


def read_frames(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a live results table, typed (a torn last line, from a kill, is ignored)."""
    import csv
    import io

    text = Path(path).read_bytes().decode("utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    out = []
    for r in csv.DictReader(io.StringIO(text)):
        out.append({k: None if v == "" else v if k in _STR_COLS else
                    int(v) if k in _INT_COLS else float(v) for k, v in r.items()})
    return out


def _r(v: Any, nd: int = 4) -> Any:
    return None if v is None else round(float(v), nd)


def _connect_direct(signal: Any, slot: Callable[..., Any]) -> None:
    """Connect so that ``slot`` runs in the emitting (acquisition) thread: psygnal does
    that; a Qt-backed runner (``PYMM_SIGNALS_BACKEND`` auto with a QApplication) would
    queue it to the GUI thread, where frames still in flight at the end would be lost."""
    from psygnal import SignalInstance

    if isinstance(signal, SignalInstance):
        signal.connect(slot)
        return
    from qtpy.QtCore import Qt

    signal.connect(slot, Qt.ConnectionType.DirectConnection)


class LiveQC:
    """Assess frames of a running sequence on a worker thread.

    Parameters
    ----------
    model : str, FocusModel or None
        Levels model (id, card path or loaded); None = spatial frequency only (no verdict).
    table : path, optional
        ``.csv`` results table written incrementally.
    truth : callable, optional
        ``truth(event) -> true focus (µm)`` on a simulated microscope.
    engine : FocusQAEngine, optional
        Receives re-acquisition requests when ``reacquire`` is True.
    alert_verdicts : tuple of str
        Verdicts that raise :attr:`alert`.
    """

    #: ``(row, FocusResult or None, image or None)`` after every frame/fault row (worker thread)
    frameAssessed = Signal(object, object, object)
    #: ``row`` of a frame whose verdict is in ``alert_verdicts`` (worker thread)
    alert = Signal(object)

    def __init__(
        self,
        model: Any = None,
        *,
        table: str | Path | None = None,
        stain: str | None = None,
        truth: Callable[[Any], float | None] | None = None,
        engine: Any = None,
        reacquire: bool = False,
        alert_verdicts: tuple[str, ...] = ALERT_VERDICTS,
        in_focus_max_level: int | None = None,
    ) -> None:
        from napari_focusqa.batch.sinks import CsvSink

        self.model = model
        #: the verdict threshold (None: the card's; run_acquisition passes the one
        #: :func:`~napari_focusqa.acquire.session.qc_thresholds` picks)
        self.in_focus_max_level = in_focus_max_level
        self.stain = stain
        self.truth = truth
        self.engine = engine
        self.reacquire = reacquire
        self.alert_verdicts = tuple(alert_verdicts)
        self.rows: list[dict[str, Any]] = []
        #: exceptions raised by frameAssessed/alert listeners (QC went on)
        self.listener_errors: list[str] = []
        self.sink: Any = None
        if table is not None:
            path = Path(table)
            if path.suffix.lower() != ".csv":
                raise FocusQAError(f"table: expected a .csv file name, got {path.name!r}")
            self.sink = CsvSink(path, FRAME_COLUMNS)
        self._q: queue.Queue[Any] = queue.Queue()
        self._n = 0
        self._lock = threading.Lock()
        self._mda: Any = None
        self._thread = threading.Thread(target=self._work, name="focusqa-live-qc", daemon=True)
        self._thread.start()

    # --- connection --------------------------------------------------------------------
    def attach(self, mda: Any) -> None:
        """Connect to a runner's ``events.frameReady`` (and an engine's fault listeners)."""
        self._mda = mda
        _connect_direct(mda.events.frameReady, self.submit)
        if self.engine is not None:
            self.engine.fault_listeners.append(self.record_fault)

    def detach(self) -> None:
        if self._mda is not None:
            self._mda.events.frameReady.disconnect(self.submit)
            self._mda = None
        if self.engine is not None and self.record_fault in self.engine.fault_listeners:
            self.engine.fault_listeners.remove(self.record_fault)

    def submit(self, img: np.ndarray, event: Any, meta: dict[str, Any]) -> None:
        """frameReady slot: queue the frame (returns at once)."""
        self._q.put(("frame", img, event, meta, time.perf_counter()))

    def record_fault(self, event: Any, kind: str, message: str) -> None:
        """A faulted event gets a row too (fault listener of the engine)."""
        self._q.put(("fault", None, event, {"fault": f"{kind}: {message}"}, time.perf_counter()))

    def close(self, timeout: float | None = None) -> None:
        """Assess what is queued, then stop the worker and close the table."""
        self.detach()
        self._q.put(None)
        self._thread.join(timeout)
        if self.sink is not None:
            self.sink.close()
            self.sink = None

    @property
    def pending(self) -> int:
        return self._q.qsize()

    # --- worker ------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            kind, img, event, meta, t_in = item
            try:
                row, res = self._row(kind, img, event, meta, t_in)
            except Exception as exc:  # a bad frame never stops the QC of the others
                row, res = self._base_row(event, meta), None
                row["fault"] = f"qc: {type(exc).__name__}: {exc}"
            self.rows.append(row)
            if self.sink is not None:
                self.sink.write([row])
            try:  # a failing listener must not stop the QC of later frames
                self.frameAssessed.emit(row, res, img)
                if row.get("verdict") in self.alert_verdicts:
                    self.alert.emit(row)
                    if self.reacquire and self.engine is not None:
                        self.engine.request_reacquisition(event, str(row["verdict"]))
            except Exception as exc:
                self.listener_errors.append(f"{type(exc).__name__}: {exc}")

    def _base_row(self, event: Any, meta: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            n = self._n
            self._n += 1
        fq = meta.get("focusqa") or {}
        af = fq.get("autofocus") or {}
        idx = event.index
        ch = event.channel
        row: dict[str, Any] = dict.fromkeys(FRAME_COLUMNS)
        row.update({
            "frame": n, "t": idx.get("t"), "p": idx.get("p"), "c": idx.get("c"),
            "z": idx.get("z"), "channel": None if ch is None else ch.config,
            "z_um": _r(fq.get("z_um")), "z_correction_um": _r(fq.get("z_correction_um")),
            "reacquisition_of": fq.get("reacquisition_of"),
            "af_method": af.get("method"), "af_status": af.get("status"),
            "af_images": af.get("images_used"),
            "af_z_um": None if not af else " ".join(f"{z:.3f}" for z in af.get("z_um", [])),
            "fault": meta.get("fault"),
            "autofocus": af or None,  # JSON only (the table has the af_* columns)
        })
        if self.truth is not None:
            tf = self.truth(event)
            row["true_focus_um"] = _r(tf)
            if tf is not None and row["z_um"] is not None:
                row["focus_error_um"] = _r(row["z_um"] - tf)
        return row

    def _row(self, kind: str, img: Any, event: Any, meta: dict[str, Any], t_in: float,
             ) -> tuple[dict[str, Any], Any]:
        from napari_focusqa.core.assess import assess_image

        row = self._base_row(event, meta)
        if kind != "frame":
            return row, None
        t0 = time.perf_counter()
        res = assess_image(img, self.model, stain=self.stain)
        if self.in_focus_max_level is not None and res.probabilities is not None:
            res.in_focus_max_level = int(self.in_focus_max_level)
        t1 = time.perf_counter()
        row.update(verdict=res.verdict, expected_level=_r(res.expected_level),
                   predicted_level=res.predicted_level, certainty=_r(res.aggregate_certainty),
                   structured_fraction=_r(res.structured_fraction),
                   sf=_r(res.sf, 6), qc_ms=round((t1 - t0) * 1e3, 2),
                   qc_latency_ms=round((t1 - t_in) * 1e3, 2))
        meta.setdefault("focusqa", {}).update(
            verdict=row["verdict"], expected_level=row["expected_level"],
            certainty=row["certainty"], structured_fraction=row["structured_fraction"])
        return row, res
