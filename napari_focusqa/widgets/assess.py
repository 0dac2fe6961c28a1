"""The "Assess focus" dock widget: a thin view over the pipeline and the core.

Form (magicgui, settings persisted): image layers (channels), model (installed levels
models, a card file, or "none (SF only)") and stain. **Assess focus** runs
:func:`napari_focusqa.widgets.assess_worker.run_jobs` through the shared
:class:`TaskRunner` (napari ``thread_worker``, activity-dock progress, Cancel,
notifications). Results go onto the layers: one ``<layer> patches`` Points layer per
channel (a square per patch on every plane; hue = level, lightness = certainty, empty
patches grey; hover shows the features) and ``metadata["focusqa_result"]`` on the image
layer. The dock shows a legend, a per-plane table (verdict, structured fraction, level,
certainty, SF; best plane in bold; click a row to go there) and the best plane.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from magicgui import magicgui
from magicgui.widgets import Label, ProgressBar, PushButton, Select, Table
from qtpy.QtGui import QFont
from qtpy.QtWidgets import QAbstractItemView, QHBoxLayout, QVBoxLayout, QWidget

from napari_focusqa.core.errors import FocusQAError
from napari_focusqa.core.model import default_model_id, list_models
from napari_focusqa.core.stains import STAIN_CLASSES, stain_for_channel
from napari_focusqa.widgets._base import FocusDock
from napari_focusqa.widgets._legend import LegendWidget
from napari_focusqa.widgets._results import AssessedChannel, result_of
from napari_focusqa.widgets.assess_worker import add_assessment, job_for, run_jobs

SF_ONLY = "none (SF only)"
AUTO_STAIN = "auto (per layer)"
LEVEL_TASKS = ("levels", "levels-stain")
SUMMARY_COLUMNS = (
    "layer", "stain", "z", "z (µm)", "verdict", "structured", "level", "expected",
    "mean cert.", "aggr. cert.", "SF", "in focus",
)


def level_model_ids() -> list[str]:
    """Installed models that predict defocus levels."""
    return [str(c["id"]) for c in list_models() if c.get("task") in LEVEL_TASKS]


def _settings(model: str = SF_ONLY, card: Path | None = None,
              stain: str = AUTO_STAIN) -> None:
    """Assessment settings (the form; values are persisted between sessions)."""


# real types for magicgui (this module postpones annotations)
# ("card" is nullable: empty shows an empty field, not the working directory)
_settings.__annotations__ = {"model": str, "card": Path | None, "stain": str,
                             "return": None}


def layer_stain(layer: Any) -> str:
    """Stain of an image layer: its metadata's, else inferred from its name."""
    st = (layer.metadata or {}).get("focusqa", {}).get("stain")
    if st in STAIN_CLASSES and st != "generic":
        return str(st)
    guess = stain_for_channel(layer.name)
    return guess if guess != "generic" or st not in STAIN_CLASSES else str(st)


def thresholds_note(job: Any, sr: Any) -> str:
    """``"; in focus: level <= 2 (the file's optics: Airy disc 6.0 px)"`` when the
    layer's optics moved the verdict threshold off the card's, else ``""``."""
    airy = getattr(job, "airy_px", None)
    planes = sr.channels[0].slices if sr is not None and sr.channels else []
    if airy is None or not planes or planes[0].probabilities is None:
        return ""
    return (f"; in focus: level <= {planes[0].in_focus_max_level} (the file's optics: "
            f"Airy disc {airy:.1f} px)")


