"""napari dock widget: drive autofocus on a (simulated) microscope.

Connect a simulated microscope built from the selected z-stack layer (a ``UniMMCore``
replaying the stack, see :mod:`napari_focusqa.autofocus.simulated`), a Micro-Manager
config file, or the shared ``CMMCorePlus.instance()``; set z limits and the maximum
step; Snap / Move / Calibrate / Autofocus / Cancel. Calibration and autofocus run in a
worker thread (napari ``create_worker``); every image lands in the "FocusQA microscope"
layer and on the score-vs-z plot, with the chosen z marked.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_focusqa.core.errors import FocusQAError

LIVE_LAYER = "FocusQA microscope"


class _Bridge(QObject):
    acquired = Signal(object, object)  # Acquisition, image


def stack_from_layer(layer: Any) -> tuple[np.ndarray, float]:
    """(Z, Y, X) array and z step (µm) of an image layer (leading axes at index 0)."""
    data = layer.data
    if isinstance(data, (list, tuple)):  # multiscale: full resolution
        data = data[0]
    arr = np.asarray(data)
    if getattr(layer, "rgb", False) or arr.ndim < 3:
        raise FocusQAError(f"layer: {layer.name!r} is not a z-stack (shape {arr.shape})")
    while arr.ndim > 3:
        arr = arr[0]
    meta = getattr(layer, "metadata", {}) or {}
    dz = meta.get("z_step_um") or (meta.get("focusqa") or {}).get("z_step_um")
    if not dz:
        s = float(layer.scale[-3])
        dz = s if s > 0 and s != 1.0 else 1.0
    return arr, float(dz)


class AutofocusWidget(QWidget):
    """Microscope + autofocus dock widget (see module doc)."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.microscope: Any = None
        self.calibration: Any = None
        self.last_run: Any = None
        self.last_error: str | None = None
        self.worker: Any = None
        self._cancel = threading.Event()
        self._live: list[tuple[float, float]] = []
        self._bridge = _Bridge()
        self._bridge.acquired.connect(self._on_acquired)

        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.layer_combo = QComboBox()
        form.addRow("z-stack layer", self.layer_combo)
        row = QHBoxLayout()
        self.sim_btn = QPushButton("Connect simulated")
        self.instance_btn = QPushButton("Shared MM core")
        row.addWidget(self.sim_btn)
        row.addWidget(self.instance_btn)
        form.addRow(row)
        row = QHBoxLayout()
        self.config_edit = QLineEdit()
        self.config_edit.setPlaceholderText("Micro-Manager .cfg file")
        self.config_btn = QPushButton("Connect config")
        row.addWidget(self.config_edit)
        row.addWidget(self.config_btn)
        form.addRow(row)
        self.scope_label = QLabel("not connected")
        form.addRow("microscope", self.scope_label)
        self.z_label = QLabel("-")
        form.addRow("current z (µm)", self.z_label)
        self.z_min = self._spin(-1e5, 1e5, 0.0)
        self.z_max = self._spin(-1e5, 1e5, 0.0)
        self.max_step = self._spin(0.001, 1e4, 10.0)
        form.addRow("z min (µm)", self.z_min)
        form.addRow("z max (µm)", self.z_max)
        form.addRow("max step (µm)", self.max_step)
        row = QHBoxLayout()
        self.target = self._spin(-1e5, 1e5, 0.0)
        self.move_btn = QPushButton("Move")
        self.snap_btn = QPushButton("Snap")
        row.addWidget(self.target)
        row.addWidget(self.move_btn)
        row.addWidget(self.snap_btn)
        form.addRow("go to z", row)
        self.method_combo = QComboBox()
        self.method_combo.addItems(["fewshot", "singleshot", "classic"])
        form.addRow("method", self.method_combo)
        lay.addLayout(form)
        row = QHBoxLayout()
        self.calibrate_btn = QPushButton("Calibrate")
        self.autofocus_btn = QPushButton("Autofocus")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        for b in (self.calibrate_btn, self.autofocus_btn, self.cancel_btn):
            row.addWidget(b)
        lay.addLayout(row)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.figure = Figure(figsize=(4, 2.6), tight_layout=True)
        self.ax = self.figure.add_subplot(111)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(200)
        lay.addWidget(self.canvas)

        self.sim_btn.clicked.connect(lambda: self.connect_simulated())
        self.instance_btn.clicked.connect(lambda: self.connect_instance())
        self.config_btn.clicked.connect(lambda: self.connect_config(self.config_edit.text()))
        self.move_btn.clicked.connect(lambda: self.move_to(self.target.value()))
        self.snap_btn.clicked.connect(lambda: self.snap())
        self.calibrate_btn.clicked.connect(lambda: self.calibrate())
        self.autofocus_btn.clicked.connect(lambda: self.autofocus())
        self.cancel_btn.clicked.connect(self.cancel)
        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self._refresh_layers()
        self._update_buttons()
        self._draw()

    # --- helpers -------------------------------------------------------------------
    @staticmethod
    def _spin(lo: float, hi: float, val: float) -> QDoubleSpinBox:
        s = QDoubleSpinBox()
        s.setRange(lo, hi)
        s.setDecimals(3)
        s.setValue(val)
        return s

    def _refresh_layers(self, *_: Any) -> None:
        from napari.layers import Image

        cur = self.layer_combo.currentText()
        self.layer_combo.clear()
        names = [ly.name for ly in self.viewer.layers
                 if isinstance(ly, Image) and ly.ndim >= 3 and ly.name != LIVE_LAYER]
        self.layer_combo.addItems(names)
        if cur in names:
            self.layer_combo.setCurrentText(cur)

    def _show_error(self, msg: str) -> None:
        self.last_error = msg
        self.status.setStyleSheet("color: #e06060")
        self.status.setText(msg)

    def _show(self, msg: str) -> None:
        self.status.setStyleSheet("")
        self.status.setText(msg)

    @property
    def running(self) -> bool:
        return self.worker is not None

    def _update_buttons(self) -> None:
        connected = self.microscope is not None
        idle = not self.running
        for b in (self.move_btn, self.snap_btn, self.calibrate_btn, self.autofocus_btn):
            b.setEnabled(connected and idle)
        for b in (self.sim_btn, self.instance_btn, self.config_btn):
            b.setEnabled(idle)
        self.cancel_btn.setEnabled(not idle)

    def _update_z(self) -> None:
        if self.microscope is not None:
            try:
                self.z_label.setText(f"{self.microscope.get_z():.3f}")
            except Exception as exc:  # a broken device must not kill the GUI
                self.z_label.setText(f"? ({exc})")

    def limits(self) -> Any:
        from napari_focusqa.autofocus.safety import StageLimits

        return StageLimits(self.z_min.value(), self.z_max.value(), self.max_step.value())

    # --- connect ---------------------------------------------------------------------
    def _set_microscope(self, m: Any, lo: float, hi: float, step: float) -> None:
        self.microscope = m
        self.calibration = None
        self.last_run = None
        self.z_min.setValue(lo)
        self.z_max.setValue(hi)
        self.max_step.setValue(step)
        self.target.setValue(m.get_z())
        self.scope_label.setText(m.name)
        self._update_z()
        self._update_buttons()
        self._draw()
        self._show(f"Connected: {m.name}")

    def connect_simulated(self, layer_name: str | None = None, **kwargs: Any) -> Any:
        """Simulated microscope replaying the chosen z-stack layer (kwargs: see
        :class:`~napari_focusqa.autofocus.simulated.SimulatedMicroscope`)."""
        from napari_focusqa.autofocus.simulated import SimulatedMicroscope

        name = layer_name or self.layer_combo.currentText()
        if not name or name not in self.viewer.layers:
            self._show_error("No z-stack layer: open a z-stack first")
            return None
        layer = self.viewer.layers[name]
        try:
            stack, dz = stack_from_layer(layer)
            kwargs.setdefault("name", f"simulated: {name}")
            if "optics" not in kwargs:  # NA / wavelength named in the file's Info text
                from napari_focusqa.autofocus.optics import optics_from_info

                fq = (getattr(layer, "metadata", {}) or {}).get("focusqa") or {}
                kwargs["optics"] = optics_from_info(fq.get("info"), fq.get("pixel_size_um"))
            m = SimulatedMicroscope(stack, dz, **kwargs)
        except FocusQAError as exc:
            self._show_error(str(exc))
            return None
        lo, hi = m.travel
        self._set_microscope(m, lo, hi, hi - lo)
        return m

    def connect_config(self, path: str) -> Any:
        from napari_focusqa.autofocus.microscope import MMCoreMicroscope

        try:
            m = MMCoreMicroscope.from_config(path)
        except FocusQAError as exc:
            self._show_error(str(exc))
            return None
        z = m.get_z()
        self._set_microscope(m, z - 50.0, z + 50.0, 10.0)
        self._show(f"Connected: {m.name}. Check the z limits and max step before moving!")
        return m

    def connect_instance(self) -> Any:
        from napari_focusqa.autofocus.microscope import MMCoreMicroscope

        try:
            m = MMCoreMicroscope.from_instance()
        except FocusQAError as exc:
            self._show_error(str(exc))
            return None
        z = m.get_z()
        self._set_microscope(m, z - 50.0, z + 50.0, 10.0)
        return m

    # --- direct actions (main thread; single moves/snaps are short) ----------------------
    def move_to(self, z: float) -> bool:
        from napari_focusqa.autofocus.safety import StageGuard

        if self.microscope is None or self.running:
            return False
        try:
            StageGuard(self.microscope, self.limits()).travel_to(z)
        except Exception as exc:
            self._show_error(str(exc))
            return False
        self._update_z()
        self._show(f"Moved to {z:.3f} µm")
        return True

    def snap(self) -> np.ndarray | None:
        if self.microscope is None or self.running:
            return None
        try:
            img = self.microscope.snap()
        except Exception as exc:
            self._show_error(f"Snap failed: {exc}")
            return None
        self._show_image(img)
        return img

    def _show_image(self, img: np.ndarray) -> None:
        if LIVE_LAYER in self.viewer.layers:
            self.viewer.layers[LIVE_LAYER].data = img
        else:
            self.viewer.add_image(img, name=LIVE_LAYER, colormap="gray")

    # --- worker jobs ---------------------------------------------------------------------
    def _start(self, fn: Any, on_done: Any, label: str) -> Any:
        from napari.qt.threading import create_worker

        if self.running:
            self._show_error("Busy: a calibration or autofocus run is in progress")
            return None
        if self.microscope is None:
            self._show_error("Connect a microscope first")
            return None
        try:
            lim = self.limits()
        except FocusQAError as exc:
            self._show_error(str(exc))
            return None
        self._cancel.clear()
        self._live = []
        self.last_error = None
        worker = create_worker(fn, lim, _start_thread=False)
        worker.returned.connect(on_done)
        worker.errored.connect(lambda exc: self._show_error(f"{type(exc).__name__}: {exc}"))
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self._update_buttons()
        self._show(label)
        worker.start()
        return worker

    def _emit(self, acq: Any, img: np.ndarray) -> None:
        self._bridge.acquired.emit(acq, img)

    def calibrate(self) -> Any:
        """Acquire a calibration sweep over the z limits (worker thread)."""
        from napari_focusqa.autofocus.calibrate import calibrate_microscope
        from napari_focusqa.autofocus.safety import StageGuard

        m = self.microscope

        def job(lim: Any) -> Any:
            step = getattr(m, "z_step_um", None) or (lim.z_max_um - lim.z_min_um) / 40.0
            guard = StageGuard(m, lim, cancel=self._cancel.is_set)
            return calibrate_microscope(m, guard, z_from_um=lim.z_min_um, z_to_um=lim.z_max_um,
                                        step_um=step, optics=getattr(m, "optics", None))

        return self._start(job, self._on_calibrated, "Calibrating…")

    def autofocus(self) -> Any:
        """Run the selected method (worker thread); the plot updates after every image."""
        from napari_focusqa.autofocus.search import run_autofocus

        m = self.microscope
        method = self.method_combo.currentText()
        cal = self.calibration
        if method == "fewshot" and cal is None:
            self._show_error("Calibrate first (fewshot needs a calibration)")
            return None

        def job(lim: Any) -> Any:
            return run_autofocus(m, method, calibration=cal, limits=lim,
                                 cancel=self._cancel.is_set, on_acquisition=self._emit)

        return self._start(job, self._on_run, f"Autofocus ({method})…")

    def cancel(self) -> None:
        self._cancel.set()
        self._show("Cancelling…")

    # --- results (main thread) -----------------------------------------------------------
    def _on_acquired(self, acq: Any, img: np.ndarray) -> None:
        self._live.append((acq.z_um, acq.score))
        self._show_image(img)
        self._update_z()
        self._draw()

    def _on_calibrated(self, cal: Any) -> None:
        self.calibration = cal
        self._update_z()
        self._show(f"Calibrated: {cal.score_name}, FWHM {cal.fwhm_um:.3f} µm, DoF "
                   f"{cal.dof_um:.3f} µm ({cal.dof_source})")
        self._draw()

    def _on_run(self, run: Any) -> None:
        self.last_run = run
        self._update_z()
        if run.ok:
            self._show(run.summary())
        else:
            self._show_error(run.summary())
        self._draw()

    def _on_finished(self) -> None:
        self.worker = None
        self._update_buttons()

    def _draw(self) -> None:
        ax = self.ax
        ax.clear()
        run = self.last_run
        if run is not None and run.acquisitions:
            z, s = run.z_values, run.scores
        elif self._live:
            z = np.array([p[0] for p in self._live])
            s = np.array([p[1] for p in self._live])
        else:
            z = s = np.zeros(0)
        if z.size:
            ax.plot(z, s, "o", color="#1f77b4", label="acquisitions")
            for i, (zi, si) in enumerate(zip(z, s)):
                ax.annotate(str(i + 1), (zi, si), textcoords="offset points", xytext=(3, 3),
                            fontsize=7)
        if run is not None and run.chosen_z_um is not None:
            ax.axvline(run.chosen_z_um, color="#d62728", ls="--", label="chosen z")
        ax.set_xlabel("z (µm)")
        ax.set_ylabel(run.score_name if run is not None and run.score_name else "score")
        if z.size or run is not None:
            ax.legend(fontsize=7, loc="best")
        self.canvas.draw_idle()
