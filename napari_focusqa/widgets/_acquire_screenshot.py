"""Render the README/docs screenshot of the "Acquire" widget during a live run.

Usage (needs a display; on a headless machine use Xvfb)::

    xvfb-run -a -s "-screen 0 1920x1200x24" \\
        python -m napari_focusqa.widgets._acquire_screenshot docs/images/napari_acquire.png \\
        --stack ../shared/data/deconwolf_dapi_widefield_zstack.tif

A real z-stack is opened as a layer, the simulated microscope replays it with 0.3 µm of
sample drift per time point, fewshot autofocus runs at every time point (calibrated on
a separate simulated run) and live QC draws the patch borders on each frame.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="FocusQA Acquire screenshot")
    ap.add_argument("out", type=Path)
    ap.add_argument("--stack", type=Path, required=True, help="z-stack file (ImageJ TIFF)")
    ap.add_argument("--timepoints", type=int, default=12)
    ap.add_argument("--size", default="1800x1080", help="window size WxH")
    args = ap.parse_args(argv)

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_focusqa.io import read_image
    from napari_focusqa.widgets._screenshot import shoot
    from napari_focusqa.widgets.acquire import AcquireWidget

    img = read_image(args.stack)
    viewer = napari.Viewer(show=True, title="FocusQA")
    w, h = (int(v) for v in args.size.lower().split("x"))
    viewer.window._qt_window.resize(w, h)
    px = img.pixel_size_um or 1.0
    viewer.add_image(img.zcyx(0)[:, 0], name=args.stack.stem,
                     scale=(img.z_step_um or 1.0, px, px), visible=False)
    aw = AcquireWidget(viewer)
    viewer.window.add_dock_widget(aw, name="Acquire", area="right")
    f = aw.form
    f.microscope.value = "simulated (z-stack layer)"
    f.stack_layer.value = viewer.layers[args.stack.stem]
    f.timepoints.value, f.interval_s.value, f.positions.value = args.timepoints, 0.3, 1
    f.drift_um.value, f.autofocus.value, f.reacquire.value = 0.3, "fewshot", False
    f.calibration.value, f.table.value, f.qc_model.value = None, None, ""
    app = QApplication.instance()
    assert app is not None
    t0 = time.perf_counter()
    if aw.start() is None:
        print(f"error: {aw.status.value}", file=sys.stderr)
        return 1
    while aw.running:
        app.processEvents()
        time.sleep(0.02)
    shoot(viewer, args.out)
    print(f"{aw.status.value}; {time.perf_counter() - t0:.1f} s -> {args.out}")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
