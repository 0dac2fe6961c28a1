"""The "Batch QC" dock widget: a folder in; a results table, a level histogram and a plate
map out.

A thin view over :func:`napari_focusqa.batch.run_batch` (the same code as
``focusqa batch``). The form (folder, model, dask workers, output, resume) is a
persisted magicgui form; the batch runs in the shared :class:`TaskRunner` (activity-dock
progress per file, Cancel stops after the current file, notifications for errors).
Rows appear in the table as each file is written. The plate view
(:func:`napari_focusqa.batch.plate_grid`, drawn by :func:`plots.draw_plate`) colours each
well by its mean predicted level; **clicking a well or a table row opens that image**
with its patch-border overlay (assessed with the batch's model).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from magicgui import magicgui
from magicgui.widgets import Label, ProgressBar, PushButton, Table
from qtpy.QtWidgets import QAbstractItemView, QHBoxLayout, QVBoxLayout, QWidget

from napari_focusqa.core.errors import FocusQAError
from napari_focusqa.plots import draw_level_histogram, draw_plate
from napari_focusqa.widgets._base import FocusDock
from napari_focusqa.widgets._plot import PlotCanvas
from napari_focusqa.widgets.assess import SF_ONLY, level_model_ids

TABLE_COLUMNS = ("file", "well", "site", "channel", "z", "verdict", "structured", "level",
                 "certainty", "SF", "error")


def _form(folder: Path = Path(), model: str = SF_ONLY, workers: int = 0,
          output: Path = Path(), resume: bool = False) -> None:
    """Batch settings (persisted)."""


_form.__annotations__ = {"folder": Path, "model": str, "workers": int, "output": Path,
                         "resume": bool, "return": None}


def _run(inputs: list[str], out: str, model: str | None, workers: int, resume: bool, *,
         emit: Any, cancel: Any) -> Any:
    """Task body (worker thread): the batch, one progress step and one item per file."""
    from napari_focusqa.batch import run_batch

    def on_result(res: dict[str, Any], summary: Any) -> None:
        emit(item=(res, summary))
        emit(summary.files_done + summary.files_skipped, summary.files_total)

    return run_batch(inputs, out, model=model, workers=workers, resume=resume,
                     overwrite=not resume, progress=False, log=None, on_result=on_result,
                     cancel=cancel)


def _set(path: Any) -> str:
    s = "" if path is None else str(path).strip()
    return "" if s in ("", ".") else s


class BatchQCWidget(FocusDock):
    """Batch focus QC of a folder (see module docstring)."""

    def __init__(self, napari_viewer: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(napari_viewer, parent, on_progress=self._on_progress,
                         on_item=self._on_result, on_finished=self._on_finished)
        self.summary: Any = None
        self.rows: list[dict[str, Any]] = []
        self.plate: tuple[list[str], list[int], np.ndarray] | None = None
        self.opened: list[str] = []
        models = level_model_ids()
        from napari_focusqa.core.model import default_model_id

        default = default_model_id()
        self.form = magicgui(
            _form, persist=True, call_button=False,
            folder={"mode": "d", "label": "folder"},
            model={"choices": [*models, SF_ONLY], "value": default if default in models
                   else SF_ONLY},
            workers={"min": 0, "max": max(os.cpu_count() or 1, 1) * 4,
                     "tooltip": "dask worker processes; 0 = run in this process"},
            output={"mode": "w", "filter": "*.csv *.parquet",
                    "tooltip": "default <folder>/focusqa_batch.csv"},
            resume={"text": "resume (skip files already in the output)"},
        )
        self.card: str | None = None  # a model card path overrides the menu (set_model)
        self.run_btn = PushButton(text="Run batch")
        self.cancel_btn = PushButton(text="Cancel", enabled=False)
        self.progress_bar = ProgressBar(value=0, min=0, max=1)
        self.status = Label(value="")
        self.status.native.setWordWrap(True)
        self.table = Table(value={"data": [], "index": [], "columns": list(TABLE_COLUMNS)})
        self.table.native.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.native.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.hist = PlotCanvas(4, 2.0, 150)
        self.plate_canvas = PlotCanvas(4, 2.6, 180)
        self.plate_canvas.mpl_connect("button_press_event", self._on_plate_click)
        lay = QVBoxLayout(self)
        lay.addWidget(self.form.native)
        row = QHBoxLayout()
        row.addWidget(self.run_btn.native, 1)
        row.addWidget(self.cancel_btn.native)
        lay.addLayout(row)
        lay.addWidget(self.progress_bar.native)
        lay.addWidget(self.status.native)
        lay.addWidget(self.table.native, 2)
        lay.addWidget(self.plate_canvas, 1)
        lay.addWidget(self.hist, 1)
        self.run_btn.changed.connect(self.run)
        self.cancel_btn.changed.connect(self.cancel)
        self.table.native.cellDoubleClicked.connect(lambda r, _c: self.open_row(r))

    # ------------------------------------------------------------------ inputs
    def set_model(self, model: str | Path | None) -> None:
        """Model id, card path, or None (SF only)."""
        if model is None or str(model) in self.form.model.choices:
            self.card = None
            self.form.model.value = SF_ONLY if model is None else str(model)
        elif Path(model).suffix == ".json" and Path(model).is_file():
            self.card = str(model)
        else:
            raise FocusQAError(f"model: {model!r} is neither an installed levels model nor a "
                               "model card file")

    def model_choice(self) -> str | None:
        if self.card:
            return self.card
        return None if self.form.model.value == SF_ONLY else str(self.form.model.value)

    def out_path(self) -> Path:
        out = _set(self.form.output.value)
        return Path(out) if out else Path(_set(self.form.folder.value)) / "focusqa_batch.csv"

    # ------------------------------------------------------------------ run
    def run(self, *_: Any) -> Any:
        """Start the batch; returns the worker (None when the input is refused)."""
        from napari_focusqa.batch import expand_inputs

        folder = _set(self.form.folder.value)
        if not folder or not Path(folder).is_dir():
            self.runner.error(f"Folder: {folder or '(empty)'} is not a folder")
            return None
        try:
            n = len(expand_inputs([folder]))
        except FocusQAError as exc:
            self.runner.error(str(exc))
            return None
        if n == 0:
            self.runner.error(f"Folder: no .tif/.tiff/.png images in {folder}")
            return None
        worker = self.runner.start(_run, [folder], str(self.out_path()), self.model_choice(),
                                   int(self.form.workers.value), bool(self.form.resume.value),
                                   desc="FocusQA: batch QC", total=n,
                                   on_done=self._on_done)
        if worker is not None:
            self.summary, self.rows, self.plate = None, [], None
            self.table.value = {"data": [], "index": [], "columns": list(TABLE_COLUMNS)}
            self.progress_bar.max, self.progress_bar.value = n, 0
            self.status.value = f"Assessing {n} files…"
            self.run_btn.enabled, self.cancel_btn.enabled = False, True
        return worker

    def cancel(self, *_: Any) -> None:
        """Stop after the current file (rows written so far stay in the output)."""
        self.runner.cancel()

    # ------------------------------------------------------------------ results
    def _on_progress(self, done: int, total: int) -> None:
        self.progress_bar.max = max(self.progress_bar.max, total, done)
        self.progress_bar.value = done

    def _on_result(self, item: tuple[dict[str, Any], Any]) -> None:
        res, _summary = item
        for r in res["rows"]:
            self._append_row(r)

    def _append_row(self, r: dict[str, Any]) -> None:
        self.rows.append(r)
        vals = (Path(str(r.get("file"))).name, r.get("well"), r.get("site"),
                r.get("name_channel") or r.get("channel"), r.get("z_index"), r.get("verdict"),
                r.get("structured_fraction"), r.get("predicted_level"), r.get("mean_certainty"),
                r.get("sf"), r.get("error"))
        self.table.native.insertRow(len(self.rows) - 1)
        from qtpy.QtWidgets import QTableWidgetItem

        for j, v in enumerate(vals):
            text = "" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
            self.table.native.setItem(len(self.rows) - 1, j, QTableWidgetItem(text))

    def level_counts(self) -> dict[int, int]:
        """Planes per predicted level (rows without a model verdict are not counted)."""
        out: dict[int, int] = {}
        for r in self.rows:
            lv = r.get("predicted_level")
            if lv is not None:
                out[int(lv)] = out.get(int(lv), 0) + 1
        return out

    def update_plots(self) -> None:
        """Redraw the level histogram and the plate map from the rows so far."""
        (ax,) = self.hist.fresh_axes(1)
        levels = [int(r["predicted_level"]) for r in self.rows
                  if r.get("predicted_level") is not None]
        draw_level_histogram(ax, levels, [r["sf"] for r in self.rows if r.get("sf") is not None])
        self.hist.draw_idle()
        (pax,) = self.plate_canvas.fresh_axes(1)
        self.plate = None
        try:
            from napari_focusqa.batch import plate_grid

            self.plate = plate_grid(self.rows, "predicted_level")
        except FocusQAError as exc:  # no well names, or SF only
            pax.text(0.5, 0.5, f"no plate map: {exc}", ha="center", va="center", fontsize=7,
                     wrap=True, transform=pax.transAxes)
            pax.set_axis_off()
        if self.plate is not None:
            rows, cols, values = self.plate
            draw_plate(pax, values, rows, [str(c) for c in cols],
                       title="mean predicted level per well (click a well to open it)")
        self.plate_canvas.draw_idle()

    def _on_done(self, summary: Any) -> None:
        self.summary = summary
        self.update_plots()
        oof = sum(v[0] for v in summary.out_of_focus.values())
        self.status.value = (f"{summary.files_done} files ({summary.files_skipped} skipped), "
                             f"{summary.files_failed} failed, {oof} planes out of focus, "
                             f"{summary.files_per_s:.1f} files/s -> {summary.out}")

    def _on_finished(self) -> None:
        self.run_btn.enabled, self.cancel_btn.enabled = True, False
        if self.last_error:
            self.update_plots()
            self.status.value = self.last_error

    # ------------------------------------------------------------------ open an image
    def well_at(self, x: float, y: float) -> str | None:
        """Well name under plate-axes data coordinates (column x, row y)."""
        if self.plate is None:
            return None
        rows, cols, _ = self.plate
        i, j = int(round(y)), int(round(x))
        if 0 <= i < len(rows) and 0 <= j < len(cols):
            return f"{rows[i]}{cols[j]:02d}"
        return None

    def _on_plate_click(self, event: Any) -> None:
        if event.inaxes is None or event.xdata is None:
            return
        well = self.well_at(event.xdata, event.ydata)
        if well is not None:
            self.open_well(well)

    def open_well(self, well: str) -> Any:
        """Open the first image of ``well`` (``B03`` or ``B3``) with its overlay."""
        want = well.upper()
        for i, r in enumerate(self.rows):
            w = str(r.get("well") or "").upper()
            if w and (w == want or (w[0] == want[0] and w[1:].lstrip("0") == want[1:].lstrip("0"))) \
                    and not r.get("error"):
                return self.open_row(i)
        self.runner.error(f"well: no readable image of well {well} in this batch")
        return None

    def open_row(self, index: int) -> Any:
        """Open the image of table row ``index`` in the viewer and assess it there."""
        from napari_focusqa.widgets.assess_worker import job_for, run_jobs

        if self.viewer is None or not 0 <= index < len(self.rows):
            return None
        path = str(self.rows[index].get("file"))
        try:
            layers = self.viewer.open(path, plugin="napari-focusqa")
            jobs = [job_for(ly, self.viewer, str((ly.metadata.get("focusqa") or {})
                                                 .get("stain") or "generic")) for ly in layers]
        except (FocusQAError, OSError, ValueError) as exc:
            self.runner.error(f"{path}: {exc}")
            return None
        self.opened.append(path)
        model = self.model_choice()
        return self.runner.start(run_jobs, jobs, model if model is not None else "none",
                                 desc=f"FocusQA: {Path(path).name}",
                                 total=sum(j.n_planes for j in jobs),
                                 on_done=self._show_opened)

    def _show_opened(self, out: Any) -> None:
        from napari_focusqa.widgets.assess_worker import add_assessment

        add_assessment(self.viewer, out)
