"""GUI test of "Focus outputs": real viewer under Xvfb, real assessment, real model."""

from __future__ import annotations

import numpy as np
import pytest
from _napari_shots import shot

pytestmark = pytest.mark.gui

pytest.importorskip("qtpy")
pytest.importorskip("napari")

from qtpy.QtCore import Qt  # noqa: E402

from napari_focusqa.core.zstack import assess_stack  # noqa: E402


def _click(qtbot, button):
    qtbot.mouseClick(button.native, Qt.MouseButton.LeftButton)


def test_outputs_substack_composite_level_map_montage(make_napari_viewer, qtbot,
                                                      sharpness_model, tmp_path):
    from napari_focusqa.widgets.assess import AssessWidget
    from napari_focusqa.widgets.outputs import OutputsWidget

    viewer = make_napari_viewer(show=True)
    hoechst, phall = viewer.open_sample("napari-focusqa", "multistain_zstack")
    _, aw = viewer.window.add_plugin_dock_widget("napari-focusqa", "Assess focus")
    _, ow = viewer.window.add_plugin_dock_widget("napari-focusqa", "Focus outputs")
    assert isinstance(aw, AssessWidget) and isinstance(ow, OutputsWidget)
    # nothing assessed yet: a clear notification, no layer
    _click(qtbot, ow.substack_btn)
    assert "Assess focus first" in ow.last_error or "no assessed" in ow.last_error
    aw.set_model(sharpness_model)
    _click(qtbot, aw.assess_btn)
    qtbot.waitUntil(lambda: not aw.running, timeout=120_000)
    assert aw.last_error is None, aw.last_error
    ow.refresh()
    assert [ly.name for ly in ow.layers.value] == [hoechst.name, phall.name]
    best = [e.best_z_index for e in aw.results]
    stacks = [np.asarray(hoechst.data), np.asarray(phall.data)]

    # best-focus substack, each channel's own best ± 1 plane
    ow.form.planes.value = 1
    _click(qtbot, ow.substack_btn)
    qtbot.waitUntil(lambda: not ow.running, timeout=180_000)
    for ly, b, st in zip((hoechst, phall), best, stacks):
        sub = viewer.layers[f"{ly.name} best focus"]
        np.testing.assert_array_equal(sub.data, st[b - 1:b + 2])
        assert sub.scale[0] == pytest.approx(0.5) and sub.translate[0] == pytest.approx(
            (b - 1) * 0.5)
    # ... and Hoechst's best plane applied to both channels
    ow.form.reference.value = hoechst.name
    ow.form.planes.value = 0
    _click(qtbot, ow.substack_btn)
    qtbot.waitUntil(lambda: not ow.running, timeout=180_000)
    np.testing.assert_array_equal(viewer.layers[f"{phall.name} best focus"].data,
                                  stacks[1][best[0]])

    # all-in-focus composite + height map (µm)
    _click(qtbot, ow.composite_btn)
    qtbot.waitUntil(lambda: not ow.running, timeout=180_000)
    assert ow.last_error is None, ow.last_error
    comp = viewer.layers[f"{hoechst.name} all-in-focus"].data
    height = viewer.layers[f"{hoechst.name} height map"].data
    assert comp.shape == stacks[0].shape[1:] and height.shape == comp.shape
    assert 0 <= height.min() and height.max() <= (len(stacks[0]) - 1) * 0.5
    # the composite is at least as sharp as the SF-best plane (it picks per patch)
    from napari_focusqa.core.metrics import spatial_frequency

    assert float(spatial_frequency(comp)) >= 0.9 * float(spatial_frequency(
        stacks[0][assess_stack(stacks[0]).channels[0].best_z_index_sf]))

    # level map: patch-resolution expected level per plane, NaN where no structure
    ow.level_map()
    lm = viewer.layers[f"{hoechst.name} level map"]
    core = assess_stack(stacks[0], sharpness_model).channels[0]
    assert lm.data.shape == (21,) + core.slices[0].grid.shape
    for z in (0, best[0], 20):
        s = core.slices[z]
        np.testing.assert_array_equal(np.isnan(lm.data[z]), s.empty)
        np.testing.assert_allclose(lm.data[z][~s.empty], s.patch_expected_level[~s.empty],
                                   rtol=1e-5)
    assert lm.scale[1] == pytest.approx(84 * hoechst.scale[1])

    # montage: 11 rows of the most certain patches per level
    ow.form.per_level.value = 4
    _click(qtbot, ow.montage_btn)
    mo = viewer.layers[f"{hoechst.name} montage"]
    assert mo.data.shape == (11 * 84, 4 * 84)
    cells = mo.metadata["focusqa_montage"]["cells"]
    assert cells and all(core.slices[c["z"]].patch_level[c["row"], c["col"]] == c["level"]
                         for c in cells)
    for name in (f"{hoechst.name} montage", f"{phall.name} montage"):
        viewer.layers.remove(name)  # placed beside the image: keep the shot on the image
    for ly in list(viewer.layers):
        ly.visible = ly.name in (f"{hoechst.name} all-in-focus", f"{hoechst.name} level map")
    viewer.layers.selection.active = viewer.layers[f"{hoechst.name} level map"]
    viewer.dims.set_current_step(0, 3)
    viewer.reset_view()
    shot(viewer, "napari_outputs.png", tmp_path)
