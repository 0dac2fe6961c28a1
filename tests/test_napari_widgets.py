"""GUI tests of the napari plugin: real viewer rendered under Xvfb (pytest-xvfb).

Every test drives the real widgets (qtbot clicks), the real core and a real ONNX model
(the ``sharpness_model`` fixture: Laplacian energy -> 11 levels), on real images from
``../shared/data`` or the embedded sample.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_shared

pytestmark = pytest.mark.gui

qtpy = pytest.importorskip("qtpy")
pytest.importorskip("napari")

from qtpy.QtCore import QPoint, Qt  # noqa: E402

from napari_focusqa.core.assess import assess_image  # noqa: E402
from napari_focusqa.core.colors import level_colors, level_colors_uint8  # noqa: E402
from napari_focusqa.core.patches import make_grid  # noqa: E402
from napari_focusqa.core.zstack import assess_stack  # noqa: E402
from napari_focusqa.io import read_image  # noqa: E402

CZI = "czitools_celldivision_2ch_zstack.tif"
DAPI = "deconwolf_dapi_widefield_zstack.tif"


def _widgets(viewer):
    """Open both dock widgets the way a user does (Plugins menu -> npe2 contribution)."""
    from napari_focusqa.widgets.assess import AssessWidget
    from napari_focusqa.widgets.curves import CurvesWidget

    _, aw = viewer.window.add_plugin_dock_widget("napari-focusqa", "Assess focus")
    _, cw = viewer.window.add_plugin_dock_widget("napari-focusqa", "Focus curves")
    assert isinstance(aw, AssessWidget) and isinstance(cw, CurvesWidget)
    # napari gives each widget its own proxy of the viewer; both must share one store
    assert aw.viewer.__wrapped__ is viewer and cw.store is aw.store
    return aw, cw


def _click_assess(qtbot, aw, timeout=120_000):
    qtbot.mouseClick(aw.assess_btn, Qt.MouseButton.LeftButton)
    assert aw.running or aw.last_error is None
    qtbot.waitUntil(lambda: not aw.running, timeout=timeout)
    assert aw.last_error is None, aw.last_error


def test_reader_opens_hyperstack_through_npe2(make_napari_viewer):
    path = require_shared(CZI)
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin="napari-focusqa")
    img = read_image(path)
    assert len(layers) == 2
    assert [ly.name for ly in layers] == [
        "czitools_celldivision_2ch_zstack C0",
        "czitools_celldivision_2ch_zstack C1",
    ]
    for c, ly in enumerate(layers):
        assert ly.data.shape == (3, 5, 170, 240)  # T, Z, Y, X
        np.testing.assert_allclose(ly.scale, [1.0, 0.32, img.pixel_size_um, img.pixel_size_um])
        np.testing.assert_array_equal(np.asarray(ly.data), img.data[:, :, c])
        meta = ly.metadata["focusqa"]
        assert meta["source"] == str(path)
        assert meta["channel_index"] == c
        assert meta["z_step_um"] == pytest.approx(0.32)
        assert "czitools" in meta["info"]


def test_assess_click_on_real_hyperstack(make_napari_viewer, qtbot, sharpness_model, tmp_path):
    path = require_shared(CZI)
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-focusqa")
    aw, cw = _widgets(viewer)
    aw.set_model(sharpness_model)
    assert aw.patch_label.text().startswith("84 px")
    viewer.dims.set_point(0, 1.0)  # time point 1 of the TZYX layers
    _click_assess(qtbot, aw)

    img = read_image(path)
    core = assess_stack(img.data[1], sharpness_model, z_step_um=img.z_step_um)
    grid = make_grid((170, 240), 84)
    shapes = [ly for ly in viewer.layers if ly.name.endswith(" patches")]
    assert [ly.name for ly in shapes] == [f"{ly.name} patches" for ly in viewer.layers[:2]]
    for c, sl in enumerate(shapes):
        feats = sl.features
        assert sl.nshapes == 5 * grid.n_patches
        # every z-slice has one rectangle per patch, at that z (and at time point 1)
        data = np.asarray(sl.data)
        assert data.shape == (5 * grid.n_patches, 4, 4)
        assert np.all(data[:, :, 0] == 1)
        counts = np.bincount(data[:, 0, 1].astype(int))
        assert counts.tolist() == [grid.n_patches] * 5
        np.testing.assert_array_equal(feats["z"].to_numpy(), data[:, 0, 1])
        # colours: the shared map of (level, certainty)
        expect = level_colors(feats["level"].to_numpy(), feats["certainty"].to_numpy(), 11)
        np.testing.assert_allclose(sl.edge_color, expect, atol=1e-6)
        # the levels are the core's
        core_levels = np.stack([s.patch_level for s in core.channels[c].slices]).ravel()
        np.testing.assert_array_equal(feats["level"].to_numpy(), core_levels)
        probs = feats[[f"p{k}" for k in range(11)]].to_numpy()
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
        assert sl.metadata["focusqa"]["best_z_index"] == core.channels[c].best_z_index
    assert [e.curve.best_z_index for e in aw.results] == [c.best_z_index for c in core.channels]
    assert aw.summary.rowCount() == 10
    for c, ch in enumerate(core.channels):
        assert f"best z {ch.best_z_index}" in aw.status.text().splitlines()[c]
    # File > Save Selected Layer with our writer: the patch table of a Shapes layer
    import csv

    viewer.layers.selection = {shapes[0]}
    out = tmp_path / "patches.csv"
    viewer.layers.save(str(out), selected=True, plugin="napari-focusqa")
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == shapes[0].nshapes
    assert [int(r["level"]) for r in rows] == shapes[0].features["level"].tolist()
    assert {r["image_layer"] for r in rows} == {viewer.layers[0].name}
    # go to best slice of channel 1: dims z (world axis 1) moves there
    b = aw.go_to_best(aw.results[1].layer_name)
    assert viewer.dims.current_step[1] == b == core.channels[1].best_z_index


def test_curves_data_click_and_cursor(make_napari_viewer, qtbot, sharpness_model, tmp_path):
    path = require_shared(DAPI)
    viewer = make_napari_viewer(show=True)
    (layer,) = viewer.open(str(path), plugin="napari-focusqa")
    assert layer.name == "deconwolf_dapi_widefield_zstack [nucleus]"
    aw, cw = _widgets(viewer)
    assert aw.stain_of(layer) == "nucleus"
    aw.set_model(sharpness_model)
    _click_assess(qtbot, aw)

    img = read_image(path)
    core = assess_stack(img.data[0], sharpness_model, z_step_um=0.3, stains=["nucleus"])
    ch = core.channels[0]
    rec = cw.plotted[layer.name]
    np.testing.assert_allclose(rec["sf"], ch.sf, rtol=1e-12)
    line = cw.lines[(0, layer.name)]
    sf_n = (ch.sf - ch.sf.min()) / np.ptp(ch.sf)
    np.testing.assert_allclose(line.get_ydata(), sf_n, rtol=1e-9)
    np.testing.assert_allclose(line.get_xdata(), np.arange(40) * 0.3, atol=1e-9)
    np.testing.assert_allclose(cw.lines[(1, layer.name)].get_ydata(), ch.expected_level)
    assert abs(ch.best_z_index - 19) <= 2  # documented focus of this stack

    # click on the plotted point of slice 30 -> the viewer moves to z = 30
    cw.canvas.draw()
    target = 30
    ax = cw.axes[0]
    px, py = ax.transData.transform((line.get_xdata()[target], line.get_ydata()[target]))
    ratio = cw.canvas.device_pixel_ratio or 1.0
    pos = QPoint(int(round(px / ratio)), int(round(cw.canvas.height() - py / ratio)))
    qtbot.mouseClick(cw.canvas, Qt.MouseButton.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: viewer.dims.current_step[0] == target, timeout=5000)
    assert cw.last_clicked == (layer.name, target)
    # the cursor follows the z slider
    viewer.dims.set_current_step(0, 7)
    assert cw.cursor_z_index == 7
    np.testing.assert_allclose(cw.cursors[0].get_xdata(), [7 * 0.3, 7 * 0.3])

    # exports: figure as PNG/SVG, data as CSV with the core's numbers
    assert cw.export_figure(tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in cw.export_figure(tmp_path / "c.svg").read_bytes()[:400]
    import csv

    rows = list(csv.DictReader(open(cw.export_csv(tmp_path / "c.csv"))))
    assert len(rows) == 40
    np.testing.assert_allclose([float(r["sf"]) for r in rows], ch.sf, rtol=1e-9)
    assert [r["best_sf"] for r in rows].index("True") == ch.best_z_index
    # box-plot mode: one box per stain with all planes
    cw.mode.setCurrentIndex(1)
    assert list(cw.plotted) == ["nucleus"] and cw.plotted["nucleus"]["sf"].size == 40


def test_screenshot_after_assessment_is_not_blank(make_napari_viewer, qtbot, sharpness_model,
                                                  tmp_path):
    from napari_focusqa.io.sample_data import napari_sample

    viewer = make_napari_viewer(show=True)
    for data, kwargs, _ in napari_sample():
        viewer.add_image(data, **kwargs)
    aw, cw = _widgets(viewer)
    aw.set_model(sharpness_model)
    _click_assess(qtbot, aw)
    shapes = viewer.layers["Hoechst 33342 patches"]
    assert shapes.visible and not viewer.layers["Phalloidin-488 patches"].visible
    viewer.dims.set_current_step(0, 0)  # most defocused slice: blue-ish borders
    viewer.reset_view()
    out = tmp_path / "window.png"
    shot = viewer.screenshot(str(out), canvas_only=False, flash=False)
    assert out.stat().st_size > 10_000
    rgb = shot[..., :3].astype(int)
    assert rgb.shape[0] > 300 and rgb.shape[1] > 300

    def border_pixels(img):
        feats = shapes.features[shapes.features["z"] == 0]
        cols = np.unique(level_colors_uint8(feats["level"], feats["certainty"]), axis=0)
        hit = np.zeros(img.shape[:2], bool)
        for c in cols.astype(int):
            hit |= np.abs(img - c).max(axis=-1) <= 12
        return int(hit.sum())

    with_borders = border_pixels(rgb)
    shapes.visible = False
    without = border_pixels(viewer.screenshot(canvas_only=False, flash=False)[..., :3].astype(int))
    assert with_borders > 2000, with_borders
    assert with_borders > 3 * without + 1000, (with_borders, without)
    # strongly blue (defocused) pixels exist only with the borders on
    shapes.visible = True
    red = (rgb[..., 0] > 180) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)
    blue = (rgb[..., 2] > 150) & (rgb[..., 0] < 90) & (rgb[..., 1] < 150)
    assert int(red.sum() + blue.sum()) > 1000


def test_sample_data_sf_only_and_2d(make_napari_viewer, qtbot, sharpness_model):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-focusqa", "multistain_zstack")
    assert [ly.name for ly in layers] == ["Hoechst 33342", "Phalloidin-488"]
    aw, cw = _widgets(viewer)
    assert [aw.stain_of(ly) for ly in layers] == ["nucleus", "actin"]
    layers[1].name = "actin 488"  # the channel table follows renames
    assert aw.layers_table.item(1, 1).text() == "actin 488"
    layers[1].name = "Phalloidin-488"
    # SF only: curves, no patch layers; best slices are the sample's designed foci
    aw.set_model(None)
    _click_assess(qtbot, aw)
    assert not [ly for ly in viewer.layers if ly.name.endswith("patches")]
    assert [e.curve.best_z_index for e in aw.results] == [10, 11]
    assert len(cw.axes) == 1 and cw.lines[(0, "Hoechst 33342")].get_xdata()[-1] == 10.0
    # one channel, stain overridden, 2D image added next to the stack
    plane = np.asarray(layers[0].data[10])
    viewer.add_image(plane, name="plane")
    plain = np.asarray(layers[1].data[5:15])  # a plain stack: no metadata, no scale
    viewer.add_image(plain, name="plain")
    aw.set_selected_layers(["plane", "plain"])
    aw.set_stain("plane", "tubulin")
    aw.set_model(sharpness_model)
    _click_assess(qtbot, aw)
    (sl,) = [ly for ly in viewer.layers if ly.name == "plane patches"]
    grid = make_grid(plane.shape, 84)
    assert sl.ndim == 2 and sl.nshapes == grid.n_patches
    assert aw.results[0].curve.stain == "tubulin"
    assert aw.results[0].z_axis is None
    pl = viewer.layers["plain patches"]
    assert pl.ndim == 3 and pl.nshapes == 10 * grid.n_patches
    assert aw.results[1].curve.z_step_um is None and aw.results[1].curve.stain == "generic"
    core_plain = assess_stack(plain, sharpness_model)
    assert aw.results[1].curve.best_z_index == core_plain.channels[0].best_z_index == 6
    viewer.layers.remove("plain")
    # the curves keep every assessed channel; deleting a layer drops its results
    assert list(cw.plotted) == ["Hoechst 33342", "Phalloidin-488", "plane"]
    viewer.layers.remove("plane")
    assert aw.results == [] and list(cw.plotted) == ["Hoechst 33342", "Phalloidin-488"]
    core = assess_image(plane, sharpness_model)
    np.testing.assert_array_equal(sl.features["level"].to_numpy(), core.patch_level.ravel())


def test_bad_input_and_cancel(make_napari_viewer, qtbot, sharpness_model):
    from napari_focusqa.core.model import default_model_id, list_models
    from napari_focusqa.widgets.assess import SF_ONLY

    viewer = make_napari_viewer()
    aw, _ = _widgets(viewer)
    # the model menu: installed levels models + "none (SF only)"; default model preselected
    items = [aw.model_combo.itemText(i) for i in range(aw.model_combo.count())]
    levels = [c["id"] for c in list_models() if c.get("task") in ("levels", "levels-stain")]
    assert items == levels + [SF_ONLY]
    assert aw.model_choice() == default_model_id()
    with pytest.raises(Exception, match="not an installed levels model"):
        aw.set_model("no-such-model")
    qtbot.mouseClick(aw.assess_btn, Qt.MouseButton.LeftButton)
    assert "No image layer" in aw.last_error and not aw.running
    viewer.add_image(np.zeros((64, 64, 3), np.uint8), name="photo", rgb=True)
    qtbot.mouseClick(aw.assess_btn, Qt.MouseButton.LeftButton)
    assert "RGB" in aw.last_error and "'photo'" in aw.last_error
    with pytest.raises(Exception, match="stain"):
        aw.set_stain("photo", "glitter")
    viewer.layers.clear()
    # an image smaller than one patch: the core's error is shown, nothing is added
    viewer.add_image(np.ones((10, 50, 50), np.uint16), name="tiny")
    aw.set_model(sharpness_model)
    qtbot.mouseClick(aw.assess_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not aw.running, timeout=30_000)
    assert "smaller than one 84x84 patch" in aw.last_error
    assert [ly.name for ly in viewer.layers] == ["tiny"]
    viewer.layers.clear()
    # a 60-slice 1024² stack: the GUI thread keeps running (timer ticks, progress
    # updates arrive) while the worker computes; Cancel stops it with no results
    rng = np.random.default_rng(0)
    big = rng.integers(0, 4000, (60, 1024, 1024), dtype=np.uint16)
    viewer.add_image(big, name="big")
    aw.set_model(sharpness_model)
    from qtpy.QtCore import QTimer

    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(aw.progress_bar.value()))
    timer.start(20)
    qtbot.mouseClick(aw.assess_btn, Qt.MouseButton.LeftButton)
    assert aw.running and aw.cancel_btn.isEnabled() and not aw.assess_btn.isEnabled()
    qtbot.waitUntil(lambda: aw.progress_bar.value() >= 3, timeout=60_000)
    timer.stop()
    assert aw.running, "the 60-slice run finished before the responsiveness check"
    assert len(ticks) >= 3 and aw.progress_bar.maximum() == 60
    qtbot.mouseClick(aw.cancel_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not aw.running, timeout=60_000)
    assert aw.last_error == "Cancelled"
    assert [ly.name for ly in viewer.layers] == ["big"] and aw.results == []
    assert aw.assess_btn.isEnabled() and not aw.cancel_btn.isEnabled()
    assert aw.progress_bar.value() < 60


def test_drop_several_files(make_napari_viewer, tmp_path):
    path = require_shared("deconwolf_dapi_widefield_zstack.tif")
    stack = read_image(path).data[0, :, 0]
    a, b = tmp_path / "a.tif", tmp_path / "b.ome.tif"
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(a, stack[:10], imagej=True, metadata={"axes": "ZYX", "spacing": 0.3})
    tifffile.imwrite(b, stack[10:20], ome=True, metadata={"axes": "ZYX", "PhysicalSizeZ": 0.3,
                                                          "PhysicalSizeX": 0.13})
    viewer = make_napari_viewer()
    layers = viewer.open([str(a), str(b)], plugin="napari-focusqa")
    assert [ly.name for ly in layers] == ["a", "b"]
    assert layers[0].scale[0] == pytest.approx(0.3) and layers[1].scale[0] == pytest.approx(0.3)
    assert layers[1].scale[1] == pytest.approx(0.13)
    np.testing.assert_array_equal(np.asarray(layers[1].data), stack[10:20])
    # a folder of single planes opens as one z-stack
    folder = tmp_path / "planes"
    folder.mkdir()
    for z in range(6):
        tifffile.imwrite(folder / f"z{z:02d}.tif", stack[15 + z])
    (fl,) = viewer.open(str(folder), plugin="napari-focusqa")
    assert fl.name == "planes" and fl.data.shape == (6, 201, 101)
    np.testing.assert_array_equal(np.asarray(fl.data), stack[15:21])


def test_per_slice_borders_beyond_the_3d_limit(make_napari_viewer, qtbot, sharpness_model):
    path = require_shared(DAPI)
    stack = read_image(path).data[0, 10:30, 0]
    viewer = make_napari_viewer()
    viewer.add_image(stack, name="dapi", scale=(0.3, 0.13, 0.13))
    aw, _ = _widgets(viewer)
    aw.set_model(sharpness_model)
    aw.max_3d_rectangles = 50  # 20 slices x 6 patches = 120 rectangles -> per-slice mode
    viewer.dims.set_current_step(0, 4)
    _click_assess(qtbot, aw)
    core = assess_stack(stack, sharpness_model).channels[0]
    sl = viewer.layers["dapi patches"]
    assert sl.ndim == 2 and sl.nshapes == 6 and sl.metadata["focusqa"]["per_slice"]

    def check(z):
        assert sl.nshapes == 6
        assert sl.features["z"].tolist() == [z] * 6
        np.testing.assert_array_equal(sl.features["level"], core.slices[z].patch_level.ravel())
        np.testing.assert_allclose(
            sl.edge_color, level_colors(sl.features["level"], sl.features["certainty"]), atol=1e-6
        )

    check(4)
    viewer.dims.set_current_step(0, 15)
    check(15)
