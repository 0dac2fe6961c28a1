"""GUI tests of the napari plugin: real viewer rendered under Xvfb (pytest-xvfb).

Every test drives the real widgets (qtbot clicks), the real core and a real ONNX model
(the ``sharpness_model`` fixture: Laplacian energy -> 11 levels), on real images from
``../shared/data`` or the embedded sample.
"""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
from conftest import require_shared

pytestmark = pytest.mark.gui

qtpy = pytest.importorskip("qtpy")
pytest.importorskip("napari")

from qtpy.QtCore import QPoint, Qt  # noqa: E402

from napari_focusqa.core.assess import assess_image  # noqa: E402
from napari_focusqa.core.colors import patch_colors, patch_colors_uint8  # noqa: E402
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
    assert aw.viewer.__wrapped__ is viewer
    return aw, cw


def click(qtbot, button):
    """A real mouse click on a magicgui button."""
    qtbot.mouseClick(button.native, Qt.MouseButton.LeftButton)


def _click_assess(qtbot, aw, timeout=120_000):
    click(qtbot, aw.assess_btn)
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


def _assert_colour_contract(pl, num_classes=11):
    """What the shared colour map promises, checked on a patch layer's colours without
    calling it: hue = level (red at 0 ... magenta 0.83 at the last level), HLS lightness
    0.15 + 0.35 x certainty, neutral grey (0.6) for patches without structure.
    Returns the number of grey (empty) patches."""
    feats = pl.features
    empty = feats["empty"].to_numpy()
    np.testing.assert_allclose(pl.border_color[empty].reshape(-1, 4),
                               np.tile([0.6, 0.6, 0.6, 1.0], (int(empty.sum()), 1)))
    hls = np.array([colorsys.rgb_to_hls(*rgb) for rgb in pl.border_color[~empty, :3]])
    hue_want = feats["level"].to_numpy()[~empty] / (num_classes - 1) * 0.83
    dh = np.abs(hls[:, 0] - hue_want)
    assert np.all(np.minimum(dh, 1 - dh) < 1e-4)
    np.testing.assert_allclose(hls[:, 1], 0.15 + 0.35 * feats["certainty"].to_numpy()[~empty],
                               atol=1e-4)
    return int(empty.sum())


