"""Screenshots taken by the GUI tests (docs/images when FOCUSQA_SCREENSHOTS is set).

``FOCUSQA_SCREENSHOTS=docs/images pytest -m gui`` refreshes the pictures the README and
docs/napari.md show; otherwise they go to the test's tmp folder. Either way the test
checks that the picture is a real, non-blank rendering.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def shot(viewer, name: str, tmp_path: Path, size: tuple[int, int] = (1500, 950)) -> np.ndarray:
    from qtpy.QtWidgets import QApplication, QWidget

    win = viewer.window._qt_window
    win.resize(*size)
    for wdg in win.findChildren(QWidget):  # close pop-ups (e.g. the PyQt5 notice)
        if type(wdg).__name__ == "NapariQtNotification":
            wdg.close()
    QApplication.processEvents()
    out_dir = Path(os.environ.get("FOCUSQA_SCREENSHOTS") or tmp_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    img = viewer.screenshot(str(out_dir / name), canvas_only=False, flash=False)
    assert (out_dir / name).stat().st_size > 10_000
    rgb = np.asarray(img)[..., :3].astype(int)
    assert rgb.std() > 10, "blank screenshot"
    return rgb
