"""The autofocus dock widget focuses a simulated microscope (real UniMMCore devices,
real napari viewer under Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_shared

pytestmark = pytest.mark.gui


def _widget(make_napari_viewer):
    import tifffile

    from napari_focusqa.widgets.autofocus import LIVE_LAYER, AutofocusWidget

    path = require_shared("deconwolf_dapi_widefield_zstack.tif")
    viewer = make_napari_viewer(show=True)
    viewer.add_image(tifffile.imread(path), name="dapi", scale=(0.3, 0.13, 0.13))
    _, w = viewer.window.add_plugin_dock_widget("napari-focusqa", "Autofocus")
    assert isinstance(w, AutofocusWidget)
    return viewer, w, LIVE_LAYER


def test_widget_calibrates_and_autofocuses_simulated_stack(make_napari_viewer, qtbot, tmp_path):
    from _napari_shots import shot
    from qtpy.QtCore import Qt

    viewer, w, live = _widget(make_napari_viewer)
    assert w.layer.value == "dapi"
    assert not w.autofocus_btn.enabled  # not connected yet
    m = w.connect_simulated(focus_index=19, offset_um=2.0, seed=4)
    assert m is not None and m.core.getFocusDevice() == "Z"
    assert w.form.z_min.value == pytest.approx(2.0)
    assert w.form.z_max.value == pytest.approx(13.7)

    qtbot.mouseClick(w.calibrate_btn.native, Qt.MouseButton.LeftButton)
    assert w.running and not w.autofocus_btn.enabled
    qtbot.waitUntil(lambda: not w.running, timeout=180_000)
    assert w.calibration is not None, w.last_error
    dof = w.calibration.dof_um

    truth = 2.0 + 19 * 0.3
    start = truth + 3.0
    assert w.move_to(start)
    assert m.core.getPosition() == pytest.approx(start)
    w.form.method.value = "fewshot"
    qtbot.mouseClick(w.autofocus_btn.native, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.running, timeout=180_000)
    run = w.last_run
    assert run is not None and run.ok, w.last_error
    z_end = m.core.getPosition()
    assert abs(z_end - truth) <= dof
    assert float(w.z_label.value.split()[2]) == pytest.approx(z_end, abs=1e-3)
    # the plot shows one point per acquisition and the chosen z
    pts = w.ax.lines[0]
    np.testing.assert_allclose(pts.get_xdata(), run.z_values)
    assert len(pts.get_xdata()) == run.images_used >= 3
    assert any(np.allclose(ln.get_xdata(), run.chosen_z_um) for ln in w.ax.lines[1:])
    # the last acquired image is in the live layer
    assert live in viewer.layers and viewer.layers[live].data.shape == (201, 101)
    viewer.layers["dapi"].visible = False
    viewer.reset_view()
    shot(viewer, "napari_autofocus.png", tmp_path)


def test_widget_cancel_and_refusal(make_napari_viewer, qtbot):
    from napari_focusqa.widgets.autofocus import AutofocusWidget

    viewer = make_napari_viewer()
    # opened through the FocusQA reader: z step and optics come from the file
    viewer.open(str(require_shared("deconwolf_dapi_widefield_zstack.tif")),
                plugin="napari-focusqa")
    w = AutofocusWidget(viewer)
    m = w.connect_simulated(focus_index=19, seed=1)
    assert m.z_step_um == pytest.approx(0.3)
    assert m.optics is not None and m.optics.dof_um == pytest.approx(0.468, abs=0.001)
    start = m.get_z()
    # a move outside the z limits is refused with a message, nothing moves
    w.form.z_max.value = start + 1.0
    assert not w.move_to(start + 3.0)
    assert "outside the z limits" in w.last_error
    assert m.core.getPosition() == pytest.approx(start)
    # click Cancel once the first image is shown: the stage goes back to the start
    w.form.z_max.value = m.travel[1]
    w.form.method.value = "classic"
    m.camera_device.realtime = True  # each snap takes its exposure time
    m.core.setExposure(500.0)
    w.autofocus_btn.native.click()
    assert w.cancel_btn.enabled and not w.calibrate_btn.enabled
    assert w.autofocus() is None and "Busy" in w.last_error  # no second run
    qtbot.waitUntil(lambda: len(w._live) >= 1, timeout=180_000)
    w.cancel_btn.native.click()
    qtbot.waitUntil(lambda: not w.running, timeout=180_000)
    assert w.last_run.status == "cancelled"
    assert 1 <= w.last_run.images_used < 9
    assert m.core.getPosition() == pytest.approx(start)
    assert not w.cancel_btn.enabled and w.autofocus_btn.enabled
    # fewshot without calibration: clear message, no worker
    w.form.method.value = "fewshot"
    assert w.autofocus() is None and "Calibrate first" in w.last_error


def test_widget_twoshot_needs_no_calibration_but_the_optics(make_napari_viewer, qtbot):
    """twoshot from the widget: with the file's optics (reader metadata) it runs with no
    calibration (2 images + the final one); on a layer without optics it names the
    missing field before anything moves, and the form's optics fields supply them."""
    import tifffile

    from napari_focusqa.widgets.autofocus import METHODS, AutofocusWidget

    assert "twoshot" in METHODS
    path = require_shared("deconwolf_dapi_widefield_zstack.tif")
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-focusqa")
    w = AutofocusWidget(viewer)
    for k in ("na", "wavelength_nm", "immersion_n", "pixel_size_um"):
        getattr(w.form, k).value = 0.0  # persisted values of an earlier test: "from file"
    m = w.connect_simulated(focus_index=19, offset_um=0.7, seed=4)
    truth = m.true_focus_um
    assert w.move_to(truth + 0.6)
    w.form.method.value = "twoshot"
    assert w.calibration is None
    w.autofocus_btn.native.click()
    qtbot.waitUntil(lambda: not w.running, timeout=180_000)
    run = w.last_run
    assert run is not None and run.ok, w.last_error
    assert run.method_used == "twoshot" and run.images_used == 3
    assert run.info["twoshot"]["optics"]["na"] == 1.45  # from the file's Info
    assert abs(m.core.getPosition() - truth) <= run.dof_um == pytest.approx(0.468, abs=1e-3)
    assert len(w.ax.lines[0].get_xdata()) == 3

    # the same pixels without metadata: no NA anywhere -> named, nothing moves
    viewer.add_image(tifffile.imread(path), name="bare")
    w.layer.reset_choices()
    m2 = w.connect_simulated("bare", focus_index=19, offset_um=0.7, seed=4)
    start = m2.get_z()
    w.form.method.value = "twoshot"
    assert w.autofocus() is None
    assert w.last_error.startswith("na:") and "optics fields" in w.last_error
    assert m2.core.getPosition() == pytest.approx(start) and not w.running
    # typed in the form: NA 1.45 oil, 461 nm, 0.13 µm pixels -> the same run as the file's
    w.form.na.value, w.form.wavelength_nm.value = 1.45, 461.0
    w.form.immersion_n.value, w.form.pixel_size_um.value = 1.515, 0.13
    assert w.move_to(m2.true_focus_um + 0.6)
    w.autofocus_btn.native.click()
    qtbot.waitUntil(lambda: not w.running, timeout=180_000)
    run2 = w.last_run
    assert run2 is not None and run2.ok, w.last_error
    o1, o2 = run.info["twoshot"]["optics"], run2.info["twoshot"]["optics"]
    for k in ("na", "wavelength_nm", "immersion_n", "pixel_size_um", "dof_um"):
        assert o2[k] == pytest.approx(o1[k], rel=1e-3), k
    assert o2["assumed"] == []
    assert abs(m2.core.getPosition() - m2.true_focus_um) <= run2.dof_um
    # singleshot without a calibration is refused up front, like fewshot
    w.form.method.value = "singleshot"
    assert w.autofocus() is None and "Calibrate first" in w.last_error
