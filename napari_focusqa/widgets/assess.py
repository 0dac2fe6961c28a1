"""The "Assess focus" dock widget: thin Qt front end over :func:`assess_stack`.

Choose image layers (or all channels), a model (installed model cards, a card file, or
"none (SF only)") and a stain per channel; click **Assess focus**. The stack is
assessed by the core in a napari ``thread_worker`` (progress bar, Cancel button); the
patch-border Shapes layers are built in the worker too, so the viewer stays responsive.
Results: one Shapes layer per channel (3D rectangles, hue = level, lightness =
certainty, ``features`` with level/certainty/probabilities), a legend, a per-slice
summary table and the best slice per channel (click a row to jump there).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import QObject, Qt, Signal
from qtpy.QtGui import QFont
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_focusqa.core.errors import Cancelled, FocusQAError
from napari_focusqa.core.model import default_model_id, list_models
from napari_focusqa.core.stains import STAIN_CLASSES, stain_for_channel
from napari_focusqa.widgets._legend import LegendWidget
from napari_focusqa.widgets._store import AssessedChannel, store_for

SF_ONLY = "none (SF only)"
#: per channel; 60 slices of 1024² with 84 px patches are 10 140 rectangles
MAX_3D_RECTANGLES = 40_000
LEVEL_TASKS = ("levels", "levels-stain")
SUMMARY_COLUMNS = (
    "layer", "stain", "z", "z (µm)", "level", "expected", "mean cert.", "aggr. cert.", "SF",
    "in focus",
)


@dataclass
class _Job:
    """One image layer to assess (prepared on the main thread, run in the worker)."""

    layer_name: str
    stack: Any  # (Z, Y, X) array-like (numpy or dask), read in the worker
    stain: str
    z_step_um: float | None
    leading: tuple[int, ...]
    scale: tuple[float, ...]
    translate: tuple[float, ...]
    two_d: bool
    source: dict[str, Any]
    current_z: int = 0
    max_3d_rectangles: int | None = None


def shapes_layer_name(image_layer_name: str) -> str:
    """Name of the patch-border layer of an image layer."""
    return f"{image_layer_name} patches"


def _card_for(model: str | None) -> dict[str, Any] | None:
    if model is None:
        return None
    p = Path(model)
    if p.suffix == ".json" and p.is_file():
        try:
            return dict(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError):
            return None
    for c in list_models():
        if str(c.get("id")) == str(model):
            return c
    return None


def compute(jobs: list[_Job], model: Any, cancel: threading.Event, report: Any) -> tuple:
    """Worker body: core assessment + overlay construction for every job.

    Returns ``("ok", [(job, StackResult, napari Shapes layer or None), ...])``,
    ``("cancelled", None)`` or ``("error", message)`` for bad input (FocusQAError), so
    expected outcomes never surface as exceptions in the Qt event loop.
    """
    try:
        return "ok", _compute(jobs, model, cancel, report)
    except Cancelled:
        return "cancelled", None
    except FocusQAError as exc:
        return "error", str(exc)


def _compute(jobs: list[_Job], model: Any, cancel: threading.Event, report: Any) -> list:
    from napari_focusqa.core.model import load_model
    from napari_focusqa.core.zstack import assess_stack

    fm = load_model(model) if model is not None else None
    total = sum(j.stack.shape[0] for j in jobs)
    offset = 0
    out = []
    for job in jobs:
        base = offset

        def prog(done: int, _tot: int, base: int = base) -> None:
            report(base + done, total)

        stack = np.asarray(job.stack)
        sr = assess_stack(
            stack,
            fm,
            z_step_um=job.z_step_um,
            channel_names=[job.layer_name],
            stains=[job.stain],
            source=job.source,
            progress=prog,
            cancel=cancel.is_set,
        )
        offset += job.stack.shape[0]
        layer = None
        if fm is not None:
            if cancel.is_set():
                raise Cancelled("stack assessment cancelled")
            layer = _make_shapes_layer(job, sr, fm.id)
        out.append((job, sr, layer))
    return out


def _make_shapes_layer(job: _Job, sr: Any, model_id: str) -> Any:
    """napari Shapes layer of patch borders: 3D rectangles on every slice, or (beyond
    ``job.max_3d_rectangles``) 2D rectangles of one slice, swapped when z changes."""
    from napari.layers import Shapes

    from napari_focusqa.widgets.overlay import build_overlay

    curve = sr.channels[0]
    ov = build_overlay(curve, leading=job.leading, two_d=job.two_d)
    full = ov
    per_slice = (
        not job.two_d
        and job.max_3d_rectangles is not None
        and ov.data.shape[0] > job.max_3d_rectangles
    )
    scale, translate = job.scale, job.translate
    if per_slice:
        ov = full.for_slice(min(max(job.current_z, 0), full.n_slices - 1))
        scale, translate = scale[-2:], translate[-2:]
    meta = {
        "focusqa": {
            "image_layer": job.layer_name,
            "model": model_id,
            "stain": job.stain,
            "num_classes": ov.num_classes,
            "patch_size": curve.slices[0].grid.patch_size,
            "patches_per_slice": ov.patches_per_slice,
            "best_z_index": curve.best_z_index,
            "best_z_index_model": curve.best_z_index_model,
            "per_slice": per_slice,
            "shown_z": int(ov.features["z"].iloc[0]) if per_slice else None,
        }
    }
    layer = Shapes(
        ov.data,
        ndim=ov.data.shape[-1],
        name=shapes_layer_name(job.layer_name),
        scale=scale,
        translate=translate,
        opacity=1.0,
        metadata=meta,
        **ov.layer_kwargs(),
    )
    return layer, (full if per_slice else None)


class _Bridge(QObject):
    """Carries progress from the worker thread to the GUI thread (queued signal)."""

    progress = Signal(int, int)


class AssessWidget(QWidget):
    """Dock widget "Assess focus" (see module docstring).

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
    """

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.store = store_for(napari_viewer)
        self.worker: Any = None
        self.results: list[AssessedChannel] = []
        self.last_error: str | None = None
        self._cancel = threading.Event()
        self._pbar: Any = None
        self._bridge = _Bridge()
        self._bridge.progress.connect(self._on_progress)
        #: beyond this many rectangles per layer, borders are shown for the current slice
        #: only (2D shapes swapped on z changes) instead of 3D shapes on every slice
        self.max_3d_rectangles: int | None = MAX_3D_RECTANGLES
        self._stains: dict[str, str] = {}
        self._checked: dict[str, bool] = {}
        self._build_ui()
        self._refresh_models()
        self._refresh_layers()
        ev = self.viewer.layers.events
        conns: list[tuple[Any, Any]] = [
            (ev.inserted, self._refresh_layers),
            (ev.removed, self._refresh_layers),
            (ev.moved, self._refresh_layers),
            (ev.removed, self._prune_results),
            (ev.inserted, self._watch_name),
            (self.viewer.dims.events.current_step, self._update_per_slice),
        ]
        conns += [(ly.events.name, self._refresh_layers) for ly in self.viewer.layers]
        for emitter, cb in conns:
            emitter.connect(cb)
        self._conns = conns
        cancel_event = self._cancel

        def _cleanup(*_: Any) -> None:  # widget closed: stop the worker, drop callbacks
            cancel_event.set()
            for emitter, cb in conns:
                try:
                    emitter.disconnect(cb)
                except (RuntimeError, TypeError, ValueError):
                    pass

        self.destroyed.connect(_cleanup)

    def _watch_name(self, event: Any) -> None:
        emitter = event.value.events.name
        emitter.connect(self._refresh_layers)
        self._conns.append((emitter, self._refresh_layers))

    # ------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        lay = QVBoxLayout(self)

        box = QGroupBox("Channels (image layers)")
        bl = QVBoxLayout(box)
        self.all_channels = QCheckBox("All channels")
        self.all_channels.setChecked(True)
        self.all_channels.toggled.connect(self._on_all_toggled)
        bl.addWidget(self.all_channels)
        self.layers_table = QTableWidget(0, 3)
        self.layers_table.setHorizontalHeaderLabels(["", "layer", "stain"])
        self.layers_table.verticalHeader().setVisible(False)
        hh = self.layers_table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.layers_table.verticalHeader().setDefaultSectionSize(24)
        self.layers_table.setMinimumHeight(80)
        self.layers_table.setMaximumHeight(140)
        self.layers_table.itemChanged.connect(self._on_item_changed)
        bl.addWidget(self.layers_table)
        lay.addWidget(box)

        form = QFormLayout()
        row = QHBoxLayout()
        self.model_combo = QComboBox()
        self.model_combo.currentIndexChanged.connect(self._on_model_changed)
        row.addWidget(self.model_combo, 1)
        self.model_file_btn = QPushButton("Card…")
        self.model_file_btn.setToolTip("Use a model card (.json) from a file")
        self.model_file_btn.clicked.connect(self._choose_model_file)
        row.addWidget(self.model_file_btn)
        form.addRow("Model", row)
        self.patch_label = QLabel("")
        form.addRow("Patch size", self.patch_label)
        lay.addLayout(form)

        row = QHBoxLayout()
        self.assess_btn = QPushButton("Assess focus")
        self.assess_btn.clicked.connect(self.run)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        row.addWidget(self.assess_btn, 1)
        row.addWidget(self.cancel_btn)
        lay.addLayout(row)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        lay.addWidget(self.progress_bar)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)

        self.legend = LegendWidget(11)
        lay.addWidget(self.legend)

        self.summary = QTableWidget(0, len(SUMMARY_COLUMNS))
        self.summary.setHorizontalHeaderLabels(list(SUMMARY_COLUMNS))
        self.summary.verticalHeader().setVisible(False)
        self.summary.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.summary.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.summary.cellClicked.connect(self._on_summary_clicked)
        lay.addWidget(self.summary, 1)

        row = QHBoxLayout()
        self.best_btn = QPushButton("Go to best slice")
        self.best_btn.clicked.connect(lambda: self.go_to_best())
        self.csv_btn = QPushButton("Export CSV…")
        self.csv_btn.clicked.connect(lambda: self._export_dialog("csv"))
        self.json_btn = QPushButton("Export JSON…")
        self.json_btn.clicked.connect(lambda: self._export_dialog("json"))
        for b in (self.best_btn, self.csv_btn, self.json_btn):
            b.setEnabled(False)
            row.addWidget(b)
        lay.addLayout(row)

    # ------------------------------------------------------------ models
    def _refresh_models(self) -> None:
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for card in list_models():
            if card.get("task") in LEVEL_TASKS:
                self.model_combo.addItem(str(card["id"]), str(card["id"]))
        self.model_combo.addItem(SF_ONLY, None)
        default = default_model_id()
        idx = self.model_combo.findData(default) if default else -1
        self.model_combo.setCurrentIndex(idx if idx >= 0 else self.model_combo.count() - 1)
        self.model_combo.blockSignals(False)
        self._on_model_changed()

    def set_model(self, model: str | Path | None) -> None:
        """Select a model by id or card path; ``None`` selects "none (SF only)"."""
        if model is None:
            self.model_combo.setCurrentIndex(self.model_combo.findData(None))
            return
        key = str(model)
        idx = self.model_combo.findData(key)
        if idx < 0:
            p = Path(key)
            if p.suffix == ".json":
                if not p.is_file():
                    raise FocusQAError(f"model: no model card at {key}")
                self.model_combo.insertItem(0, p.stem, key)
                idx = 0
            else:
                raise FocusQAError(
                    f"model: {key!r} is not an installed levels model "
                    f"(installed: {[self.model_combo.itemData(i) for i in range(self.model_combo.count() - 1)]})"
                )
        self.model_combo.setCurrentIndex(idx)

    def model_choice(self) -> str | None:
        """The selected model id / card path, or None for SF only."""
        return self.model_combo.currentData()

    def _choose_model_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model card", "", "Model card (*.json)")
        if path:
            try:
                self.set_model(path)
            except FocusQAError as exc:
                self._show_error(str(exc))

    def _on_model_changed(self, *_: Any) -> None:
        card = _card_for(self.model_choice())
        if card is None:
            self.patch_label.setText("— (SF only: whole-image metrics, no patches)")
        else:
            self.patch_label.setText(f"{card.get('patch_size')} px (from the model)")
            k = int(card.get("num_classes") or 11)
            if k >= 2:
                self.legend.set_num_classes(k)

    # ------------------------------------------------------------ layers
    def image_layers(self) -> list[Any]:
        from napari.layers import Image

        return [ly for ly in self.viewer.layers if isinstance(ly, Image)]

    def _refresh_layers(self, *_: Any) -> None:
        self._remember_table()
        self._rebuild_table()

    def _rebuild_table(self) -> None:
        layers = self.image_layers()
        t = self.layers_table
        t.blockSignals(True)
        t.setRowCount(len(layers))
        all_on = self.all_channels.isChecked()
        for r, ly in enumerate(layers):
            chk = QTableWidgetItem()
            flags = Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled
            chk.setFlags(flags if not all_on else Qt.ItemFlag.ItemIsUserCheckable)
            on = all_on or self._checked.get(ly.name, True)
            chk.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            t.setItem(r, 0, chk)
            name = QTableWidgetItem(ly.name)
            name.setFlags(Qt.ItemFlag.ItemIsEnabled)
            t.setItem(r, 1, name)
            combo = QComboBox()
            combo.addItems(list(STAIN_CLASSES))
            combo.setCurrentText(self._stains.get(ly.name) or self._auto_stain(ly))
            combo.currentTextChanged.connect(
                lambda text, n=ly.name: self._stains.__setitem__(n, text)
            )
            t.setCellWidget(r, 2, combo)
        t.blockSignals(False)

    def _prune_results(self, *_: Any) -> None:
        names = {ly.name for ly in self.image_layers()}
        self.results = [e for e in self.results if e.layer_name in names]
        self.store.prune(names)

    def _remember_table(self) -> None:
        t = self.layers_table
        for r in range(t.rowCount()):
            name_item, chk = t.item(r, 1), t.item(r, 0)
            if name_item is None or chk is None:
                continue
            if not self.all_channels.isChecked():
                self._checked[name_item.text()] = chk.checkState() == Qt.CheckState.Checked

    @staticmethod
    def _auto_stain(layer: Any) -> str:
        st = (layer.metadata or {}).get("focusqa", {}).get("stain")
        if st in STAIN_CLASSES and st != "generic":
            return str(st)
        return stain_for_channel(layer.name) if stain_for_channel(layer.name) != "generic" else (
            str(st) if st in STAIN_CLASSES else "generic"
        )

    def _on_all_toggled(self, on: bool) -> None:
        self._refresh_layers()

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() == 0:
            name = self.layers_table.item(item.row(), 1)
            if name is not None:
                self._checked[name.text()] = item.checkState() == Qt.CheckState.Checked

    def set_selected_layers(self, names: list[str]) -> None:
        """Assess only the image layers called ``names`` (unticks "All channels")."""
        known = {ly.name for ly in self.image_layers()}
        missing = [n for n in names if n not in known]
        if missing:
            raise FocusQAError(f"names: no image layer called {missing} (have {sorted(known)})")
        self.all_channels.blockSignals(True)
        self.all_channels.setChecked(False)
        self.all_channels.blockSignals(False)
        self._checked = {n: n in names for n in known}
        self._rebuild_table()

    def set_stain(self, layer_name: str, stain: str) -> None:
        """Override the stain of one channel."""
        if stain not in STAIN_CLASSES:
            raise FocusQAError(f"stain: expected one of {STAIN_CLASSES}, got {stain!r}")
        self._stains[layer_name] = stain
        self._refresh_layers()
        self.layers_table.viewport().update()

    def selected_layers(self) -> list[Any]:
        layers = self.image_layers()
        if self.all_channels.isChecked():
            return layers
        self._remember_table()
        return [ly for ly in layers if self._checked.get(ly.name, False)]

    def stain_of(self, layer: Any) -> str:
        return self._stains.get(layer.name) or self._auto_stain(layer)

    # ------------------------------------------------------------ running
    def _job_for(self, layer: Any) -> _Job:
        if getattr(layer, "rgb", False):
            raise FocusQAError(
                f"layer: {layer.name!r} is an RGB image; FocusQA assesses grey fluorescence "
                "channels (split the channels first: right-click ▸ Split RGB)"
            )
        nd = layer.ndim
        data = layer.data
        if getattr(layer, "multiscale", False):
            data = data[0]
        meta = (layer.metadata or {}).get("focusqa", {})
        scale = tuple(float(s) for s in layer.scale)
        translate = tuple(float(t) for t in layer.translate)
        leading: tuple[int, ...] = ()
        if nd > 3:
            point = np.asarray(self.viewer.dims.point[-nd:], dtype=float)
            idx = np.round((point[: nd - 3] - np.asarray(translate[: nd - 3]))
                           / np.asarray(scale[: nd - 3])).astype(int)
            idx = np.clip(idx, 0, np.asarray(data.shape[: nd - 3]) - 1)
            leading = tuple(int(i) for i in idx)
            data = data[leading]
        # no np.asarray here: a lazy (dask) layer is only read in the worker thread
        two_d = data.ndim == 2
        stack = data[None] if two_d else data
        z_step = meta.get("z_step_um")
        if z_step is None and not two_d and scale[-3] != 1.0:
            z_step = scale[-3]
        src = {"file": meta.get("source"), "layer": layer.name}
        current_z = 0
        if not two_d:
            zw = float(self.viewer.dims.point[-3]) if self.viewer.dims.ndim >= 3 else 0.0
            current_z = int(round((zw - translate[-3]) / (scale[-3] or 1.0)))
            current_z = max(0, min(int(stack.shape[0]) - 1, current_z))
        return _Job(layer.name, stack, self.stain_of(layer), z_step, leading, scale, translate,
                     two_d, src, current_z, self.max_3d_rectangles)

    def run(self) -> Any:
        """Start assessing the selected layers; returns the worker (or None on bad input)."""
        if self.worker is not None:
            self._show_error("An assessment is already running")
            return None
        self.last_error = None
        layers = self.selected_layers()
        if not layers:
            self._show_error("No image layer selected: open an image or tick a channel")
            return None
        try:
            jobs = [self._job_for(ly) for ly in layers]
        except FocusQAError as exc:
            self._show_error(str(exc))
            return None
        from napari.qt.threading import create_worker
        from napari.utils import progress

        total = sum(j.stack.shape[0] for j in jobs)
        self._cancel.clear()
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(0)
        self._pbar = progress(total=total, desc="FocusQA: assessing focus")
        self.status.setStyleSheet("")
        self.status.setText(f"Assessing {len(jobs)} channel(s), {total} slices…")
        self.assess_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        worker = create_worker(
            compute, jobs, self.model_choice(), self._cancel, self._bridge.progress.emit,
            _start_thread=False,
        )
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        worker.start()
        return worker

    def cancel(self) -> None:
        """Ask the running assessment to stop (it ends with "Cancelled")."""
        self._cancel.set()
        self.status.setText("Cancelling…")

    @property
    def running(self) -> bool:
        return self.worker is not None

    def _on_progress(self, done: int, total: int) -> None:
        self.progress_bar.setValue(done)
        if self._pbar is not None:
            self._pbar.n = done
            self._pbar.refresh()

    def _on_errored(self, exc: BaseException) -> None:
        self._show_error(f"{type(exc).__name__}: {exc}")

    def _on_finished(self) -> None:
        self.worker = None
        self.assess_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None

    def _show_error(self, msg: str) -> None:
        self.last_error = msg
        self.status.setStyleSheet("color: #e06060")
        self.status.setText(msg)

    def _on_returned(self, outcome: tuple) -> None:
        status, out = outcome
        if status == "cancelled":
            self.last_error = "Cancelled"
            self.status.setStyleSheet("")
            self.status.setText("Cancelled: no results were changed")
            return
        if status == "error":
            self._show_error(str(out))
            return
        entries = []
        best_bits = []
        n_shown = 0
        for job, sr, made in out:
            curve = sr.channels[0]
            sname = None
            shapes, full = made if made is not None else (None, None)
            if shapes is not None:
                sname = shapes.name
                if sname in self.viewer.layers:
                    self.viewer.layers.remove(sname)
                # channels share one grid: show the first channel's borders, keep the
                # others hidden (tick their eye in the layer list) so they do not overlap
                shapes.visible = n_shown == 0
                n_shown += 1
                self.viewer.add_layer(shapes)
                k = shapes.metadata["focusqa"]["num_classes"]
                self.legend.set_num_classes(int(k))
            entries.append(
                AssessedChannel(
                    layer_name=job.layer_name,
                    curve=curve,
                    model_id=sr.model_id,
                    z_axis=None if job.two_d else -3,
                    z_scale=1.0 if job.two_d else job.scale[-3],
                    z_translate=0.0 if job.two_d else job.translate[-3],
                    leading=job.leading,
                    shapes_layer_name=sname,
                    extra={} if full is None else {"overlay": full},
                )
            )
            b = curve.best_z_index
            um = f" ({curve.best_z_um:g} µm)" if curve.best_z_um is not None else ""
            bm = curve.best_z_index_model
            model_txt = f", model: z {bm}" if bm is not None else ""
            best_bits.append(f"{job.layer_name}: best z {b}{um} by SF{model_txt}")
        first = next((e.shapes_layer_name for e in entries if e.shapes_layer_name), None)
        if first is not None:
            self.viewer.layers.selection.active = self.viewer.layers[first]
        self.results = entries
        self.store.set(entries)
        self._fill_summary()
        self.status.setStyleSheet("")
        self.status.setText("\n".join(best_bits))
        for btn in (self.best_btn, self.csv_btn, self.json_btn):
            btn.setEnabled(True)

    def _update_per_slice(self, *_: Any) -> None:
        """Per-slice mode: swap the borders of a Shapes layer to the slice now shown."""
        for e in self.results:
            full = e.extra.get("overlay")
            if full is None or e.z_axis is None or e.shapes_layer_name not in self.viewer.layers:
                continue
            axis = self.viewer.dims.ndim + e.z_axis
            if axis < 0:
                continue
            zi = e.z_index_of_world(float(self.viewer.dims.point[axis]))
            layer = self.viewer.layers[e.shapes_layer_name]
            meta = layer.metadata.get("focusqa", {})
            if meta.get("shown_z") == zi:
                continue
            ov = full.for_slice(zi)
            layer.data = ov.data
            layer.features = ov.features
            layer.edge_color = ov.edge_color
            meta["shown_z"] = zi

    # ------------------------------------------------------------ results
    def records(self) -> list[dict[str, Any]]:
        """One core record per assessed plane (the CLI's CSV rows)."""
        return [s.to_record() for e in self.results for s in e.curve.slices]

    def _fill_summary(self) -> None:
        rows = [(e, s) for e in self.results for s in e.curve.slices]
        t = self.summary
        t.setRowCount(len(rows))
        bold = QFont()
        bold.setBold(True)

        def fmt(v: Any, nd: int = 3) -> str:
            if v is None:
                return "—"
            if isinstance(v, bool):
                return "yes" if v else "no"
            if isinstance(v, float):
                return f"{v:.{nd}g}" if abs(v) >= 1000 else f"{v:.{nd}f}"
            return str(v)

        for r, (e, s) in enumerate(rows):
            z = int(s.source.get("z_index", 0))
            vals = (
                e.layer_name, s.source.get("stain"), z, s.source.get("z_um"), s.predicted_level,
                s.expected_level, s.mean_certainty, s.aggregate_certainty, s.sf, s.in_focus,
            )
            best = z == e.curve.best_z_index
            for c, v in enumerate(vals):
                it = QTableWidgetItem(fmt(v, 4 if c == 8 else 3))
                if best:
                    it.setFont(bold)
                t.setItem(r, c, it)
        t.resizeColumnsToContents()
        self._summary_rows = rows

    def _on_summary_clicked(self, row: int, _col: int) -> None:
        rows = getattr(self, "_summary_rows", [])
        if 0 <= row < len(rows):
            e, s = rows[row]
            self.go_to_slice(e, int(s.source.get("z_index", 0)))

    def go_to_slice(self, entry: AssessedChannel, z_index: int) -> None:
        """Move the viewer to slice ``z_index`` of an assessed channel."""
        if entry.z_axis is None:
            return
        axis = self.viewer.dims.ndim + entry.z_axis
        self.viewer.dims.set_point(axis, entry.z_world(z_index))

    def go_to_best(self, layer_name: str | None = None) -> int | None:
        """Jump to the best (SF-peak) slice of ``layer_name`` (default: selected row)."""
        if not self.results:
            return None
        entry = self.results[0]
        if layer_name is None:
            rows = getattr(self, "_summary_rows", [])
            sel = self.summary.currentRow()
            if 0 <= sel < len(rows):
                entry = rows[sel][0]
        else:
            match = [e for e in self.results if e.layer_name == layer_name]
            if not match:
                raise FocusQAError(f"layer_name: {layer_name!r} has not been assessed")
            entry = match[0]
        b = entry.curve.best_z_index
        self.go_to_slice(entry, b)
        return b

    def export_csv(self, path: str | Path) -> Path:
        """Write the per-plane records as CSV (same columns as ``focusqa zstack``)."""
        from napari_focusqa.core.assess import RECORD_COLUMNS
        from napari_focusqa.io.writer import write_csv

        write_csv(self.records(), path, RECORD_COLUMNS)
        return Path(path)

    def export_json(self, path: str | Path) -> Path:
        """Write per-channel curves and per-plane records as JSON."""
        from napari_focusqa.io.writer import write_json

        doc = {
            "channels": [dict(e.curve.to_dict(), layer=e.layer_name, model=e.model_id)
                         for e in self.results],
            "records": self.records(),
        }
        write_json(doc, path)
        return Path(path)

    def _export_dialog(self, kind: str) -> None:
        filt = "CSV (*.csv)" if kind == "csv" else "JSON (*.json)"
        path, _ = QFileDialog.getSaveFileName(self, "Export focus results", f"focusqa.{kind}",
                                              filt)
        if path:
            (self.export_csv if kind == "csv" else self.export_json)(path)
