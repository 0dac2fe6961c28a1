"""GUI test of the "Batch QC" widget: real viewer under Xvfb, real batch, real ONNX model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gui

pytest.importorskip("qtpy")
pytest.importorskip("napari")

from qtpy.QtCore import Qt  # noqa: E402

from napari_focusqa import batch  # noqa: E402


def _folder(tmp_path: Path) -> Path:
    import tifffile
    from scipy import ndimage

    d = tmp_path / "plate"
    d.mkdir()
    rng = np.random.default_rng(5)
    sharp = np.zeros((180, 200), np.float32)
    sharp[rng.integers(0, 180, 80), rng.integers(0, 200, 80)] = 5e4
    sharp = ndimage.gaussian_filter(sharp, 1.5) + rng.normal(100, 2, sharp.shape)
    for i, s in enumerate((0, 0, 4, 8)):
        img = ndimage.gaussian_filter(sharp, s) if s else sharp
        tifffile.imwrite(d / f"P_A{i + 1:02d}_s1_w1.tif", np.clip(img, 0, 65535).astype(np.uint16))
    (d / "P_B01_s1_w1.tif").write_bytes(b"II*\x00broken")
    return d


def test_batch_widget_runs_folder_table_plate_and_histogram(make_napari_viewer, qtbot, tmp_path,
                                                            sharpness_model) -> None:
    from _napari_shots import shot

    from napari_focusqa.widgets.batch_qc import TABLE_COLUMNS, BatchQCWidget

    viewer = make_napari_viewer(show=True)
    _, w = viewer.window.add_plugin_dock_widget("napari-focusqa", "Batch QC")
    assert isinstance(w, BatchQCWidget)
    folder = _folder(tmp_path)
    w.form.folder.value = folder
    w.set_model(sharpness_model)
    qtbot.mouseClick(w.run_btn.native, Qt.MouseButton.LeftButton)
    assert w.running
    qtbot.waitUntil(lambda: not w.running, timeout=180_000)
    assert w.last_error is None, w.last_error

    rows = batch.read_results(folder / "focusqa_batch.csv")
    t = w.table.native
    assert len(rows) == 5 and t.rowCount() == 5
    col = {c: i for i, c in enumerate(TABLE_COLUMNS)}
    shown = {t.item(i, 0).text(): i for i in range(t.rowCount())}
    assert set(shown) == {Path(r["file"]).name for r in rows}
    assert "ImageError" in t.item(shown["P_B01_s1_w1.tif"], col["error"]).text()
    for r in rows:
        if r["error"] is None:
            i = shown[Path(r["file"]).name]
            assert t.item(i, col["level"]).text() == str(r["predicted_level"])
            assert t.item(i, col["well"]).text() == r["well"]
            assert t.item(i, col["verdict"]).text() == r["verdict"]
    # histogram bars = planes per level in the output file
    expected: dict[int, int] = {}
    for r in rows:
        if r["predicted_level"] is not None:
            expected[r["predicted_level"]] = expected.get(r["predicted_level"], 0) + 1
    assert w.level_counts() == expected
    bars = w.hist.figure.axes[0].patches
    assert [int(b.get_height()) for b in bars] == [expected.get(i, 0) for i in range(len(bars))]
    assert max(expected) > min(expected)  # blurred files land on higher levels
    assert w.summary.files_failed == 1 and "1 failed" in w.status.value
    assert w.progress_bar.value == 5
    # plate view: one cell per well, the well's level (batch.plate_grid); B01 failed -> NaN
    prow, pcol, values = w.plate
    assert prow[:2] == ["A", "B"] and pcol[:4] == [1, 2, 3, 4]
    for r in rows:
        if r["error"] is None:
            i, j = ord(r["well"][0]) - 65, int(r["well"][1:]) - 1
            assert values[i, j] == pytest.approx(r["predicted_level"])
    assert np.isnan(values[1, 0])
    # a real click on well A04 (the most blurred file) opens it with its overlay
    ax = w.plate_canvas.figure.axes[0]
    w.plate_canvas.draw()
    px, py = ax.transData.transform((3, 0))
    from qtpy.QtCore import QPoint

    ratio = w.plate_canvas.device_pixel_ratio or 1.0
    pos = QPoint(int(round(px / ratio)), int(round(w.plate_canvas.height() - py / ratio)))
    qtbot.mouseClick(w.plate_canvas, Qt.MouseButton.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: not w.running and "P_A04_s1_w1 patches" in viewer.layers,
                    timeout=60_000)
    assert w.opened[-1].endswith("P_A04_s1_w1.tif")
    img = viewer.layers["P_A04_s1_w1"]
    stored = img.metadata["focusqa_result"]["records"][0]
    a04 = next(r for r in rows if r["well"] == "A04")
    assert stored["predicted_level"] == a04["predicted_level"]
    shot(viewer, "napari_batch_plate.png", tmp_path)


def test_batch_widget_refuses_missing_folder(make_napari_viewer, qtbot, tmp_path) -> None:
    from napari_focusqa.widgets.batch_qc import BatchQCWidget

    w = BatchQCWidget(make_napari_viewer())
    w.form.folder.value = tmp_path / "nope"
    assert w.run() is None and not w.running
    assert "Folder" in w.last_error and "nope" in w.last_error
    (tmp_path / "empty").mkdir()
    w.form.folder.value = tmp_path / "empty"
    assert w.run() is None and "no .tif" in w.last_error
