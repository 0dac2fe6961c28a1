"""Non-GUI tests of the napari plugin: manifest, reader, writer, overlay geometry/colours."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import require_shared

pytest.importorskip("pandas")  # napari's dependency; layer features are DataFrames

from napari_focusqa.core.assess import assess_image
from napari_focusqa.core.colors import EMPTY_RGB, patch_colors
from napari_focusqa.core.errors import FocusQAError, ImageError
from napari_focusqa.core.patches import make_grid
from napari_focusqa.core.zstack import assess_stack
from napari_focusqa.io import read_image
from napari_focusqa.io.napari_reader import get_reader, read_folder
from napari_focusqa.io.napari_writer import patch_records, write_patches
from napari_focusqa.widgets.overlay import build_overlay, default_edge_width, patch_centres

REPO = Path(__file__).resolve().parents[1]


def test_manifest_valid_and_symlinked():
    npe2 = pytest.importorskip("npe2")
    pytest.importorskip("napari")  # the widget modules import qtpy/napari
    pm = npe2.PluginManifest.from_distribution("napari-focusqa")
    contrib = pm.contributions
    assert {"Assess focus", "Focus curves"} <= {w.display_name for w in contrib.widgets}
    assert [s.key for s in contrib.sample_data] == ["multistain_zstack"]
    assert contrib.readers[0].accepts_directories
    assert "*.tif" in contrib.readers[0].filename_patterns
    assert contrib.writers[0].layer_types == ["points"]  # the patch-border layer
    # every command resolves to a real Python object
    for cmd in contrib.commands:
        assert callable(cmd.exec) or cmd.python_name
        mod, _, attr = cmd.python_name.partition(":")
        __import__(mod)
        import sys

        assert hasattr(sys.modules[mod], attr), cmd.python_name
    link = REPO / "napari_focusqa" / "napari.yaml"
    assert link.is_symlink() and link.resolve() == (REPO / "napari.yaml").resolve()


def test_get_reader_accepts_tiffs_and_folders_only(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    assert get_reader(str(tmp_path / "a.png")) is None
    assert get_reader(str(tmp_path)) is None  # folder without TIFFs
    tifffile.imwrite(tmp_path / "p0.tif", np.zeros((8, 8), np.uint16))
    assert callable(get_reader(str(tmp_path)))
    assert callable(get_reader([str(tmp_path / "p0.tif"), str(tmp_path / "p0.tif")]))
    assert get_reader([str(tmp_path / "p0.tif"), str(tmp_path / "a.png")]) is None


def test_reader_hyperstack_layers_names_scales():
    path = require_shared("czitools_celldivision_2ch_zstack.tif")
    layers = get_reader(str(path))(str(path))
    assert [t for _, _, t in layers] == ["image", "image"]
    (d0, k0, _), (d1, k1, _) = layers
    assert d0.shape == d1.shape == (3, 5, 170, 240)
    assert k0["name"].endswith("C0") and k1["name"].endswith("C1")
    assert k0["scale"] == pytest.approx((1.0, 0.32, 0.0905767, 0.0905767), rel=1e-5)
    assert k0["blending"] == "additive" and k0["colormap"] != k1["colormap"]


def test_reader_single_channel_named_by_stain_and_2d(tmp_path):
    path = require_shared("deconwolf_dapi_widefield_zstack.tif")
    ((data, kw, _),) = get_reader(str(path))(str(path))
    assert data.shape == (40, 201, 101)
    assert kw["name"] == "deconwolf_dapi_widefield_zstack [nucleus]"
    assert kw["metadata"]["focusqa"]["stain"] == "nucleus"
    assert kw["scale"] == pytest.approx((0.3, 0.13, 0.13))
    plane = tmp_path / "plane.tif"
    tifffile.imwrite(plane, np.asarray(data[19]))
    ((d2, kw2, _),) = get_reader(str(plane))(str(plane))
    assert d2.shape == (201, 101) and kw2["scale"] == (1.0, 1.0) and kw2["name"] == "plane"


def test_reader_folder_of_planes_is_a_stack(tmp_path):
    path = require_shared("deconwolf_dapi_widefield_zstack.tif")
    stack = read_image(path).data[0, :, 0]
    folder = tmp_path / "planes"
    folder.mkdir()
    for z in (2, 0, 1, 10):  # written out of order; read sorted by name
        tifffile.imwrite(folder / f"z{z:03d}.tif", stack[z])
    img = read_folder(folder)
    assert img.data.shape == (1, 4, 1, 201, 101)
    np.testing.assert_array_equal(img.data[0, :, 0], stack[[0, 1, 2, 10]])
    ((data, kw, _),) = get_reader(str(folder))(str(folder))
    assert data.shape == (4, 201, 101) and kw["name"] == "planes"
    assert kw["metadata"]["focusqa"]["files"] == ["z000.tif", "z001.tif", "z002.tif", "z010.tif"]
    tifffile.imwrite(folder / "z011.tif", stack[11, :100])
    with pytest.raises(ImageError, match="all planes must match"):
        read_folder(folder)


def test_reader_leaves_rgb_and_broken_tiffs_to_other_readers(tmp_path):
    from napari_focusqa.io.napari_reader import read_layers

    p = tmp_path / "rgb.tif"
    tifffile.imwrite(p, np.zeros((32, 32, 3), np.uint8), photometric="rgb")
    assert get_reader(str(p)) is None  # napari's own reader shows RGB pictures
    with pytest.raises(ImageError, match="RGB"):
        read_layers(str(p))
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\0" + b"\0" * 60)
    assert get_reader(str(broken)) is None


def test_default_edge_width():
    assert default_edge_width(84) == 3.0
    assert default_edge_width(84, (1024, 1024)) == 3.0
    assert default_edge_width(84, (4096, 3000)) == pytest.approx(10.2)
    assert default_edge_width(84, (40000, 40000)) == 14.0  # capped at 1/6 patch


def test_patch_centres_geometry():
    grid = make_grid((170, 240), 84)
    c = patch_centres(grid.boxes())
    assert c.shape == (9, 2)
    # first box: pixels 0..83 cover -0.5..83.5 in napari data coordinates -> centre 41.5
    np.testing.assert_allclose(c[0], [41.5, 41.5])
    # last box is aligned to the bottom-right edge of the image: its square ends there
    np.testing.assert_allclose(c[8] + 42, [170 - 0.5, 240 - 0.5])
    with pytest.raises(FocusQAError, match="boxes"):
        patch_centres(np.array([[5, 5, 5, 9]]))


def test_build_overlay_matches_core(sharpness_model):
    path = require_shared("deconwolf_dapi_widefield_zstack.tif")
    stack = read_image(path).data[0, 15:25, 0]
    sr = assess_stack(stack, sharpness_model)
    ov = build_overlay(sr.channels[0])
    grid = sr.channels[0].slices[0].grid
    assert ov.patches_per_slice == grid.n_patches == 6
    assert ov.coords.shape == (10 * 6, 3) and ov.n_slices == 10
    np.testing.assert_array_equal(ov.coords[:, 0], np.repeat(np.arange(10), 6))
    np.testing.assert_allclose(ov.coords[:6, 1:], patch_centres(grid.boxes()))
    # squares fit inside their patch with their border: neighbours never overlap
    assert ov.size + ov.border_width <= grid.patch_size
    assert ov.nbytes < 200 * len(ov.coords)
    f = ov.features
    np.testing.assert_array_equal(f["z"], np.repeat(np.arange(10), 6))
    for z, res in enumerate(sr.channels[0].slices):
        rows = f[f["z"] == z]
        np.testing.assert_array_equal(rows["level"], res.patch_level.ravel())
        np.testing.assert_allclose(rows["certainty"], res.patch_certainty.ravel(), rtol=1e-6)
        np.testing.assert_allclose(rows["expected_level"], res.patch_expected_level.ravel(),
                                   rtol=1e-6)
        np.testing.assert_allclose(rows[[f"p{k}" for k in range(11)]].to_numpy(),
                                   res.probabilities.reshape(-1, 11), rtol=1e-6)
    np.testing.assert_allclose(
        ov.border_color, patch_colors(f["level"], f["certainty"], f["empty"], 11), atol=1e-6)
    # patches without structure are grey; the plane's verdict is on each of its patches
    np.testing.assert_allclose(ov.border_color[f["empty"].to_numpy(), :3],
                               np.broadcast_to(EMPTY_RGB, (int(f["empty"].sum()), 3)), atol=1e-6)
    for z, res in enumerate(sr.channels[0].slices):
        np.testing.assert_array_equal(f["empty"][f["z"] == z], res.empty.ravel())
        assert set(f["verdict"][f["z"] == z]) == {res.verdict}
    np.testing.assert_array_equal(f[["y0", "x0", "y1", "x1"]].to_numpy()[:6],
                                  grid.boxes().reshape(-1, 4))
    # a 2D overlay of one image
    one = assess_image(stack[5], sharpness_model)
    ov2 = build_overlay([one], two_d=True)
    assert ov2.coords.shape == (6, 2)
    with pytest.raises(FocusQAError, match="SF only"):
        build_overlay([assess_image(stack[5])])


def test_writer_patch_table(tmp_path, sharpness_model):
    path = require_shared("deconwolf_dapi_widefield_zstack.tif")
    stack = read_image(path).data[0, 18:21, 0]
    ov = build_overlay(assess_stack(stack, sharpness_model).channels[0])
    meta = {"features": ov.features, "metadata": {"focusqa": {"image_layer": "dapi",
                                                              "model": "test-sharpness"}}}
    (out,) = write_patches(str(tmp_path / "p.csv"), list(ov.coords), meta)
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 18 and rows[0]["image_layer"] == "dapi"
    np.testing.assert_array_equal([int(r["level"]) for r in rows], ov.features["level"])
    (outj,) = write_patches(str(tmp_path / "p.json"), list(ov.coords), meta)
    doc = json.loads(Path(outj).read_text())
    assert doc["patches"][5]["certainty"] == pytest.approx(ov.features["certainty"][5])
    with pytest.raises(FocusQAError, match=r"\.csv or \.json"):
        write_patches(str(tmp_path / "p.txt"), list(ov.coords), meta)
    with pytest.raises(FocusQAError, match="not a FocusQA patch layer"):
        patch_records([], {"features": None})