def test_assess_click_on_real_hyperstack(make_napari_viewer, qtbot, sharpness_model, tmp_path):
    path = require_shared(CZI)
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-focusqa")
    aw, cw = _widgets(viewer)
    aw.set_model(sharpness_model)
    assert aw.patch_label.value.startswith("patch: 84 px")
    viewer.dims.set_point(0, 1.0)  # time point 1 of the TZYX layers
    _click_assess(qtbot, aw)

    from napari_focusqa.pipeline import image_airy_px

    img = read_image(path)
    # the layer keeps the CZI's optics (LensNA 1.2): the same verdict threshold as the CLI
    core = assess_stack(img.data[1], sharpness_model, z_step_um=img.z_step_um,
                        airy_px=image_airy_px(img))
    grid = make_grid((170, 240), 84)
    overlays = [ly for ly in viewer.layers if ly.name.endswith(" patches")]
    assert [ly.name for ly in overlays] == [f"{ly.name} patches" for ly in viewer.layers[:2]]
    for c, pl in enumerate(overlays):
        feats = pl.features
        # one square per patch on every plane, at that z and at time point 1
        data = np.asarray(pl.data)
        assert data.shape == (5 * grid.n_patches, 4)
        assert np.all(data[:, 0] == 1)
        assert np.bincount(data[:, 1].astype(int)).tolist() == [grid.n_patches] * 5
        np.testing.assert_array_equal(feats["z"].to_numpy(), data[:, 1])
        centres = (grid.boxes().reshape(-1, 4)[:, :2] + grid.boxes().reshape(-1, 4)[:, 2:] - 1) / 2
        np.testing.assert_allclose(data[: grid.n_patches, 2:], centres)
        assert set(pl.symbol) == {pl.symbol[0]} and str(pl.symbol[0]) == "square"
        assert np.all(pl.size == 84 - pl.border_width[0])
        np.testing.assert_allclose(pl.face_color[:, 3], 0.0)  # transparent squares
        # colours: the shared map of (level, certainty)
        expect = patch_colors(feats["level"].to_numpy(), feats["certainty"].to_numpy(),
                              feats["empty"].to_numpy(), 11)
        np.testing.assert_allclose(pl.border_color, expect, atol=1e-6)
        _assert_colour_contract(pl)
        # the levels are the core's
        core_levels = np.stack([s.patch_level for s in core.channels[c].slices]).ravel()
        np.testing.assert_array_equal(feats["level"].to_numpy(), core_levels)
        probs = feats[[f"p{k}" for k in range(11)]].to_numpy()
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
        assert pl.metadata["focusqa"]["best_z_index"] == core.channels[c].best_z_index
        # the result is stored on the image layer itself
        stored = viewer.layers[c].metadata["focusqa_result"]
        assert stored["curve"]["best_z_index"] == core.channels[c].best_z_index
        assert stored["overlay"] == pl.name and len(stored["records"]) == 5
    assert [e.best_z_index for e in aw.results] == [c.best_z_index for c in core.channels]
    assert aw.summary.native.rowCount() == 10
    # verdict and structured fraction are in the table, as the core computed them
    t = aw.summary.native
    head = [t.horizontalHeaderItem(i).text() for i in range(t.columnCount())]
    for z in range(5):
        s0 = core.channels[0].slices[z]
        assert t.item(z, head.index("verdict")).text() == s0.verdict
        assert float(t.item(z, head.index("structured")).text()) == pytest.approx(
            s0.structured_fraction, abs=1e-3)
    for c, ch in enumerate(core.channels):
        assert f"best z {ch.best_z_index}" in aw.status.value.splitlines()[c]
    # File > Save Selected Layer with our writer: the patch table of a patch layer
    import csv

    viewer.layers.selection = {overlays[0]}
    out = tmp_path / "patches.csv"
    viewer.layers.save(str(out), selected=True, plugin="napari-focusqa")
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == len(overlays[0].data)
    assert [int(r["level"]) for r in rows] == overlays[0].features["level"].tolist()
    assert {r["image_layer"] for r in rows} == {viewer.layers[0].name}
    # go to best plane of channel 1: dims z (world axis 1) moves there
    b = aw.go_to_best(aw.results[1].layer_name)
    assert viewer.dims.current_step[1] == b == core.channels[1].best_z_index
    # closing the widget keeps the results: they live on the layers
    viewer.window.remove_dock_widget(aw)
    from napari_focusqa.widgets._results import assessed_channels

    assert [e.layer_name for e in assessed_channels(viewer)] == [ly.name for ly in viewer.layers[:2]]


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
    np.testing.assert_allclose(rec["sf"], ch.sf, rtol=1e-8)  # stored rounded to 1e-6
    line = cw.lines[(0, layer.name)]
    sf_n = (ch.sf - ch.sf.min()) / np.ptp(ch.sf)
    np.testing.assert_allclose(line.get_ydata(), sf_n, atol=1e-6)
    np.testing.assert_allclose(line.get_xdata(), np.arange(40) * 0.3, atol=1e-9)
    np.testing.assert_allclose(cw.lines[(1, layer.name)].get_ydata(), ch.expected_level,
                               rtol=1e-5)
    assert abs(ch.best_z_index_sf - 19) <= 2  # documented focus of this stack (SF peak)

    # click on the plotted point of slice 30 -> the viewer moves to z = 30
    cw.canvas.draw()
    target = 30
    ax = cw.axes[0]
    px, py = ax.transData.transform((line.get_xdata()[target], line.get_ydata()[target]))
    ratio = cw.canvas.device_pixel_ratio or 1.0
    pos = QPoint(int(round(px / ratio)), int(round(cw.canvas.height() - py / ratio)))
    qtbot.mouseClick(cw.canvas, Qt.MouseButton.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: viewer.dims.current_step[0] == target, timeout=180_000)
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
    np.testing.assert_allclose([float(r["sf"]) for r in rows], ch.sf, rtol=1e-8)
    assert [r["best_sf"] for r in rows].index("True") == ch.best_z_index
    # box-plot mode: one box per stain with all planes
    from napari_focusqa.widgets.curves import MODE_BOX

    cw.form.mode.value = MODE_BOX
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
    shapes = viewer.layers["Hoechst 33342 patches"]  # a Points layer of squares
    assert shapes.visible and not viewer.layers["Phalloidin-488 patches"].visible
    # the sample has background patches: they are grey, the others hue/lightness
    assert _assert_colour_contract(shapes) > 0
    viewer.dims.set_current_step(0, 0)  # most defocused slice: blue-ish borders
    viewer.reset_view()
    out = tmp_path / "window.png"
    shot = viewer.screenshot(str(out), canvas_only=False, flash=False)
    assert out.stat().st_size > 10_000
    rgb = shot[..., :3].astype(int)
    assert rgb.shape[0] > 300 and rgb.shape[1] > 300

    def border_pixels(img):
        feats = shapes.features[shapes.features["z"] == 0]
        cols = np.unique(patch_colors_uint8(feats["level"], feats["certainty"], feats["empty"]),
                         axis=0)
        hit = np.zeros(img.shape[:2], bool)
        for c in cols.astype(int):
            hit |= np.abs(img - c).max(axis=-1) <= 12
        return int(hit.sum())

    with_borders = border_pixels(rgb)
    shapes.visible = False
    without = border_pixels(viewer.screenshot(canvas_only=False, flash=False)[..., :3].astype(int))
    assert with_borders > 2000, with_borders
    assert with_borders > without + 2000, (with_borders, without)
    # strongly blue (defocused) pixels exist only with the borders on
    shapes.visible = True
    red = (rgb[..., 0] > 180) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)
    blue = (rgb[..., 2] > 150) & (rgb[..., 0] < 90) & (rgb[..., 1] < 150)
    assert int(red.sum() + blue.sum()) > 1000
    # zoomed onto the top border of one grey (no structure) and one coloured patch
    # (the topmost of each kind on plane 0): the canvas shows exactly the colour the
    # shared map gives that patch
    feats = shapes.features
    plane = feats[feats["z"] == 0].sort_values("row", kind="stable")
    picks = [plane.index[plane["empty"]][0], plane.index[~plane["empty"]][0]]
    plane_cols = patch_colors_uint8(plane["level"], plane["certainty"], plane["empty"]).astype(int)
    for i in picks:
        want = patch_colors_uint8(feats["level"][i], feats["certainty"][i], feats["empty"][i])
        assert np.array_equal(want, [153, 153, 153]) == bool(feats["empty"][i])
        scan = _border_scan(viewer, shapes, i).astype(int)
        close = np.abs(scan - want.astype(int)).max(axis=-1) <= 6
        assert close.sum() >= 5 * 3, (i, want, scan[::8])  # >= 3 px border at 6x
        # and no pixel there has a level colour that no patch of this plane has
        others = [c for c in patch_colors_uint8(np.arange(11), 1.0).astype(int)
                  if not np.any(np.abs(plane_cols - c).max(axis=-1) <= 30)]
        assert others and not any(
            np.any(np.abs(scan - c).max(axis=-1) <= 6) for c in others)


