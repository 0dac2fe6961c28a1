"""The "Focus curves" dock widget: SF vs z per channel, model level vs z, box plots.

Reads the results stored on the image layers by "Assess focus"
(``metadata["focusqa_result"]``; no focus computation here) and draws them with the
:mod:`napari_focusqa.plots` functions. Clicking near a point moves the viewer to that
plane; moving the z slider moves a cursor line. The figure exports as PNG/SVG and the
plotted data as CSV. Mode and normalisation are a persisted magicgui form.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from magicgui import magicgui
from magicgui.widgets import Label, PushButton
from qtpy.QtWidgets import QHBoxLayout, QVBoxLayout, QWidget

from napari_focusqa.core.errors import FocusQAError
from napari_focusqa.plots import (
    CurveSeries,
    draw_level_curves,
    draw_sf_curves,
    draw_stain_boxplot,
    normalise,
)
from napari_focusqa.widgets._base import FocusDock
from napari_focusqa.widgets._plot import PlotCanvas
from napari_focusqa.widgets._results import AssessedChannel, assessed_channels

MODE_CURVES = "SF vs z"
MODE_BOX = "SF per stain (box plot)"
CLICK_TOLERANCE_PX = 20.0


def _view(mode: str = MODE_CURVES, normalised: bool = True) -> None:
    """Plot settings (persisted)."""


# real types for magicgui (this module postpones annotations)
_view.__annotations__ = {"mode": str, "normalised": bool, "return": None}


def series_of(e: AssessedChannel) -> CurveSeries:
    return CurveSeries(f"{e.layer_name} ({e.stain})", e.x(), e.sf, e.expected_level,
                       e.best_z_index, e.best_z_index_model)


class CurvesWidget(FocusDock):
    """Dock widget "Focus curves" (see module docstring)."""

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(napari_viewer, parent)
        self.plotted: dict[str, dict[str, Any]] = {}
        self.lines: dict[tuple[int, str], Any] = {}
        self.cursors: list[Any] = []
        self.axes: list[Any] = []
        self.cursor_z_index: int | None = None
        self.last_clicked: tuple[str, int] | None = None
        self.form = magicgui(_view, persist=True, auto_call=True,
                             mode={"choices": [MODE_CURVES, MODE_BOX]})
        self.canvas = PlotCanvas(5, 5, 320)
        self.canvas.mpl_connect("button_press_event", self._on_click)
        self.hint = Label(value="Run “Assess focus”; click a point to go to that plane.")
        self.fig_btn = PushButton(text="Save figure…")
        self.csv_btn = PushButton(text="Save data (CSV)…")
        lay = QVBoxLayout(self)
        lay.addWidget(self.form.native)
        lay.addWidget(self.canvas, 1)
        lay.addWidget(self.hint.native)
        row = QHBoxLayout()
        row.addWidget(self.fig_btn.native)
        row.addWidget(self.csv_btn.native)
        lay.addLayout(row)
        self.fig_btn.changed.connect(self._save_figure_dialog)
        self.csv_btn.changed.connect(self._save_csv_dialog)
        self.form.called.connect(self.refresh)

        self._connect(self.viewer.layers.events.inserted, self._watch)
        self._connect(self.viewer.layers.events.removed, self.refresh)
        self._connect(self.viewer.dims.events.current_step, self._update_cursor)
        for ly in self.viewer.layers:
            self._connect(ly.events.metadata, self.refresh)
        self.refresh()

    @property
    def figure(self) -> Any:
        return self.canvas.figure

    def _watch(self, event: Any) -> None:
        self._connect(event.value.events.metadata, self.refresh)
        self.refresh()

    # ------------------------------------------------------------ drawing
    def entries(self) -> list[AssessedChannel]:
        return assessed_channels(self.viewer)

    def refresh(self, *_: Any) -> None:
        """Redraw from the results on the layers."""
        self.plotted.clear()
        self.lines.clear()
        self.cursors = []
        entries = self.entries()
        self.hint.visible = not entries
        norm = bool(self.form.normalised.value)
        if self.form.mode.value == MODE_BOX:
            (ax,) = self.axes = self.canvas.fresh_axes(1)
            groups: dict[str, list[float]] = {}
            for e in entries:
                sf = e.sf / (np.nanmax(e.sf) or 1.0) if norm else e.sf
                groups.setdefault(e.stain, []).extend(float(v) for v in sf)
            for n in draw_stain_boxplot(ax, groups, "SF / channel max" if norm else "SF"):
                self.plotted[n] = {"sf": np.asarray(groups[n])}
            ax.set_title("SF per stain over all assessed planes", fontsize=10)
        else:
            self._draw_curves(entries, norm)
        self.canvas.draw_idle()

    def _draw_curves(self, entries: list[AssessedChannel], norm: bool) -> None:
        series = [series_of(e) for e in entries]
        have_model = any(s.expected_level is not None for s in series)
        self.axes = self.canvas.fresh_axes(2 if have_model else 1, sharex=True)
        xl = "z (µm)" if entries and all(e.z_step_um for e in entries) else "z (plane index)"
        for e, s, ln in zip(entries, series, draw_sf_curves(self.axes[0], series,
                                                           normalised=norm, xlabel=xl)):
            self.lines[(0, e.layer_name)] = ln
            self.plotted[e.layer_name] = {"x": s.x, "sf": s.sf, "y": ln.get_ydata(),
                                          "expected_level": s.expected_level,
                                          "best_z_index": s.best_sf}
        if have_model:
            ids = ", ".join(sorted({str(e.model_id) for e in entries if e.model_id}))
            for i, ln in draw_level_curves(self.axes[1], series, model=ids, xlabel=xl).items():
                self.lines[(1, entries[i].layer_name)] = ln
        for ax in self.axes:
            self.cursors.append(ax.axvline(np.nan, color="0.3", lw=1, ls=":"))
        self._update_cursor()

    # ------------------------------------------------------------ z link
    def _z_entry(self) -> AssessedChannel | None:
        for e in self.entries():
            if e.z_axis is not None and e.layer_name in self.plotted:
                return e
        return None

    def _update_cursor(self, *_: Any) -> None:
        e = self._z_entry()
        if e is None or not self.cursors:
            return
        zi = e.current_z(self.viewer)
        if zi is None:
            return
        x = self.plotted[e.layer_name]["x"][zi]
        for c in self.cursors:
            c.set_xdata([x, x])
        self.cursor_z_index = zi
        self.canvas.draw_idle()

    def go_to(self, layer_name: str, z_index: int) -> None:
        """Move the viewer to plane ``z_index`` of an assessed layer."""
        match = [e for e in self.entries() if e.layer_name == layer_name]
        if not match:
            raise FocusQAError(f"layer_name: {layer_name!r} has not been assessed")
        e = match[0]
        if not 0 <= z_index < e.n_slices:
            raise FocusQAError(f"z_index: {z_index} out of range 0..{e.n_slices - 1}")
        self.last_clicked = (layer_name, int(z_index))
        e.go_to(self.viewer, z_index)

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
        if self.form.mode.value != MODE_CURVES or event.inaxes not in self.axes:
            return
        hit = self.nearest_point(self.axes.index(event.inaxes), event.x, event.y)
        if hit is not None and hit[2] <= CLICK_TOLERANCE_PX:
            self.go_to(hit[0], hit[1])

    # ------------------------------------------------------------ export
    def export_figure(self, path: str | Path) -> Path:
        """Save the current figure as PNG or SVG."""
        return self.canvas.save(path)

    def data_records(self) -> list[dict[str, Any]]:
        """One row per channel and plane: z, SF (raw and normalised), expected level."""
        rows = []
        for e in self.entries():
            sf, nsf, lv, zum = e.sf, normalise(e.sf), e.expected_level, e.z_um
            for i in range(e.n_slices):
                rows.append({
                    "layer": e.layer_name,
                    "stain": e.stain,
                    "z_index": i,
                    "z_um": None if zum is None else zum[i],
                    "sf": float(sf[i]),
                    "sf_normalised": round(float(nsf[i]), 6),
                    "expected_level": None if lv is None else round(float(lv[i]), 6),
                    "best_sf": i == e.best_z_index,
                    "best_model": i == e.best_z_index_model,
                    "model": e.model_id,
                })
        return rows

    def export_csv(self, path: str | Path) -> Path:
        """Save the plotted data as CSV."""
        from napari_focusqa.io.writer import write_csv

        write_csv(self.data_records(), path)
        return Path(path)

    def _save_figure_dialog(self, *_args: Any) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self, "Save figure", "focus_curves.png",
                                              "PNG (*.png);;SVG (*.svg)")
        if path:
            self.export_figure(path)

    def _save_csv_dialog(self, *_args: Any) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self, "Save curve data", "focus_curves.csv",
                                              "CSV (*.csv)")
        if path:
            self.export_csv(path)
