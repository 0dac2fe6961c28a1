"""Colour bar for the patch borders: hue = defocus level, lightness = certainty."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import QGridLayout, QLabel, QWidget

from napari_focusqa.core.colors import EMPTY_RGB, level_colors_uint8


def legend_image(num_classes: int = 11, cert_steps: int = 5, cell: int = 16) -> np.ndarray:
    """RGB uint8 image: columns = levels 0..K-1, rows = certainty 1 (top) .. 0 (bottom)."""
    if num_classes < 2:
        raise ValueError(f"num_classes: need at least 2 levels, got {num_classes}")
    if cert_steps < 2:
        raise ValueError(f"cert_steps: need at least 2 steps, got {cert_steps}")
    lv, ce = np.meshgrid(np.arange(num_classes), np.linspace(1.0, 0.0, cert_steps))
    rgb = level_colors_uint8(lv, ce, num_classes)  # (steps, K, 3)
    return np.ascontiguousarray(np.repeat(np.repeat(rgb, cell, axis=0), cell, axis=1))


class LegendWidget(QWidget):
    """Level x certainty colour grid with axis captions."""

    def __init__(self, num_classes: int = 11, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image = QLabel()
        self._left = QLabel()
        self._right = QLabel()
        self._top = QLabel("certainty 1 (top) → 0 (bottom)")
        self._top.setStyleSheet("font-size: 10px")
        lay = QGridLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self._top, 0, 0, 1, 3)
        lay.addWidget(self._image, 1, 0, 1, 3)
        lay.addWidget(self._left, 2, 0, Qt.AlignmentFlag.AlignLeft)
        lay.addWidget(self._right, 2, 2, Qt.AlignmentFlag.AlignRight)
        self.num_classes = 0
        self.set_num_classes(num_classes)

    def set_num_classes(self, num_classes: int) -> None:
        """Redraw for a model with ``num_classes`` levels."""
        if num_classes == self.num_classes:
            return
        self.num_classes = int(num_classes)
        cell = max(8, min(20, 220 // self.num_classes))
        arr = legend_image(self.num_classes, 5, cell)
        h, w, _ = arr.shape
        self._array = arr  # keep the buffer alive for QImage
        qimg = QImage(arr.tobytes(), w, h, 3 * w, QImage.Format.Format_RGB888)
        self._image.setPixmap(QPixmap.fromImage(qimg.copy()))
        grey = "#" + "".join(f"{int(round(255 * v)):02x}" for v in EMPTY_RGB)
        self._top.setText(f"certainty 1 (top) → 0 (bottom);  <span style='color:{grey}'>"
                          "■ grey: no structure</span>")
        self._left.setText("level 0: in focus")
        self._right.setText(f"level {self.num_classes - 1}: most defocused")
