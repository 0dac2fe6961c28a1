"""The "Acquire" dock widget runs an MDA time-lapse with FocusQA autofocus and live QC on
the simulated microscope (real napari viewer under Xvfb, real UniMMCore devices)."""

from __future__ import annotations

import pytest
from conftest import require_shared

pytestmark = pytest.mark.gui
pytest.importorskip("napari")
pytest.importorskip("pymmcore_plus")


def _widget(make_napari_viewer, tmp_path, **values):
    import tifffile

    from napari_focusqa.widgets.acquire import AcquireWidget

    path = require_shared("deconwolf_dapi_widefield_zstack.tif")
    viewer = make_napari_viewer(show=True)
    layer = viewer.add_image(tifffile.imread(path), name="dapi", scale=(0.3, 0.13, 0.13))
    w = AcquireWidget(viewer)
    viewer.window.add_dock_widget(w, name="FocusQA acquire")
    w.form.stack_layer.value = layer
    w.form.microscope.value = "simulated (z-stack layer)"
    w.form.calibration.value = None
    w.form.table.value = tmp_path / "live.csv"
    w.form.qc_model.value = ""
    w.form.reacquire.value = False
    w.form.on_fault.value = "continue"
    for k, v in values.items():
        getattr(w.form, k).value = v
    return viewer, w


def test_widget_runs_a_time_lapse_with_live_qc(make_napari_viewer, qtbot, tmp_path):
    from napari_focusqa.acquire.qc import read_frames
    from napari_focusqa.widgets.acquire import BORDERS, LIVE

    viewer, w = _widget(make_napari_viewer, tmp_path, timepoints=5, interval_s=0.0,
                        positions=1, drift_um=0.5, autofocus="fewshot")
    assert w.start() is not None
    assert w.running and not w.start_button.enabled and w.stop_button.enabled
    qtbot.waitUntil(lambda: not w.running, timeout=120_000)
    res = w.result
    assert res is not None and res.finish == "completed", w.status.value
    assert len(w.rows) == len(res.frames) == 5
    assert all(r["verdict"] is not None for r in w.rows)
    assert all(abs(r["focus_error_um"]) <= 1.0 for r in w.rows)
    # the live frame and its patch borders are layers; the plot has one point per frame
    assert viewer.layers[LIVE].data.shape == (201, 101)
    from napari_focusqa.core.patches import make_grid

    assert len(viewer.layers[BORDERS].data) == make_grid((201, 101), 84).n_patches
    assert len(w.ax.lines[0].get_xdata()) == 5
    assert len(w.ax2.lines[0].get_ydata()) == 5
    assert w.ax2.lines[0].get_ydata()[-1] == pytest.approx(res.frames[-1]["z_correction_um"])
    assert len(read_frames(tmp_path / "live.csv")) == 5
    assert "completed" in w.status.value


def test_widget_stop_keeps_rows(make_napari_viewer, qtbot, tmp_path):
    from napari_focusqa.acquire.qc import read_frames

    viewer, w = _widget(make_napari_viewer, tmp_path, timepoints=60, interval_s=0.5,
                        positions=1, drift_um=0.0, autofocus="none")
    w.start()
    qtbot.waitUntil(lambda: len(w.rows) >= 1, timeout=180_000)
    w.stop_button.changed.emit(True)
    qtbot.waitUntil(lambda: not w.running, timeout=180_000)
    assert w.result.finish == "cancelled"
    n = len(w.result.frames)
    assert 1 <= n < 60
    assert len(read_frames(tmp_path / "live.csv")) == n


def test_widget_refuses_bad_input_with_one_line(make_napari_viewer, qtbot, tmp_path):
    viewer, w = _widget(make_napari_viewer, tmp_path, autofocus="fewshot")
    w.form.microscope.value = "CMMCorePlus.instance()"
    w.form.max_step_um.value = 0.0
    assert w.start() is None and not w.running
    assert w.status.value.startswith("error:") and "\n" not in w.status.value