class AssessWidget(FocusDock):
    """Dock widget "Assess focus" (see module docstring)."""

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(napari_viewer, parent, on_progress=self._on_progress,
                         on_finished=self._on_finished)
        self.results: list[AssessedChannel] = []
        self.layers = Select(label="channels", choices=self._image_choices,
                             allow_multiple=True)
        models = level_model_ids()
        default = default_model_id()
        self.form = magicgui(
            _settings, persist=True, call_button=False,
            model={"choices": [*models, SF_ONLY],
                   "value": default if default in models else SF_ONLY},
            card={"label": "or card", "filter": "*.json", "mode": "r"},
            stain={"choices": [AUTO_STAIN, *STAIN_CLASSES]},
        )
        self.patch_label = Label(value="")
        self.assess_btn = PushButton(text="Assess focus")
        self.cancel_btn = PushButton(text="Cancel", enabled=False)
        self.progress_bar = ProgressBar(value=0, min=0, max=1)
        self.status = Label(value="")
        self.legend = LegendWidget(11)
        self.summary = Table(value={"data": [], "index": [], "columns": list(SUMMARY_COLUMNS)})
        self.summary.native.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.summary.native.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.best_btn = PushButton(text="Go to best plane", enabled=False)
        self.csv_btn = PushButton(text="Export CSV…", enabled=False)
        self.json_btn = PushButton(text="Export JSON…", enabled=False)

        lay = QVBoxLayout(self)
        for w in (self.layers, self.form, self.patch_label):
            lay.addWidget(w.native)
        row = QHBoxLayout()
        row.addWidget(self.assess_btn.native, 1)
        row.addWidget(self.cancel_btn.native)
        lay.addLayout(row)
        lay.addWidget(self.progress_bar.native)
        lay.addWidget(self.status.native)
        lay.addWidget(self.legend)
        lay.addWidget(self.summary.native, 1)
        row = QHBoxLayout()
        for b in (self.best_btn, self.csv_btn, self.json_btn):
            row.addWidget(b.native)
        lay.addLayout(row)
        self.status.native.setWordWrap(True)
        self.layers.native.setMaximumHeight(110)

        self.assess_btn.changed.connect(self.run)
        self.cancel_btn.changed.connect(self.cancel)
        self.best_btn.changed.connect(lambda: self.go_to_best())
        self.csv_btn.changed.connect(lambda: self._export_dialog("csv"))
        self.json_btn.changed.connect(lambda: self._export_dialog("json"))
        self.form.changed.connect(self._on_model_changed)
        self.summary.native.cellClicked.connect(self._on_summary_clicked)
        ev = self.viewer.layers.events
        for emitter in [ev.inserted, ev.removed, *(ly.events.name for ly in self.viewer.layers)]:
            self._connect(emitter, self._reset_layers)
        self._connect(ev.inserted, lambda e: self._connect(e.value.events.name,
                                                           self._reset_layers))
        self._reset_layers()
        self.layers.value = self.image_layers()
        self._on_model_changed()

    # ------------------------------------------------------------ layers
    def image_layers(self) -> list[Any]:
        from napari.layers import Image

        return [ly for ly in self.viewer.layers if isinstance(ly, Image)]

    def _image_choices(self, _w: Any = None) -> list[tuple[str, Any]]:
        return [(ly.name, ly) for ly in self.image_layers()]

    def _reset_layers(self, *_: Any) -> None:
        """Keep the chosen layers; while every channel is chosen, new ones join."""
        was_all = len(self.layers.value) == len(self.layers.choices)
        chosen = [ly for ly in self.layers.value if ly in self.viewer.layers]
        self.layers.reset_choices()
        self.layers.value = self.image_layers() if was_all else chosen

    def set_selected_layers(self, names: list[str]) -> None:
        """Assess only the image layers called ``names``."""
        known = {ly.name: ly for ly in self.image_layers()}
        missing = [n for n in names if n not in known]
        if missing:
            raise FocusQAError(f"names: no image layer called {missing} (have {sorted(known)})")
        self.layers.value = [known[n] for n in names]

    def selected_layers(self) -> list[Any]:
        return [ly for ly in self.layers.value if ly in self.viewer.layers]

    def set_stain(self, layer_name: str, stain: str) -> None:
        """Set the stain of one channel (stored in the layer's metadata)."""
        if stain not in STAIN_CLASSES:
            raise FocusQAError(f"stain: expected one of {STAIN_CLASSES}, got {stain!r}")
        layer = self.viewer.layers[layer_name]
        meta = dict(layer.metadata or {})
        meta["focusqa"] = dict(meta.get("focusqa") or {}, stain=stain)
        layer.metadata = meta

    def stain_of(self, layer: Any) -> str:
        st = self.form.stain.value
        return layer_stain(layer) if st == AUTO_STAIN else str(st)

    # ------------------------------------------------------------ model
    def set_model(self, model: str | Path | None) -> None:
        """Select a model by id or card path; ``None`` selects "none (SF only)"."""
        if model is None:
            self.form.card.value = None
            self.form.model.value = SF_ONLY
            return
        key = str(model)
        if key in self.form.model.choices:
            self.form.card.value = None
            self.form.model.value = key
        elif Path(key).suffix == ".json":
            if not Path(key).is_file():
                raise FocusQAError(f"model: no model card at {key}")
            self.form.card.value = Path(key)
        else:
            raise FocusQAError(f"model: {key!r} is not an installed levels model "
                               f"(installed: {level_model_ids()})")

    def model_choice(self) -> str | None:
        """The model the next run uses: card path, model id, or None (SF only)."""
        card = self.form.card.value
        if card is not None and str(card) not in ("", ".") and Path(card).is_file():
            return str(card)
        return None if self.form.model.value == SF_ONLY else str(self.form.model.value)

    def _on_model_changed(self, *_: Any) -> None:
        from napari_focusqa.pipeline import resolve_model

        ref = self.model_choice()
        if ref is None:
            self.patch_label.value = "patch: — (SF only: whole-image metrics, no patches)"
            return
        try:
            fm = resolve_model(ref)
        except FocusQAError as exc:
            self.patch_label.value = f"model: {exc}"
            return
        if fm is not None:
            self.patch_label.value = f"patch: {fm.patch_size} px (from the model)"
            self.legend.set_num_classes(int(fm.num_classes))

    # ------------------------------------------------------------ running
    def run(self, *_: Any) -> Any:
        """Assess the selected layers; returns the worker (None on bad input)."""
        layers = self.selected_layers()
        if not layers:
            self.runner.error("FocusQA: no image layer selected: open an image or pick a channel")
            return None
        try:
            jobs = [job_for(ly, self.viewer, self.stain_of(ly)) for ly in layers]
        except FocusQAError as exc:
            self.runner.error(str(exc))
            return None
        total = sum(j.n_planes for j in jobs)
        model = self.model_choice()
        worker = self.runner.start(run_jobs, jobs, model if model is not None else "none",
                                   desc="FocusQA: assessing focus", total=total,
                                   on_done=self._on_done)
        if worker is not None:
            self.progress_bar.max = total
            self.progress_bar.value = 0
            self.status.value = f"Assessing {len(jobs)} channel(s), {total} planes…"
            self.assess_btn.enabled = False
            self.cancel_btn.enabled = True
        return worker

    def cancel(self, *_: Any) -> None:
        """Stop the running assessment (no results change)."""
        self.runner.cancel()

    def _on_progress(self, done: int, total: int) -> None:
        self.progress_bar.value = min(done, self.progress_bar.max)

    def _on_finished(self) -> None:
        self.assess_btn.enabled = True
        self.cancel_btn.enabled = False
        if self.last_error:
            self.status.value = self.last_error

    def _on_done(self, out: list[tuple[Any, Any, Any]]) -> None:
        self.results = add_assessment(self.viewer, out)
        k = next((int(p.metadata["focusqa"]["num_classes"]) for _, _, p in out
                  if p is not None), None)
        if k is not None:
            self.legend.set_num_classes(k)
        optics = {job.layer_name: thresholds_note(job, sr) for job, sr, _ in out}
        bits = []
        for e in self.results:
            um = f" ({e.curve['best_z_um']:g} µm)" if e.curve.get("best_z_um") is not None else ""
            bm = e.best_z_index_model
            bits.append(f"{e.layer_name}: best z {e.best_z_index}{um}"
                        + (f" (SF: z {e.curve.get('best_z_index_sf')}, model: z {bm})"
                           if bm is not None else " by SF") + optics.get(e.layer_name, ""))
        self._fill_summary()
        self.status.value = "\n".join(bits)
        for b in (self.best_btn, self.csv_btn, self.json_btn):
            b.enabled = True

    # ------------------------------------------------------------ results
    def records(self) -> list[dict[str, Any]]:
        """One core record per assessed plane (the CLI's CSV rows)."""
        return [r for e in self.results for r in e.records]

    def _fill_summary(self) -> None:
        def fmt(v: Any, nd: int = 3) -> str:
            if v is None:
                return "—"
            if isinstance(v, bool):
                return "yes" if v else "no"
            if isinstance(v, float):
                return f"{v:.{nd}g}" if abs(v) >= 1000 else f"{v:.{nd}f}"
            return str(v)

        rows = [(e, r) for e in self.results for r in e.records]
        data = [[fmt(v, 4 if c == 10 else 3) for c, v in enumerate((
            e.layer_name, r.get("stain"), r.get("z_index"), r.get("z_um"), r.get("verdict"),
            r.get("structured_fraction"), r.get("predicted_level"), r.get("expected_level"),
            r.get("mean_certainty"), r.get("aggregate_certainty"), r.get("sf"),
            r.get("in_focus")))] for e, r in rows]
        self.summary.value = {"data": data, "index": [str(i) for i in range(len(data))],
                              "columns": list(SUMMARY_COLUMNS)}
        bold = QFont()
        bold.setBold(True)
        t = self.summary.native
        for i, (e, r) in enumerate(rows):
            if r.get("z_index") == e.best_z_index:
                for c in range(t.columnCount()):
                    it = t.item(i, c)
                    if it is not None:
                        it.setFont(bold)
        t.resizeColumnsToContents()
        self._summary_rows = rows

    def _on_summary_clicked(self, row: int, _col: int) -> None:
        rows = getattr(self, "_summary_rows", [])
        if 0 <= row < len(rows):
            e, r = rows[row]
            e.go_to(self.viewer, int(r.get("z_index") or 0))

    def go_to_best(self, layer_name: str | None = None) -> int | None:
        """Jump to the best (SF-peak) plane of ``layer_name`` (default: selected row)."""
        if not self.results:
            return None
        entry = self.results[0]
        if layer_name is None:
            rows = getattr(self, "_summary_rows", [])
            sel = self.summary.native.currentRow()
            if 0 <= sel < len(rows):
                entry = rows[sel][0]
        else:
            layer = self.viewer.layers[layer_name] if layer_name in self.viewer.layers else None
            found = result_of(layer) if layer is not None else None
            if found is None:
                raise FocusQAError(f"layer_name: {layer_name!r} has not been assessed")
            entry = found
        entry.go_to(self.viewer, entry.best_z_index)
        return entry.best_z_index

    def export_csv(self, path: str | Path) -> Path:
        """Write the per-plane records as CSV (same columns as ``focusqa zstack``)."""
        from napari_focusqa.core.assess import RECORD_COLUMNS
        from napari_focusqa.io.writer import write_csv

        write_csv(self.records(), path, RECORD_COLUMNS)
        return Path(path)

    def export_json(self, path: str | Path) -> Path:
        """Write per-channel curves and per-plane records as JSON."""
        from napari_focusqa.io.writer import write_json

        doc = {"channels": [dict(e.curve, layer=e.layer_name, model=e.model_id)
                            for e in self.results],
               "records": self.records()}
        write_json(doc, path)
        return Path(path)

    def _export_dialog(self, kind: str) -> None:
        from qtpy.QtWidgets import QFileDialog

        filt = "CSV (*.csv)" if kind == "csv" else "JSON (*.json)"
        path, _ = QFileDialog.getSaveFileName(self, "Export focus results", f"focusqa.{kind}",
                                              filt)
        if path:
            (self.export_csv if kind == "csv" else self.export_json)(path)
