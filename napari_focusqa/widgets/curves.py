"""The "Focus curves" dock widget: SF vs z per channel, model level vs z, box plots.

Reads the results the "Assess focus" widget put in the viewer's result store (no focus
computation here). Clicking near a point moves the viewer to that slice; moving the z
slider moves a cursor line on the plot. The figure exports as PNG/SVG and the plotted
data as CSV.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_focusqa.core.errors import FocusQAError
from napari_focusqa.widgets._store import AssessedChannel, store_for

MODE_CURVES = "SF vs z"
MODE_BOX = "SF per stain (box plot)"
CLICK_TOLERANCE_PX = 20.0


def normalise(values: np.ndarray) -> np.ndarray:
    """Scale a curve to [0, 1] (min -> 0, max -> 1); a flat curve becomes 0."""
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return np.zeros_like(v)
    lo, span = float(finite.min()), float(np.ptp(finite))
    return (v - lo) / span if span > 0 else np.zeros_like(v)


def curve_x(entry: AssessedChannel) -> np.ndarray:
    """Plot x of each slice: z in µm when the z-step is known, else the slice index."""
    zum = entry.curve.z_um
    return np.asarray(zum if zum is not None else range(entry.curve.n_slices), dtype=float)


class CurvesWidget(QWidget):
    """Dock widget "Focus curves" (see module docstring)."""

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.store = store_for(napari_viewer)
        self.plotted: dict[str, dict[str, Any]] = {}
        self.lines: dict[tuple[int, str], Any] = {}
        self.cursors: list[Any] = []
        self.cursor_z_index: int | None = None
        self.last_clicked: tuple[str, int] | None = None

        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        self.mode = QComboBox()
        self.mode.addItems([MODE_CURVES, MODE_BOX])
        self.mode.currentIndexChanged.connect(self.refresh)
        self.normalised = QCheckBox("normalised")
        self.normalised.setChecked(True)
        self.normalised.toggled.connect(self.refresh)
        row.addWidget(self.mode, 1)
        row.addWidget(self.normalised)
        lay.addLayout(row)

        self.figure = Figure(figsize=(5, 5), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(320)
        self.canvas.mpl_connect("button_press_event", self._on_click)
        lay.addWidget(self.canvas, 1)
        self.hint = QLabel("Run “Assess focus”; click a point to go to that slice.")
        self.hint.setWordWrap(True)
        lay.addWidget(self.hint)

        row = QHBoxLayout()
        self.fig_btn = QPushButton("Save figure…")
        self.fig_btn.clicked.connect(self._save_figure_dialog)
        self.csv_btn = QPushButton("Save data (CSV)…")
        self.csv_btn.clicked.connect(self._save_csv_dialog)
        row.addWidget(self.fig_btn)
        row.addWidget(self.csv_btn)
        lay.addLayout(row)

        self.store.changed.connect(self.refresh)
        self.viewer.dims.events.current_step.connect(self._update_cursor)
        self.destroyed.connect(self._disconnect)
        self.refresh()

    def _disconnect(self, *_: Any) -> None:
        try:
            self.store.changed.disconnect(self.refresh)
            self.viewer.dims.events.current_step.disconnect(self._update_cursor)
        except (RuntimeError, TypeError, ValueError):  # already gone
            pass

    # ------------------------------------------------------------ drawing
    def entries(self) -> list[AssessedChannel]:
        return self.store.entries()

    def refresh(self, *_: Any) -> None:
        """Redraw from the store."""
        self.figure.clear()
        self.plotted.clear()
        self.lines.clear()
        self.cursors = []
        entries = self.entries()
        self.hint.setVisible(not entries)
        if self.mode.currentText() == MODE_BOX:
            self._draw_box(entries)
        else:
            self._draw_curves(entries)
        self.canvas.draw_idle()

    def _draw_curves(self, entries: list[AssessedChannel]) -> None:
        have_model = any(e.curve.expected_level is not None for e in entries)
        axes = self.figure.subplots(2 if have_model else 1, 1, sharex=True, squeeze=False)[:, 0]
        self.axes = list(axes)
        norm = self.normalised.isChecked()
        for i, e in enumerate(entries):
            x = curve_x(e)
            sf = e.curve.sf
            y = normalise(sf) if norm else sf
            color = f"C{i % 10}"
            label = f"{e.layer_name} ({e.curve.stain})"
            (ln,) = axes[0].plot(x, y, "o-", ms=3, lw=1.2, color=color, label=label)
            self.lines[(0, e.layer_name)] = ln
            b = e.curve.best_z_index
            axes[0].plot([x[b]], [y[b]], "*", ms=13, color=color, mec="k", mew=0.5)
            lv = e.curve.expected_level
            rec = {"x": x, "sf": sf, "y": y, "expected_level": lv, "best_z_index": b}
            if have_model and lv is not None:
                (ln2,) = axes[1].plot(x, lv, "o-", ms=3, lw=1.2, color=color, label=label)
                self.lines[(1, e.layer_name)] = ln2
                bm = e.curve.best_z_index_model
                if bm is not None:
                    axes[1].plot([x[bm]], [lv[bm]], "*", ms=13, color=color, mec="k", mew=0.5)
            self.plotted[e.layer_name] = rec
        steps = {e.curve.z_step_um is not None for e in entries}
        axes[-1].set_xlabel("z (µm)" if steps == {True} else "z (slice index)")
        axes[0].set_ylabel("SF (normalised)" if norm else "SF")
        axes[0].set_title("Spatial frequency vs z (★ best focus)", fontsize=10)
        if entries:
            axes[0].legend(fontsize=7, loc="best")
        if have_model:
            axes[1].set_ylabel("expected level")
            ids = sorted({str(e.model_id) for e in entries if e.model_id})
            axes[1].set_title(f"Model {', '.join(ids)}: expected defocus level", fontsize=10)
            axes[1].invert_yaxis()
        for ax in axes:
            ax.grid(alpha=0.3)
            self.cursors.append(ax.axvline(np.nan, color="0.3", lw=1, ls=":"))
        self._update_cursor()

    def _draw_box(self, entries: list[AssessedChannel]) -> None:
        ax = self.figure.subplots()
        self.axes = [ax]
        norm = self.normalised.isChecked()
        groups: dict[str, list[float]] = {}
        for e in entries:
            sf = e.curve.sf
            if norm:
                sf = sf / (np.nanmax(sf) or 1.0)
            groups.setdefault(e.curve.stain, []).extend(float(v) for v in sf)
        names = sorted(groups)
        if names:
            ax.boxplot([groups[n] for n in names])
            ax.set_xticks(range(1, len(names) + 1), [f"{n}\n(n={len(groups[n])})" for n in names])
        for n in names:
            self.plotted[n] = {"sf": np.asarray(groups[n])}
        ax.set_ylabel("SF / channel max" if norm else "SF")
        ax.set_title("SF per stain over all assessed planes", fontsize=10)
        ax.grid(alpha=0.3, axis="y")

    # ------------------------------------------------------------ z link
    def _z_entry(self) -> AssessedChannel | None:
        for e in self.entries():
            if e.z_axis is not None and e.layer_name in self.plotted:
                return e
        return None

    def _update_cursor(self, *_: Any) -> None:
        e = self._z_entry()
        if e is None or not self.cursors or e.z_axis is None:
            return
        axis = self.viewer.dims.ndim + e.z_axis
        if axis < 0:
            return
        zi = e.z_index_of_world(float(self.viewer.dims.point[axis]))
        x = self.plotted[e.layer_name]["x"][zi]
        for c in self.cursors:
            c.set_xdata([x, x])
        self.cursor_z_index = zi
        self.canvas.draw_idle()

    def go_to(self, layer_name: str, z_index: int) -> None:
        """Move the viewer to slice ``z_index`` of an assessed layer."""
        match = [e for e in self.entries() if e.layer_name == layer_name]
        if not match:
            raise FocusQAError(f"layer_name: {layer_name!r} has not been assessed")
        e = match[0]
        if not 0 <= z_index < e.curve.n_slices:
            raise FocusQAError(f"z_index: {z_index} out of range 0..{e.curve.n_slices - 1}")
        self.last_clicked = (layer_name, int(z_index))
        if e.z_axis is None:
            return
        axis = self.viewer.dims.ndim + e.z_axis
        self.viewer.dims.set_point(axis, e.z_world(z_index))

    def nearest_point(self, ax_index: int, px: float, py: float) -> tuple[str, int, float] | None:
        """Nearest plotted point (layer, z index, distance in display px) on one axes."""
        best = None
        ax = self.axes[ax_index]
        for (ai, name), ln in self.lines.items():
            if ai != ax_index:
                continue
            xy = np.column_stack([ln.get_xdata(), ln.get_ydata()]).astype(float)
            disp = ax.transData.transform(xy)
            d = np.hypot(disp[:, 0] - px, disp[:, 1] - py)
            if not np.isfinite(d).any():
                continue
            i = int(np.nanargmin(d))
            if best is None or d[i] < best[2]:
                best = (name, i, float(d[i]))
        return best

    def _on_click(self, event: Any) -> None:
        if self.mode.currentText() != MODE_CURVES or event.inaxes is None:
            return
        if event.inaxes not in self.axes:
            return
        hit = self.nearest_point(self.axes.index(event.inaxes), event.x, event.y)
        if hit is not None and hit[2] <= CLICK_TOLERANCE_PX:
            self.go_to(hit[0], hit[1])

    # ------------------------------------------------------------ export
    def export_figure(self, path: str | Path) -> Path:
        """Save the current figure as PNG or SVG."""
        p = Path(path)
        if p.suffix.lower() not in (".png", ".svg"):
            raise FocusQAError(f"path: expected a .png or .svg file name, got {p.name!r}")
        p.parent.mkdir(parents=True, exist_ok=True)
        self.figure.savefig(p, dpi=150)
        return p

    def data_records(self) -> list[dict[str, Any]]:
        """One row per channel and slice: z, SF (raw and normalised), expected level."""
        rows = []
        for e in self.entries():
            sf = e.curve.sf
            nsf = normalise(sf)
            lv = e.curve.expected_level
            zum = e.curve.z_um
            for i in range(e.curve.n_slices):
                rows.append(
                    {
                        "layer": e.layer_name,
                        "stain": e.curve.stain,
                        "z_index": i,
                        "z_um": None if zum is None else zum[i],
                        "sf": float(sf[i]),
                        "sf_normalised": round(float(nsf[i]), 6),
                        "expected_level": None if lv is None else round(float(lv[i]), 6),
                        "best_sf": i == e.curve.best_z_index,
                        "best_model": i == e.curve.best_z_index_model,
                        "model": e.model_id,
                    }
                )
        return rows

    def export_csv(self, path: str | Path) -> Path:
        """Save the plotted data as CSV."""
        from napari_focusqa.io.writer import write_csv

        write_csv(self.data_records(), path)
        return Path(path)

    def _save_figure_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save figure", "focus_curves.png",
                                              "PNG (*.png);;SVG (*.svg)")
        if path:
            self.export_figure(path)

    def _save_csv_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save curve data", "focus_curves.csv",
                                              "CSV (*.csv)")
        if path:
            self.export_csv(path)
