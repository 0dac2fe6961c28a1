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


def test_batch_widget_runs_folder_table_and_histogram(make_napari_viewer, qtbot, tmp_path,
                                                       sharpness_model) -> None:
    from napari_focusqa.widgets.batch_qc import BatchQCWidget

    viewer = make_napari_viewer()
    w = BatchQCWidget(viewer)
    viewer.window.add_dock_widget(w, name="Batch QC", area="right")
    folder = _folder(tmp_path)
    w.folder_edit.setText(str(folder))
    w.model_combo.setEditText(str(sharpness_model))
    qtbot.mouseClick(w.run_btn, Qt.MouseButton.LeftButton)
    assert w.running
    qtbot.waitUntil(lambda: not w.running, timeout=60_000)
    assert w.last_error is None, w.last_error

    rows = batch.read_results(folder / "focusqa_batch.csv")
    assert len(rows) == 5 and w.table.rowCount() == 5
    shown = {w.table.item(i, 0).text(): i for i in range(w.table.rowCount())}
    assert set(shown) == {Path(r["file"]).name for r in rows}
    err_row = shown["P_B01_s1_w1.tif"]
    assert "ImageError" in w.table.item(err_row, 9).text()
    for r in rows:
        if r["error"] is None:
            i = shown[Path(r["file"]).name]
            assert w.table.item(i, 5).text() == str(r["predicted_level"])
            assert w.table.item(i, 1).text() == r["well"]
    # histogram bars = planes per level in the output file
    expected = {}
    for r in rows:
        if r["predicted_level"] is not None:
            expected[r["predicted_level"]] = expected.get(r["predicted_level"], 0) + 1
    assert w.level_counts() == expected
    bars = w.figure.axes[0].patches
    assert [int(b.get_height()) for b in bars] == [expected.get(i, 0) for i in range(len(bars))]
    assert max(expected) > min(expected)  # blurred files land on higher levels
    assert w.summary.files_failed == 1 and "1 failed" in w.status.text()
    assert w.progress_bar.value() == 5


def test_batch_widget_refuses_missing_folder(make_napari_viewer, qtbot, tmp_path) -> None:
    from napari_focusqa.widgets.batch_qc import BatchQCWidget

    w = BatchQCWidget(make_napari_viewer())
    w.folder_edit.setText(str(tmp_path / "nope"))
    assert w.run() is None and not w.running
    assert "Folder" in w.last_error and "nope" in w.last_error
    (tmp_path / "empty").mkdir()
    w.folder_edit.setText(str(tmp_path / "empty"))
    assert w.run() is None and "no .tif" in w.last_error
