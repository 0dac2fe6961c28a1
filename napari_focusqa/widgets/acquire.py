"""The "Acquire" dock widget: a pymmcore-plus MDA time-lapse with FocusQA autofocus and
live focus QC, on a simulated microscope replaying a z-stack layer or on the shared
``CMMCorePlus.instance()`` (the core napari-micromanager uses).

A magicgui form (values persisted between sessions) defines the sequence (time points,
interval, positions, autofocus method and calibration, QC options). Start runs
:func:`napari_focusqa.acquire.session.run_acquisition` in a napari ``thread_worker``: the
MDA runs on its own thread, live QC assesses each frame off that thread, and the worker
yields every assessed frame to the GUI thread, which puts it in the "FocusQA live" image
layer, draws the patch borders on it ("FocusQA live borders"), updates the plot of
expected level and z correction over time and raises a napari notification for
out-of-focus / no-structure frames. Stop cancels the sequence at the next event boundary
(every row written so far is kept).
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Any, get_type_hints

import numpy as np
from magicgui import magicgui
from magicgui.widgets import Container, Label, PushButton
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.layers import Image
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning

from napari_focusqa.acquire.session import AUTOFOCUS_CHOICES
from napari_focusqa.core.errors import FocusQAError

SIMULATED, INSTANCE = "simulated (z-stack layer)", "CMMCorePlus.instance()"
LIVE, BORDERS = "FocusQA live", "FocusQA live borders"
ALERT_EVERY_S = 3.0  # at most one QC notification per this many seconds


def _form(
    microscope: str = SIMULATED,
    stack_layer: Image | None = None,
    timepoints: int = 20,
    interval_s: float = 0.5,
    positions: int = 1,
    drift_um: float = 0.3,
    autofocus: str = "fewshot",
    calibration: Path | None = None,
    qc_model: str = "",
    reacquire: bool = False,
    on_fault: str = "continue",
    z_min_um: float = 0.0,
    z_max_um: float = 0.0,
    max_step_um: float = 0.0,
    table: Path | None = None,
) -> None:
    """Sequence and QC settings (see the module doc)."""


# magicgui resolves annotations without this module's globals
_form.__annotations__ = get_type_hints(_form)


def _given(p: Any) -> str | None:
    """A file path from a FileEdit, or None when left empty (magicgui gives "." or cwd)."""
    s = str(p or "").strip()
    return None if s in ("", ".") or Path(s).is_dir() else s


class AcquireWidget(Container):
    """Dock widget "Acquire" (see module docstring)."""

    def __init__(self, napari_viewer: Any) -> None:
        self.viewer = napari_viewer
        self.form = magicgui(
            _form, persist=True, call_button=False,
            microscope={"choices": [SIMULATED, INSTANCE]},
            autofocus={"choices": list(AUTOFOCUS_CHOICES)},
            on_fault={"choices": ["continue", "stop"]},
            timepoints={"min": 1, "max": 100000},
            positions={"min": 1, "max": 1000},
            interval_s={"min": 0.0, "max": 86400.0},
            drift_um={"min": -10.0, "max": 10.0, "step": 0.05,
                      "tooltip": "simulated sample drift per time point (µm)"},
            z_min_um={"min": -1e5, "max": 1e5, "tooltip": "hardware: lower z limit"},
            z_max_um={"min": -1e5, "max": 1e5, "tooltip": "hardware: upper z limit"},
            max_step_um={"min": 0.0, "max": 1e4, "tooltip": "hardware: largest single move"},
            calibration={"filter": "*.json", "nullable": True, "tooltip": "focusqa calibrate output; empty: "
                         "calibrate on a separate simulated run (simulator only)"},
            table={"mode": "w", "filter": "*.csv", "nullable": True, "tooltip": "live results table (CSV)"},
            qc_model={"tooltip": "QC levels model id / card path; empty: installed; none"},
        )
        self.start_button = PushButton(text="Start")
        self.stop_button = PushButton(text="Stop", enabled=False)
        self.status = Label(value="idle")
        super().__init__(widgets=[self.form, Container(widgets=[self.start_button,
                                                                self.stop_button],
                                                       layout="horizontal"), self.status])
        self.figure = Figure(figsize=(4, 2.6), tight_layout=True)
        self.ax = self.figure.add_subplot(111)
        self.ax2 = self.ax.twinx()
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(180)
        self.native.layout().addWidget(self.canvas)
        self.start_button.changed.connect(self.start)
        self.stop_button.changed.connect(self.stop)
        self.worker: Any = None
        self.microscope: Any = None
        self.rows: list[dict[str, Any]] = []
        self.result: Any = None
        self._last_alert = 0.0
        self._draw_plot()

    # --- state ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None

    def _set_running(self, on: bool) -> None:
        self.start_button.enabled = not on
        self.stop_button.enabled = on

    # --- setup ---------------------------------------------------------------------------
    def _prepare(self) -> tuple[Any, Any, dict[str, Any]]:
        from napari_focusqa.acquire.session import build_sequence, check_calibration
        from napari_focusqa.autofocus.calibrate import load_calibration
        from napari_focusqa.autofocus.safety import StageGuard, StageLimits
        from napari_focusqa.pipeline import resolve_model

        v = self.form.asdict()
        method = v["autofocus"]
        cal_path = _given(v["calibration"])
        cal = None if cal_path is None else load_calibration(cal_path)
        kw: dict[str, Any] = {"before_event": []}
        if v["microscope"] == SIMULATED:
            m, setup = self._simulated(v)
            kw.update(truth=setup.truth, limits=setup.limits)
            kw["before_event"].append(setup.sample.on_event)
            z0 = setup.base_focus_um
            if cal is None and method in ("fewshot", "singleshot"):
                cal = self._calibrate_simulated(v)
                show_info("Acquire: no calibration file; calibrated on a separate simulated "
                          "run of the same stack")
        else:
            from napari_focusqa.autofocus.microscope import MMCoreMicroscope

            m = MMCoreMicroscope.from_instance()
            if v["max_step_um"] <= 0 or v["z_max_um"] <= v["z_min_um"]:
                raise FocusQAError("z limits: set z_min_um < z_max_um and max_step_um > 0 "
                                   "for real hardware")
            kw["limits"] = StageLimits(v["z_min_um"], v["z_max_um"], v["max_step_um"])
            z0 = m.get_z()
            if method in ("fewshot", "singleshot") and cal is None:
                raise FocusQAError(f"calibration: autofocus {method} needs a calibration file")
        check_calibration(cal, method, m)
        if not kw["limits"].contains(z0):
            raise FocusQAError(f"start z {z0:.3f} µm is outside the z limits")
        seq = build_sequence(timepoints=v["timepoints"], interval_s=v["interval_s"],
                             positions=v["positions"], z_um=z0, autofocus=method != "none")
        if v["microscope"] == SIMULATED:
            StageGuard(m, kw["limits"]).travel_to(z0)
        table = _given(v["table"])
        kw.update(method=method, calibration=cal, model=resolve_model(v["qc_model"]),
                  table=table, reacquire=v["reacquire"], on_fault=v["on_fault"])
        return m, seq, kw

    def _stack_layer(self, v: dict[str, Any]) -> Any:
        from napari_focusqa.pipeline import layer_to_stack

        layer = v["stack_layer"]
        if layer is None:
            raise FocusQAError("stack_layer: choose a z-stack image layer for the simulator")
        st = layer_to_stack(layer)
        if st.n_slices < 3 or not st.z_step_um:
            raise FocusQAError(f"stack_layer: {layer.name!r} needs >= 3 z slices and a known "
                               "z step (layer scale or FocusQA metadata)")
        return np.asarray(st.zcyx[:, 0]), float(st.z_step_um)

    def _simulated(self, v: dict[str, Any]) -> tuple[Any, Any]:
        from napari_focusqa.acquire.sim import simulated_setup
        from napari_focusqa.autofocus.simulated import SimulatedMicroscope

        zyx, dz = self._stack_layer(v)
        m = SimulatedMicroscope(zyx, dz, seed=int(time.time()) % 100000, name="simulated")
        return m, simulated_setup(m, drift_um_per_t=v["drift_um"],
                                  timepoints=v["timepoints"], positions=v["positions"])

    def _calibrate_simulated(self, v: dict[str, Any]) -> Any:
        from napari_focusqa.acquire.sim import simulated_setup
        from napari_focusqa.autofocus.calibrate import calibrate_microscope
        from napari_focusqa.autofocus.safety import StageGuard
        from napari_focusqa.autofocus.simulated import SimulatedMicroscope

        zyx, dz = self._stack_layer(v)
        cm = SimulatedMicroscope(zyx, dz, seed=10007)
        s = simulated_setup(cm)
        lo, hi = cm.travel
        return calibrate_microscope(cm, StageGuard(cm, s.limits), z_from_um=lo, z_to_um=hi,
                                    step_um=dz)

    # --- run -----------------------------------------------------------------------------
    def start(self, *_: Any) -> Any:
        """Start the sequence (returns the worker, or None when refused)."""
        if self.running:
            return None
        try:
            m, seq, kw = self._prepare()
        except Exception as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.status.value = f"error: {msg}"
            show_error(f"Acquire: {msg}")
            return None
        self.microscope = m
        self.rows, self.result = [], None
        self._draw_plot()
        self.worker = _acquisition_worker(m, seq, kw)
        self.worker.yielded.connect(self._on_frames)
        self.worker.returned.connect(self._on_done)
        self.worker.errored.connect(self._on_error)
        self.worker.finished.connect(self._on_finished)
        self._set_running(True)
        self.status.value = f"running: {len(list(seq))} events"
        self.worker.start()
        return self.worker

    def stop(self, *_: Any) -> None:
        """Cancel the running sequence at the next event boundary."""
        if self.microscope is not None and self.running:
            self.microscope.core.mda.cancel()
            self.status.value = "stopping..."

    # --- GUI updates (main thread) ---------------------------------------------------------
    def _on_frames(self, batch: list[tuple[dict[str, Any], Any, Any]]) -> None:
        """Rows of every frame that arrived; the newest acquired frame is drawn."""
        for row, _res, _img in batch:
            self.rows.append(row)
        shown = [(res, img) for _row, res, img in batch if img is not None]
        if shown:
            self._show_frame(shown[-1][1], shown[-1][0])
        for row, _res, _img in batch:
            self._report(row)
        self._draw_plot()

    def _report(self, row: dict[str, Any]) -> None:
        err = row.get("focus_error_um")
        self.status.value = (
            f"frame {row['frame']}: t={row['t']} p={row['p']} z={row['z_um']} µm, "
            f"{row['verdict'] or row.get('fault') or '-'}"
            + (f" (expected level {row['expected_level']:.2f}, structured "
               f"{row['structured_fraction']:.0%})" if row["expected_level"] is not None
               and row["structured_fraction"] is not None else "")
            + ("" if err is None else f", error {err:+.2f} µm"))
        if row.get("verdict") in ("out_of_focus", "no_structure") and \
                time.monotonic() - self._last_alert > ALERT_EVERY_S:
            self._last_alert = time.monotonic()
            show_warning(f"Acquire: frame t={row['t']} p={row['p']} is {row['verdict']}")

    def _show_frame(self, img: np.ndarray, res: Any) -> None:
        from napari_focusqa.widgets.overlay import build_overlay

        if LIVE in self.viewer.layers:
            self.viewer.layers[LIVE].data = img
        else:
            self.viewer.add_image(img, name=LIVE, colormap="gray")
        if res is None or res.probabilities is None:
            return
        ov = build_overlay([res], two_d=True)
        if BORDERS in self.viewer.layers:
            layer = self.viewer.layers[BORDERS]
            if len(layer.data) == len(ov.coords):  # same grid: recolour in place
                layer.features = ov.features
                layer.border_color = ov.border_color
                return
            self.viewer.layers.remove(BORDERS)
        self.viewer.add_points(ov.coords, name=BORDERS, **ov.layer_kwargs())

    def _draw_plot(self) -> None:
        ax, ax2 = self.ax, self.ax2
        ax.clear()
        ax2.clear()
        rows = [r for r in self.rows if r.get("expected_level") is not None]
        x = [r["frame"] for r in rows]
        ax.plot(x, [r["expected_level"] for r in rows], "o-", color="tab:blue", ms=3)
        ax.set_xlabel("frame")
        ax.set_ylabel("expected level", color="tab:blue")
        zc = [(r["frame"], r["z_correction_um"]) for r in self.rows
              if r.get("z_correction_um") is not None]
        if zc:
            ax2.plot(*zip(*zc), "s-", color="tab:orange", ms=3)
        ax2.set_ylabel("z correction (µm)", color="tab:orange")
        self.canvas.draw_idle()

    def _on_done(self, result: Any) -> None:
        self.result = result
        self.status.value = (f"{result.finish}: {len(result.frames)} frames, "
                             f"{len(result.autofocus_events)} autofocus events, "
                             f"{len(result.faults)} faults")
        if result.faults:
            show_warning(f"Acquire: {len(result.faults)} fault(s): {result.faults[0]['message']}")

    def _on_error(self, exc: BaseException) -> None:
        self.status.value = f"error: {exc}"
        show_error(f"Acquire: {exc}")

    def _on_finished(self) -> None:
        self.worker = None
        self._set_running(False)


@thread_worker
def _acquisition_worker(m: Any, seq: Any, kw: dict[str, Any]) -> Any:
    """Run the acquisition on its own thread; yield every assessed frame to the GUI."""
    from napari_focusqa.acquire.session import run_acquisition

    q: queue.Queue[Any] = queue.Queue()
    out: dict[str, Any] = {}
    limits = kw.pop("limits")

    def job() -> None:
        try:
            out["result"] = run_acquisition(
                m, seq, limits=limits, on_frame=lambda r, res, img: q.put((r, res, img)), **kw)
        except Exception as exc:
            out["error"] = exc

    th = threading.Thread(target=job, name="focusqa-acquire", daemon=True)
    th.start()
    while th.is_alive() or not q.empty():
        try:
            batch = [q.get(timeout=0.05)]
        except queue.Empty:
            continue
        while not q.empty():  # the GUI gets what arrived since the last yield at once
            batch.append(q.get())
        yield batch
    if "error" in out:
        raise out["error"]
    return out["result"]
