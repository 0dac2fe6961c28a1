"""The one matplotlib canvas of the FocusQA docks (figures drawn by :mod:`plots`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

from napari_focusqa.core.errors import FocusQAError


class PlotCanvas(FigureCanvasQTAgg):
    """A Qt canvas with its own ``Figure``; ``save`` writes PNG or SVG."""

    def __init__(self, width: float = 5.0, height: float = 3.0, min_height: int = 200) -> None:
        self.figure = Figure(figsize=(width, height), layout="constrained")
        super().__init__(self.figure)
        self.setMinimumHeight(min_height)

    def fresh_axes(self, nrows: int = 1, **kwargs: Any) -> list[Any]:
        """Clear the figure and return ``nrows`` stacked axes."""
        self.figure.clear()
        axes = self.figure.subplots(nrows, 1, squeeze=False, **kwargs)[:, 0]
        return list(axes)

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        if p.suffix.lower() not in (".png", ".svg"):
            raise FocusQAError(f"path: expected a .png or .svg file name, got {p.name!r}")
        p.parent.mkdir(parents=True, exist_ok=True)
        self.figure.savefig(p, dpi=150)
        return p
