"""Render the README/docs screenshot: embedded sample, Assess focus, curves.

Usage (needs a display; on a headless machine use Xvfb)::

    xvfb-run -a -s "-screen 0 1920x1200x24" \\
        python -m napari_focusqa.widgets._screenshot docs/images/napari_assess.png \\
        [--model ID|CARD] [--z INDEX]

The model defaults to the installed default levels model, else the tiny analytic test
model from :mod:`napari_focusqa.testing` (named in the printed summary).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _close_toasts(viewer: object) -> None:
    """Close notification pop-ups (e.g. the PyQt5 deprecation notice) before the shot."""
    from qtpy.QtWidgets import QWidget

    win = viewer.window._qt_window  # type: ignore[attr-defined]
    for wdg in win.findChildren(QWidget):
        if type(wdg).__name__ == "NapariQtNotification":
            wdg.close()


def shoot(viewer: Any, out: Path) -> None:
    """Reset the view, close pop-ups, let Qt settle, and save the window to ``out``."""
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    viewer.reset_view()
    _close_toasts(viewer)
    for _ in range(20):
        if app is not None:
            app.processEvents()
        time.sleep(0.02)
    out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(out), canvas_only=False, flash=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="FocusQA napari screenshot")
    ap.add_argument("out", type=Path)
    ap.add_argument("--model", default=None)
    ap.add_argument("--z", type=int, default=None, help="slice to show (default: 5 slices below the best)")
    ap.add_argument("--size", default="1800x1080", help="window size WxH")
    args = ap.parse_args(argv)

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_focusqa.core.model import default_model_id
    from napari_focusqa.widgets.assess import AssessWidget
    from napari_focusqa.widgets.curves import CurvesWidget

    model = args.model or default_model_id()
    if model is None:
        from napari_focusqa.testing import build_sharpness_model

        model = str(build_sharpness_model(tempfile.mkdtemp(prefix="fqa_shot_")))
    viewer = napari.Viewer(show=True, title="FocusQA")
    w, h = (int(v) for v in args.size.lower().split("x"))
    viewer.window._qt_window.resize(w, h)
    viewer.open_sample("napari-focusqa", "multistain_zstack")
    aw, cw = AssessWidget(viewer), CurvesWidget(viewer)
    viewer.window.add_dock_widget(aw, name="Assess focus", area="right")
    viewer.window.add_dock_widget(cw, name="Focus curves", area="right")
    aw.set_model(model)
    app = QApplication.instance()
    assert app is not None
    t0 = time.perf_counter()
    aw.run()
    while aw.running:
        app.processEvents()
        time.sleep(0.02)
    if aw.last_error:
        print(f"error: {aw.last_error}", file=sys.stderr)
        return 1
    best = aw.results[0].best_z_index
    z = max(0, best - 5) if args.z is None else args.z
    aw.results[0].go_to(viewer, z)
    aw.summary.native.selectRow(z)
    shoot(viewer, args.out)
    print(f"model {aw.results[0].model_id}; assess {time.perf_counter() - t0:.1f} s; "
          f"best z {[e.best_z_index for e in aw.results]}; shown z {z}; -> {args.out}")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