def _border_scan(viewer, layer, i, zoom=6.0):
    """Canvas pixels (RGB) on a vertical line through the top edge of square ``i`` of a
    Points layer, the camera centred on that edge, ``zoom`` screen pixels per image
    pixel."""
    z, _, cx = (float(v) for v in layer.data[i])
    y0 = float(layer.features["y0"][i])
    world = layer.data_to_world((z, y0 - 0.5, cx))
    viewer.dims.set_current_step(0, int(z))
    viewer.camera.center = tuple(world[-2:])
    viewer.camera.zoom = zoom / float(layer.scale[-1])
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3]
    h, w = shot.shape[:2]
    return shot[h // 2 - 60: h // 2 + 60, w // 2]


def test_sample_data_sf_only_and_2d(make_napari_viewer, qtbot, sharpness_model):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-focusqa", "multistain_zstack")
    assert [ly.name for ly in layers] == ["Hoechst 33342", "Phalloidin-488"]
    aw, cw = _widgets(viewer)
    assert [aw.stain_of(ly) for ly in layers] == ["nucleus", "actin"]
    assert aw.selected_layers() == list(layers)  # every channel by default
    layers[1].name = "actin 488"  # the layer chooser follows renames
    assert "actin 488" in [aw.layers.native.item(i).text() for i in range(2)]
    layers[1].name = "Phalloidin-488"
    # SF only: curves, no patch layers; best planes are the sample's designed foci
    aw.set_model(None)
    _click_assess(qtbot, aw)
    assert not [ly for ly in viewer.layers if ly.name.endswith("patches")]
    assert [e.best_z_index for e in aw.results] == [10, 11]
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
    sl = viewer.layers["plane patches"]
    grid = make_grid(plane.shape, 84)
    assert sl.ndim == 2 and len(sl.data) == grid.n_patches
    assert aw.results[0].stain == "tubulin"
    assert aw.results[0].z_axis is None
    pl = viewer.layers["plain patches"]
    assert pl.ndim == 3 and len(pl.data) == 10 * grid.n_patches
    assert aw.results[1].z_step_um is None and aw.results[1].stain == "generic"
    core_plain = assess_stack(plain, sharpness_model)
    assert aw.results[1].best_z_index == core_plain.channels[0].best_z_index == 6
    viewer.layers.remove("plain")
    # the curves show every assessed layer; deleting a layer drops its curve
    assert list(cw.plotted) == ["Hoechst 33342", "Phalloidin-488", "plane"]
    viewer.layers.remove("plane")
    assert list(cw.plotted) == ["Hoechst 33342", "Phalloidin-488"]
    core = assess_image(plane, sharpness_model)
    np.testing.assert_array_equal(sl.features["level"].to_numpy(), core.patch_level.ravel())


def test_bad_input_cancel_and_persisted_settings(make_napari_viewer, qtbot, sharpness_model):
    from napari_focusqa.core.model import default_model_id, list_models
    from napari_focusqa.widgets.assess import SF_ONLY, AssessWidget

    viewer = make_napari_viewer()
    aw, _ = _widgets(viewer)
    # the model menu: installed levels models + "none (SF only)"; default model preselected
    levels = [c["id"] for c in list_models() if c.get("task") in ("levels", "levels-stain")]
    assert list(aw.form.model.choices) == levels + [SF_ONLY]
    assert aw.model_choice() == default_model_id()
    # no card chosen: the "or card" field is empty (not the working directory)
    assert aw.form.card.value is None and aw.form.card.line_edit.value == ""
    with pytest.raises(Exception, match="not an installed levels model"):
        aw.set_model("no-such-model")
    click(qtbot, aw.assess_btn)
    assert "no image layer" in aw.last_error and not aw.running
    viewer.add_image(np.zeros((64, 64, 3), np.uint8), name="photo", rgb=True)
    click(qtbot, aw.assess_btn)
    assert "RGB" in aw.last_error and "'photo'" in aw.last_error
    with pytest.raises(Exception, match="stain"):
        aw.set_stain("photo", "glitter")
    viewer.layers.clear()
    # an image smaller than one patch: the core's error is shown, nothing is added
    viewer.add_image(np.ones((10, 50, 50), np.uint16), name="tiny")
    aw.set_model(sharpness_model)
    click(qtbot, aw.assess_btn)
    qtbot.waitUntil(lambda: not aw.running, timeout=180_000)
    assert "smaller than one 84x84 patch" in aw.last_error
    assert [ly.name for ly in viewer.layers] == ["tiny"]
    viewer.layers.clear()
    # a 60-plane 1024² stack: the GUI thread keeps running (timer ticks, progress
    # updates arrive) while the worker computes; Cancel stops it with no results
    rng = np.random.default_rng(0)
    big = rng.integers(0, 4000, (60, 1024, 1024), dtype=np.uint16)
    viewer.add_image(big, name="big")
    from qtpy.QtCore import QTimer

    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(aw.progress_bar.value))
    timer.start(20)
    click(qtbot, aw.assess_btn)
    assert aw.running and aw.cancel_btn.enabled and not aw.assess_btn.enabled
    # napari's status-bar activity spinner is held still while the task runs (with
    # software OpenGL each of its frames recomposites the whole window)
    from qtpy.QtGui import QMovie
    from qtpy.QtWidgets import QLabel

    movies = [lb.movie() for lb in viewer.window._qt_window.findChildren(QLabel)
              if lb.movie() is not None]
    assert any(m.state() == QMovie.MovieState.Paused for m in movies)
    assert not any(m.state() == QMovie.MovieState.Running for m in movies)
    qtbot.waitUntil(lambda: aw.progress_bar.value >= 3, timeout=180_000)
    timer.stop()
    assert aw.running, "the 60-plane run finished before the responsiveness check"
    assert len(ticks) >= 3 and aw.progress_bar.max == 60
    click(qtbot, aw.cancel_btn)
    qtbot.waitUntil(lambda: not aw.running, timeout=180_000)
    assert aw.last_error == "Cancelled"
    assert [ly.name for ly in viewer.layers] == ["big"] and aw.results == []
    assert "focusqa_result" not in viewer.layers["big"].metadata
    assert aw.assess_btn.enabled and not aw.cancel_btn.enabled
    assert aw.progress_bar.value < 60
    # settings persist: a new widget starts with the card and stain chosen here
    aw.form.stain.value = "actin"
    aw2 = AssessWidget(viewer)
    assert aw2.model_choice() == str(sharpness_model) and aw2.form.stain.value == "actin"
    aw2.set_model(None)  # back to SF only: the card field empties again
    assert aw2.model_choice() is None and aw2.form.card.line_edit.value == ""
    aw2.close()


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


