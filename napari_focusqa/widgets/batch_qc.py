"""The "Batch QC" dock widget: a folder in, a results table and a level histogram out.

A thin Qt front end over :func:`napari_focusqa.batch.run_batch` (the same code as
``focusqa batch``): choose a folder (searched recursively for TIFF/PNG), a model and
the number of dask worker processes (0 = in this process), then **Run batch**. The
batch runs in a napari worker thread; each file's rows arrive in the table as soon as
they are written to the output CSV/parquet (default ``<folder>/focusqa_batch.csv``).
Failed files show their error. The histogram shows how many planes got each focus
level, coloured with the shared FocusQA level colours (SF histogram without a model).
**Cancel** stops after the current file; tick *Resume* to continue a previous run.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_focusqa.core.colors import level_colors
from napari_focusqa.core.errors import Cancelled, FocusQAError
from napari_focusqa.core.model import default_model_id, list_models

SF_ONLY = "none (SF only)"
TABLE_COLUMNS = ("file", "well", "site", "channel", "z", "level", "certainty", "SF", "in focus",
                 "error")


class _Bridge(QObject):
    result = Signal(object, object)  # (result dict, BatchSummary) from the worker thread


def _run(inputs: list[str], out: str, model: str | None, workers: int, resume: bool,
         cancel: threading.Event, emit: Any) -> tuple[str, Any]:
    """Worker-thread body: returns ("done", summary), ("cancelled", None) or ("error", msg)."""
    from napari_focusqa.batch import run_batch

    try:
        summary = run_batch(inputs, out, model=model, workers=workers, resume=resume,
                            overwrite=not resume, progress=False, log=None,
                            on_result=emit, cancel=cancel.is_set)
    except Cancelled:
        return ("cancelled", None)
    except FocusQAError as exc:
        return ("error", str(exc))
    return ("done", summary)


class BatchQCWidget(QWidget):
    """Batch focus QC of a folder, results as a table and a histogram."""

    def __init__(self, napari_viewer: Any = None) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker: Any = None
        self.last_error: str | None = None
        self.summary: Any = None
        self.rows: list[dict[str, Any]] = []
        self._cancel = threading.Event()
        self._bridge = _Bridge()
        self._bridge.result.connect(self._on_result)

        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("folder with TIFF/PNG images (searched recursively)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        frow = QHBoxLayout()
        frow.addWidget(self.folder_edit)
        frow.addWidget(browse)

        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)  # an id or a model card path may be typed
        ids = [str(c["id"]) for c in list_models() if c.get("task") in ("levels", "levels-stain")]
        default = default_model_id()
        if default in ids:
            ids.remove(default)
            ids.insert(0, default)
        self.model_combo.addItems([*ids, SF_ONLY])

        self.workers_spin = QSpinBox()
        self.workers_spin.setRange(0, max(os.cpu_count() or 1, 1) * 4)
        self.workers_spin.setValue(0)
        self.workers_spin.setToolTip("dask worker processes; 0 = run in this process")
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("<folder>/focusqa_batch.csv (.csv or .parquet)")
        self.resume_check = QCheckBox("Resume (skip files already in the output)")

        form = QFormLayout()
        form.addRow("Folder", frow)
        form.addRow("Model", self.model_combo)
        form.addRow("Workers", self.workers_spin)
        form.addRow("Output", self.out_edit)
        form.addRow("", self.resume_check)

        self.run_btn = QPushButton("Run batch")
        self.run_btn.clicked.connect(self.run)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        brow = QHBoxLayout()
        brow.addWidget(self.run_btn)
        brow.addWidget(self.cancel_btn)
        self.progress_bar = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)

        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(TABLE_COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.figure = Figure(figsize=(4, 2.2), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(160)

        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(brow)
        lay.addWidget(self.progress_bar)
        lay.addWidget(self.status)
        lay.addWidget(self.table, stretch=2)
        lay.addWidget(self.canvas, stretch=1)

    # ------------------------------------------------------------------ inputs
    def _browse(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Folder of images")
        if d:
            self.folder_edit.setText(d)

    def model_choice(self) -> str | None:
        text = self.model_combo.currentText().strip()
        return None if text in ("", SF_ONLY) else text

    def out_path(self) -> Path:
        text = self.out_edit.text().strip()
        return Path(text) if text else Path(self.folder_edit.text().strip()) / "focusqa_batch.csv"

    @property
    def running(self) -> bool:
        return self.worker is not None

    # ------------------------------------------------------------------ run
    def run(self) -> Any:
        """Start the batch; returns the worker (None when the input is refused)."""
        if self.worker is not None:
            self._show_error("A batch is already running")
            return None
        folder = self.folder_edit.text().strip()
        if not folder or not Path(folder).is_dir():
            self._show_error(f"Folder: {folder or '(empty)'} is not a folder")
            return None
        from napari_focusqa.batch import expand_inputs

        try:
            n = len(expand_inputs([folder]))
        except FocusQAError as exc:
            self._show_error(str(exc))
            return None
        if n == 0:
            self._show_error(f"Folder: no .tif/.tiff/.png images in {folder}")
            return None
        from napari.qt.threading import create_worker

        self.last_error = None
        self.summary = None
        self.rows = []
        self.table.setRowCount(0)
        self._cancel.clear()
        self.progress_bar.setRange(0, n)
        self.progress_bar.setValue(0)
        self.status.setStyleSheet("")
        self.status.setText(f"Assessing {n} files…")
        self.run_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        worker = create_worker(
            _run, [folder], str(self.out_path()), self.model_choice(), self.workers_spin.value(),
            self.resume_check.isChecked(), self._cancel, self._bridge.result.emit,
            _start_thread=False,
        )
        worker.returned.connect(self._on_returned)
        worker.errored.connect(lambda exc: self._show_error(f"{type(exc).__name__}: {exc}"))
        worker.finished.connect(self._on_finished)
        self.worker = worker
        worker.start()
        return worker

    def cancel(self) -> None:
        """Stop after the current file (rows written so far stay in the output)."""
        self._cancel.set()
        self.status.setText("Cancelling…")

    # ------------------------------------------------------------------ results
    def _on_result(self, res: dict[str, Any], summary: Any) -> None:
        self.progress_bar.setMaximum(max(self.progress_bar.maximum(),
                                         summary.files_done + summary.files_skipped))
        self.progress_bar.setValue(summary.files_done + summary.files_skipped)
        for r in res["rows"]:
            self._append_row(r)
        if summary.files_done % 25 == 0:
            self.update_histogram()

    def _append_row(self, r: dict[str, Any]) -> None:
        self.rows.append(r)
        vals = (
            Path(str(r.get("file"))).name, r.get("well"), r.get("site"),
            r.get("name_channel") or r.get("channel"), r.get("z_index"), r.get("predicted_level"),
            r.get("mean_certainty"), r.get("sf"), r.get("in_focus"), r.get("error"),
        )
        i = self.table.rowCount()
        self.table.insertRow(i)
        for j, v in enumerate(vals):
            text = "" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
            self.table.setItem(i, j, QTableWidgetItem(text))

    def level_counts(self) -> dict[int, int]:
        """Planes per predicted level (rows without a model verdict are not counted)."""
        out: dict[int, int] = {}
        for r in self.rows:
            lv = r.get("predicted_level")
            if lv is not None:
                out[int(lv)] = out.get(int(lv), 0) + 1
        return out

    def update_histogram(self) -> None:
        self.figure.clear()
        ax = self.figure.add_subplot(111)
        counts = self.level_counts()
        if counts:
            k = max(11, max(counts) + 1)
            levels = np.arange(k)
            heights = [counts.get(int(lv), 0) for lv in levels]
            ax.bar(levels, heights, color=level_colors(levels, np.ones(k), num_classes=k))
            ax.set_xlabel("predicted focus level (0 = in focus)")
            ax.set_xticks(levels)
        else:
            sf = [r["sf"] for r in self.rows if r.get("sf") is not None]
            if sf:
                ax.hist(sf, bins=min(30, max(5, len(sf) // 3)), color="0.5")
            ax.set_xlabel("spatial frequency (SF)")
        ax.set_ylabel("planes")
        self.canvas.draw_idle()

    def _on_returned(self, outcome: tuple[str, Any]) -> None:
        status, out = outcome
        self.update_histogram()
        if status == "cancelled":
            self.status.setText(f"Cancelled after {len({r['file'] for r in self.rows})} files; "
                                "tick Resume to continue")
            return
        if status == "error":
            self._show_error(out)
            return
        self.summary = out
        oof = sum(v[0] for v in out.out_of_focus.values())
        self.status.setText(
            f"{out.files_done} files ({out.files_skipped} skipped), {out.files_failed} failed, "
            f"{oof} planes out of focus, {out.files_per_s:.1f} files/s -> {out.out}"
        )

    def _on_finished(self) -> None:
        self.worker = None
        self.run_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)

    def _show_error(self, msg: str) -> None:
        self.last_error = msg
        self.status.setStyleSheet("color: #e06060")
        self.status.setText(msg)
