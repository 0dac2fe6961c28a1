"""napari dock widget: drive autofocus on a (simulated) microscope.

Connect a simulated microscope built from the chosen z-stack layer (a ``UniMMCore``
replaying the stack, see :mod:`napari_focusqa.autofocus.simulated`; the layer becomes a
stack by :func:`napari_focusqa.pipeline.layer_to_stack`, the same rule as "Assess
focus"), a Micro-Manager config file, or the shared ``CMMCorePlus.instance()``; set z
limits and the maximum step; Snap / Move / Calibrate / Autofocus / Cancel. Methods:
fewshot and singleshot (need Calibrate first), twoshot (no calibration, but the optics:
NA, emission wavelength, immersion index and pixel size from the file or the
configuration, or typed into the optics fields, where 0 means "from the microscope";
a missing one is named before anything moves) and classic. The settings are a persisted
magicgui form. Calibration and autofocus run in the shared
:class:`TaskRunner` (activity-dock progress, Cancel, notifications); every image lands
in the "FocusQA microscope" layer and on the score-vs-z plot
(:func:`napari_focusqa.plots.draw_autofocus`), with the chosen z marked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from magicgui import magicgui
from magicgui.widgets import ComboBox, Container, Label, PushButton
from qtpy.QtWidgets import QVBoxLayout, QWidget

from napari_focusqa.core.errors import FocusQAError
from napari_focusqa.plots import draw_autofocus
from napari_focusqa.widgets._base import FocusDock
from napari_focusqa.widgets._plot import PlotCanvas

LIVE_LAYER = "FocusQA microscope"
METHODS = ("fewshot", "singleshot", "twoshot", "classic")
#: the optics fields of the form (0 = from the microscope: file metadata / configuration)
OPTICS_FIELDS = ("na", "wavelength_nm", "immersion_n", "pixel_size_um")


def _settings(z_min: float = 0.0, z_max: float = 0.0, max_step: float = 10.0,
              target: float = 0.0, method: str = "fewshot", na: float = 0.0,
              wavelength_nm: float = 0.0, immersion_n: float = 0.0,
              pixel_size_um: float = 0.0, config: Path = Path()) -> None:
    """Microscope settings (persisted)."""


_settings.__annotations__ = {"z_min": float, "z_max": float, "max_step": float,
                             "target": float, "method": str, "na": float,
                             "wavelength_nm": float, "immersion_n": float,
                             "pixel_size_um": float, "config": Path, "return": None}


def stack_of_layer(layer: Any, viewer: Any) -> tuple[np.ndarray, float]:
    """``(Z, Y, X)`` array and z step (µm, 1.0 when unknown) of an image layer, by the
    pipeline's one layer rule (time point = the one shown)."""
    from napari_focusqa.pipeline import layer_to_stack
    from napari_focusqa.widgets.assess_worker import layer_step

    ls = layer_to_stack(layer, current_step=layer_step(layer, viewer))
    if ls.two_d or ls.n_slices < 2:
        raise FocusQAError(f"layer: {layer.name!r} is not a z-stack (shape {layer.data.shape})")
    return np.asarray(ls.zcyx[:, 0]), float(ls.z_step_um or 1.0)