def test_every_plane_has_its_overlay_and_hover_shows_features(make_napari_viewer, qtbot,
                                                                 sharpness_model):
    path = require_shared(DAPI)
    stack = read_image(path).data[0, :, 0]
    viewer = make_napari_viewer(show=True)
    viewer.add_image(stack, name="dapi", scale=(0.3, 0.13, 0.13))
    aw, _ = _widgets(viewer)
    aw.set_model(sharpness_model)
    _click_assess(qtbot, aw)
    core = assess_stack(stack, sharpness_model).channels[0]
    pl = viewer.layers["dapi patches"]
    npp = core.slices[0].grid.n_patches
    for z in (0, 19, len(stack) - 1):
        viewer.dims.set_current_step(0, z)
        shown = pl._view_indices  # the squares napari draws on this plane
        assert len(shown) == npp
        np.testing.assert_array_equal(pl.features["z"].to_numpy()[shown], z)
        np.testing.assert_array_equal(pl.features["level"].to_numpy()[shown],
                                      core.slices[z].patch_level.ravel())
    # hovering a square: the status bar names its level and certainty
    i = int(pl._view_indices[0])
    pos = tuple(np.asarray(pl.data[i]) * np.asarray(pl.scale))
    status = pl.get_status(pos, world=True)
    text = status["coordinates"] if isinstance(status, dict) else str(status)
    assert f"level: {int(pl.features['level'][i])}" in text, text
    assert "certainty" in text


def test_assess_uses_the_files_optics_for_the_verdict(make_napari_viewer, qtbot):
    """A file opened through the reader keeps its optics (deconwolf: NA 1.45, 461 nm,
    0.13 µm); "Assess focus" with the default model then judges with that instrument's
    threshold (level <= 2), as `focusqa assess` does: the documented focus plane 19 is
    in_focus, plane 0 is not. The same pixels without metadata keep the card's rule."""
    import tifffile

    from napari_focusqa.core.model import default_model_id
    from napari_focusqa.pipeline import assess_file

    path = require_shared(DAPI)
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="napari-focusqa")
    viewer.add_image(tifffile.imread(path), name="bare")
    aw, _ = _widgets(viewer)
    aw.set_model(default_model_id())
    aw.layers.value = [layer, viewer.layers["bare"]]
    _click_assess(qtbot, aw, timeout=300_000)
    by_name = {r.layer_name: r.records for r in aw.results}
    rec = by_name[layer.name]
    cli = [r.verdict for r in assess_file(path, default_model_id())]
    assert [r["verdict"] for r in rec] == cli
    assert rec[19]["verdict"] == "in_focus" and rec[0]["verdict"] == "out_of_focus"
    assert by_name["bare"][19]["verdict"] == "out_of_focus"  # no optics: the card's rule
    # the status line says why: the file's optics set the threshold
    lines = aw.status.value.splitlines()
    assert "in focus: level <= 2 (the file's optics: Airy disc 6.0 px)" in lines[0]
    assert "optics" not in lines[1]