class AutofocusWidget(FocusDock):
    """Microscope + autofocus dock widget (see module doc)."""

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(napari_viewer, parent, on_item=self._on_acquired,
                         on_finished=self._update_buttons)
        self.microscope: Any = None
        self.calibration: Any = None
        self.last_run: Any = None
        self._live: list[tuple[float, float]] = []
        self._live_scale: tuple[float, ...] = (1.0, 1.0)
        self.layer = ComboBox(label="z-stack layer", choices=self._stack_choices)
        big = {"min": -1e5, "max": 1e5, "step": 0.1}
        self.form = magicgui(_settings, persist=True, call_button=False,
                             z_min={**big, "label": "z min (µm)"},
                             z_max={**big, "label": "z max (µm)"},
                             max_step={"min": 0.001, "max": 1e4, "label": "max step (µm)"},
                             target={**big, "label": "go to z (µm)"},
                             method={"choices": list(METHODS)},
                             na={"min": 0.0, "max": 1.7, "step": 0.01,
                                 "label": "NA (0: from file)"},
                             wavelength_nm={"min": 0.0, "max": 2000.0, "step": 1.0,
                                            "label": "emission nm (0: from file)"},
                             immersion_n={"min": 0.0, "max": 2.0, "step": 0.001,
                                          "label": "immersion n (0: from file)"},
                             pixel_size_um={"min": 0.0, "max": 100.0, "step": 0.001,
                                            "label": "pixel µm (0: from file)"},
                             config={"filter": "*.cfg", "label": "MM config"})
        self.sim_btn = PushButton(text="Connect simulated")
        self.instance_btn = PushButton(text="Shared MM core")
        self.config_btn = PushButton(text="Connect config")
        self.scope_label = Label(value="not connected")
        self.z_label = Label(value="-")
        self.move_btn = PushButton(text="Move")
        self.snap_btn = PushButton(text="Snap")
        self.calibrate_btn = PushButton(text="Calibrate")
        self.autofocus_btn = PushButton(text="Autofocus")
        self.cancel_btn = PushButton(text="Cancel")
        self.status = Label(value="")
        self.status.native.setWordWrap(True)
        rows = [Container(widgets=ws, layout="horizontal", labels=False) for ws in (
            [self.sim_btn, self.instance_btn, self.config_btn],
            [self.move_btn, self.snap_btn],
            [self.calibrate_btn, self.autofocus_btn, self.cancel_btn])]
        self.canvas = PlotCanvas(4, 2.6, 200)
        lay = QVBoxLayout(self)
        for w in (self.layer, rows[0], self.scope_label, self.z_label, self.form, rows[1],
                  rows[2], self.status):
            lay.addWidget(w.native)
        lay.addWidget(self.canvas)

        self.sim_btn.changed.connect(lambda: self.connect_simulated())
        self.instance_btn.changed.connect(lambda: self.connect_instance())
        self.config_btn.changed.connect(lambda: self.connect_config(str(self.form.config.value)))
        self.move_btn.changed.connect(lambda: self.move_to(float(self.form.target.value)))
        self.snap_btn.changed.connect(lambda: self.snap())
        self.calibrate_btn.changed.connect(lambda: self.calibrate())
        self.autofocus_btn.changed.connect(lambda: self.autofocus())
        self.cancel_btn.changed.connect(lambda: self.cancel())
        self._connect(self.viewer.layers.events.inserted, self.layer.reset_choices)
        self._connect(self.viewer.layers.events.removed, self.layer.reset_choices)
        self._update_buttons()
        self._draw()

    # --- helpers -------------------------------------------------------------------
    def _stack_choices(self, _w: Any = None) -> list[str]:
        from napari.layers import Image

        return [ly.name for ly in self.viewer.layers
                if isinstance(ly, Image) and ly.ndim >= 3 and ly.name != LIVE_LAYER]

    def _error(self, msg: str) -> None:
        self.runner.error(msg)
        self.status.value = msg

    def _show(self, msg: str) -> None:
        self.status.value = msg

    def _update_buttons(self) -> None:
        connected, idle = self.microscope is not None, not self.running
        for b in (self.move_btn, self.snap_btn, self.calibrate_btn, self.autofocus_btn):
            b.enabled = connected and idle
        for b in (self.sim_btn, self.instance_btn, self.config_btn):
            b.enabled = idle
        self.cancel_btn.enabled = not idle
        self._update_z()

    def _update_z(self) -> None:
        if self.microscope is not None:
            try:
                self.z_label.value = f"current z: {self.microscope.get_z():.3f} µm"
            except Exception as exc:  # a broken device must not kill the GUI
                self.z_label.value = f"current z: ? ({exc})"

    def optics(self) -> Any:
        """The microscope's optics with the form's non-zero optics fields overriding
        (None when no NA is known); the CLI's rule (:func:`~napari_focusqa.autofocus.
        optics.optics_for`)."""
        from napari_focusqa.autofocus.optics import optics_for

        v = {k: float(getattr(self.form, k).value) or None for k in OPTICS_FIELDS}
        return optics_for(self.microscope, **v)

    def limits(self) -> Any:
        from napari_focusqa.autofocus.safety import StageLimits

        f = self.form
        return StageLimits(float(f.z_min.value), float(f.z_max.value), float(f.max_step.value))

    # --- connect ---------------------------------------------------------------------
    def _set_microscope(self, m: Any, lo: float, hi: float, step: float) -> None:
        self.microscope, self.calibration, self.last_run = m, None, None
        self.form.z_min.value, self.form.z_max.value, self.form.max_step.value = lo, hi, step
        self.form.target.value = m.get_z()
        self.scope_label.value = m.name
        self._update_buttons()
        self._draw()
        self._show(f"Connected: {m.name}")

    def connect_simulated(self, layer_name: str | None = None, **kwargs: Any) -> Any:
        """Simulated microscope replaying the chosen z-stack layer (kwargs: see
        :class:`~napari_focusqa.autofocus.simulated.SimulatedMicroscope`)."""
        from napari_focusqa.autofocus.simulated import SimulatedMicroscope

        name = layer_name or self.layer.value
        if not name or name not in self.viewer.layers:
            self._error("No z-stack layer: open a z-stack first")
            return None
        layer = self.viewer.layers[name]
        try:
            stack, dz = stack_of_layer(layer, self.viewer)
            kwargs.setdefault("name", f"simulated: {name}")
            if "optics" not in kwargs:  # NA / wavelength named in the file's Info text
                from napari_focusqa.autofocus.optics import optics_from_info

                fq = (getattr(layer, "metadata", {}) or {}).get("focusqa") or {}
                kwargs["optics"] = optics_from_info(fq.get("info"), fq.get("pixel_size_um"))
            m = SimulatedMicroscope(stack, dz, **kwargs)
        except FocusQAError as exc:
            self._error(str(exc))
            return None
        lo, hi = m.travel
        self._live_scale = tuple(float(v) for v in layer.scale[-2:])  # same pixel size
        self._set_microscope(m, lo, hi, hi - lo)
        return m

    def _connect_mm(self, make: Any, note: str = "") -> Any:
        try:
            m = make()
        except FocusQAError as exc:
            self._error(str(exc))
            return None
        z = m.get_z()
        self._set_microscope(m, z - 50.0, z + 50.0, 10.0)
        if note:
            self._show(f"Connected: {m.name}. {note}")
        return m

    def connect_config(self, path: str) -> Any:
        from napari_focusqa.autofocus.microscope import MMCoreMicroscope

        return self._connect_mm(lambda: MMCoreMicroscope.from_config(path),
                                "Check the z limits and max step before moving!")

    def connect_instance(self) -> Any:
        from napari_focusqa.autofocus.microscope import MMCoreMicroscope

        return self._connect_mm(MMCoreMicroscope.from_instance)

    # --- direct actions (main thread; single moves/snaps are short) ----------------------
    def move_to(self, z: float) -> bool:
        from napari_focusqa.autofocus.safety import StageGuard

        if self.microscope is None or self.running:
            return False
        try:
            StageGuard(self.microscope, self.limits()).travel_to(z)
        except Exception as exc:
            self._error(str(exc))
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
            self._error(f"Snap failed: {exc}")
            return None
        self._show_image(img)
        return np.asarray(img)

    def _show_image(self, img: np.ndarray) -> None:
        if LIVE_LAYER in self.viewer.layers:
            self.viewer.layers[LIVE_LAYER].data = img
        else:
            self.viewer.add_image(img, name=LIVE_LAYER, colormap="gray", scale=self._live_scale)

    # --- worker jobs ---------------------------------------------------------------------
    def _start(self, fn: Any, on_done: Any, label: str) -> Any:
        if self.running:
            self._error("Busy: a calibration or autofocus run is in progress")
            return None
        if self.microscope is None:
            self._error("Connect a microscope first")
            return None
        try:
            lim = self.limits()
        except FocusQAError as exc:
            self._error(str(exc))
            return None
        self._live = []
        w = self.runner.start(fn, lim, desc=f"FocusQA: {label}", on_done=on_done)
        self._update_buttons()
        self._show(label + "…")
        return w

    def calibrate(self) -> Any:
        """Acquire a calibration sweep over the z limits (worker thread)."""
        from napari_focusqa.autofocus.calibrate import calibrate_microscope
        from napari_focusqa.autofocus.safety import StageGuard

        m = self.microscope

        def job(lim: Any, *, emit: Any, cancel: Any) -> Any:
            step = getattr(m, "z_step_um", None) or (lim.z_max_um - lim.z_min_um) / 40.0
            guard = StageGuard(m, lim, cancel=cancel)
            return calibrate_microscope(m, guard, z_from_um=lim.z_min_um, z_to_um=lim.z_max_um,
                                        step_um=step, optics=getattr(m, "optics", None))

        return self._start(job, self._on_calibrated, "Calibrating")

    def autofocus(self) -> Any:
        """Run the chosen method (worker thread); the plot updates after every image."""
        from napari_focusqa.autofocus.search import run_autofocus

        m, method, cal = self.microscope, str(self.form.method.value), self.calibration
        if method in ("fewshot", "singleshot") and cal is None:
            self._error(f"Calibrate first ({method} needs a calibration)")
            return None
        try:
            optics = self.optics() if m is not None else None
            if method == "twoshot" and m is not None:
                from napari_focusqa.autofocus.twoshot import resolve_optics

                resolve_optics(m, optics)  # names a missing field before anything moves
        except FocusQAError as exc:
            self._error(f"{exc} (in this widget: the optics fields of the form)")
            return None

        def job(lim: Any, *, emit: Any, cancel: Any) -> Any:
            return run_autofocus(m, method, calibration=cal, limits=lim, cancel=cancel,
                                 optics=optics,
                                 on_acquisition=lambda acq, img: emit(item=(acq, img)))

        return self._start(job, self._on_run, f"Autofocus ({method})")

    def cancel(self) -> None:
        self.runner.cancel()
        self._show("Cancelling…")

    # --- results (main thread) -----------------------------------------------------------
    def _on_acquired(self, item: tuple[Any, np.ndarray]) -> None:
        acq, img = item
        self._live.append((acq.z_um, acq.score))
        self._show_image(img)
        self._update_z()
        self._draw()

    def _on_calibrated(self, cal: Any) -> None:
        self.calibration = cal
        self._show(f"Calibrated: {cal.score_name}, FWHM {cal.fwhm_um:.3f} µm, DoF "
                   f"{cal.dof_um:.3f} µm ({cal.dof_source})")
        self._draw()

    def _on_run(self, run: Any) -> None:
        self.last_run = run
        if run.ok:
            self._show(run.summary())
        else:
            self._error(run.summary())
        self._draw()

    @property
    def ax(self) -> Any:
        return self.canvas.figure.axes[0]

    def _draw(self) -> None:
        (ax,) = self.canvas.fresh_axes(1)
        run = self.last_run
        if run is not None and run.acquisitions:
            z, s = run.z_values, run.scores
        else:
            z = [p[0] for p in self._live]
            s = [p[1] for p in self._live]
        draw_autofocus(ax, z, s, chosen_z=None if run is None else run.chosen_z_um,
                       score_name=None if run is None else run.score_name)
        self.canvas.draw_idle()
