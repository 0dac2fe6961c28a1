"""Derived outputs: best-focus substack (+ CLI --extract), height map and all-in-focus
composite, level map, certainty-ranked montage."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from conftest import require_shared

from napari_focusqa.cli import main
from napari_focusqa.core.errors import FocusQAError
from napari_focusqa.core.patches import make_grid
from napari_focusqa.core.zstack import assess_stack
from napari_focusqa.io import read_image
from napari_focusqa.io.sample_data import make_sample_stack
from napari_focusqa.outputs import (
    all_in_focus,
    composite_from_stack,
    extract_substack,
    height_map,
    level_map,
    montage,
    patch_scores,
    substack_window,
    write_substack,
)


def test_substack_window_stays_inside_and_keeps_its_length():
    assert substack_window(21, 10, 2) == [8, 9, 10, 11, 12]
    assert substack_window(21, 0, 2) == [0, 1, 2, 3, 4]  # shifted, not cut
    assert substack_window(21, 20, 1) == [18, 19, 20]
    assert substack_window(5, 2, 0) == [2]
    with pytest.raises(FocusQAError, match="planes"):
        substack_window(3, 1, 2)
    with pytest.raises(FocusQAError, match="best"):
        substack_window(3, 5, 0)


def test_extract_substack_per_channel_and_reference():
    img = make_sample_stack()  # Hoechst focus z = 10, Phalloidin z = 11 (by design)
    zcyx = img.data[0]
    sub = extract_substack(zcyx, [10, 11], planes=1)
    assert sub.data.shape == (3, 2) + zcyx.shape[2:]
    assert sub.z_indices == [[9, 10, 11], [10, 11, 12]]
    np.testing.assert_array_equal(sub.data[1, 0], zcyx[10, 0])
    np.testing.assert_array_equal(sub.data[1, 1], zcyx[11, 1])
    ref = extract_substack(zcyx, [10, 11], reference_channel=0)
    assert ref.z_indices == [[10], [10]] and ref.data.shape[0] == 1
    np.testing.assert_array_equal(ref.data[0, 1], zcyx[10, 1])
    with pytest.raises(FocusQAError, match="reference_channel"):
        extract_substack(zcyx, [10, 11], reference_channel=2)
    with pytest.raises(FocusQAError, match="one plane per channel"):
        extract_substack(zcyx, [10])


def test_cli_zstack_extract_writes_the_best_planes(tmp_path, capsys):
    path = require_shared("deconwolf_dapi_widefield_zstack.tif")
    out, js = tmp_path / "best.tif", tmp_path / "z.json"
    assert main(["zstack", str(path), "--model", "none", "--json", str(js),
                 "--extract", str(out), "--planes", "2"]) == 0
    best = json.loads(js.read_text())["channels"][0]["best_z_index"]
    assert abs(best - 19) <= 2  # the documented focus of this stack
    stack = read_image(path).data[0, :, 0]
    with tifffile.TiffFile(out) as tf:
        got = tf.asarray()
        assert tf.imagej_metadata["spacing"] == pytest.approx(0.3)
        info = json.loads(tf.imagej_metadata["Info"])["focusqa_substack"]
    assert got.shape == (5,) + stack.shape[1:]
    np.testing.assert_array_equal(got, stack[best - 2: best + 3])
    assert info["z_indices"] == [list(range(best - 2, best + 3))]
    # bad input: exit 2 with one line naming the option
    assert main(["zstack", str(path), "--model", "none", "--extract", str(out),
                 "--reference-channel", "3"]) == 2
    assert "--reference-channel" in capsys.readouterr().err
    assert main(["zstack", str(path), "--model", "none", "--extract",
                 str(tmp_path / "x.png")]) == 2


def test_write_substack_refuses_other_suffixes(tmp_path):
    sub = extract_substack(np.zeros((3, 1, 8, 8), np.uint16), [1])
    with pytest.raises(FocusQAError, match="tif"):
        write_substack(tmp_path / "a.png", sub)
    p = write_substack(tmp_path / "a.tif", sub)
    assert tifffile.imread(p).shape == (8, 8) and not list(tmp_path.glob(".*part"))


def _tilted_stack():
    """A real in-focus field defocused by a Gaussian whose width grows with |z - z0|,
    where the focus z0 is 3 on the left half and 9 on the right half (a tilted slide)."""
    from scipy.ndimage import gaussian_filter

    field = tifffile.imread(require_shared("bbbc006_hoechst_infocus_9fields.tif"))
    sharp = np.asarray(field[0] if field.ndim == 3 else field, np.float32)[:336, :336]
    z0 = np.where(np.arange(336) < 168, 3, 9)
    stack = np.empty((13, 336, 336), np.float32)
    for z in range(13):
        left = gaussian_filter(sharp, 0.01 + 1.2 * abs(z - 3))
        right = gaussian_filter(sharp, 0.01 + 1.2 * abs(z - 9))
        stack[z] = np.where(z0[None, :] == 3, left, right)
    return sharp, stack


def test_height_map_and_composite_recover_a_tilted_focus():
    sharp, stack = _tilted_stack()
    comp, hp, hmap = composite_from_stack(stack, 84, smooth=1)
    assert hmap.shape == (4, 4)
    np.testing.assert_array_equal(hmap[:, :2], 3)
    np.testing.assert_array_equal(hmap[:, 2:], 9)
    assert hp.shape == sharp.shape and hp[:, 0].max() == 3 and hp[:, -1].min() == 9
    # the composite is close to the sharp field away from the seam; any single plane is not
    err = np.abs(comp - sharp)[:, list(range(0, 120)) + list(range(216, 336))].mean()
    best_plane = min(np.abs(stack[z] - sharp).mean() for z in range(13))
    assert err < 0.2 * best_plane
    # a height map of the wrong shape is refused
    with pytest.raises(FocusQAError, match="height"):
        all_in_focus(stack, np.zeros((3, 3)), make_grid(sharp.shape, 84))


def test_height_map_ignores_nan_and_smooths_outliers():
    s = np.zeros((5, 5, 5))
    s[2] = 1.0
    s[4, 2, 2] = 9.0  # one outlier patch
    s[:, 0, 0] = np.nan
    h0 = height_map(s, smooth=0)
    assert h0[2, 2] == 4 and h0[1, 1] == 2
    assert height_map(s, smooth=1)[2, 2] == 2
    with pytest.raises(FocusQAError, match="scores"):
        height_map(np.zeros((4, 4)))


def test_level_map_and_montage_follow_the_core(sharpness_model):
    path = require_shared("deconwolf_dapi_widefield_zstack.tif")
    stack = read_image(path).data[0, 10:30, 0]
    res = assess_stack(stack, sharpness_model).channels[0].slices
    lm = level_map(res)
    assert lm.shape == (20,) + res[0].grid.shape
    for z, r in enumerate(res):
        want = r.patch_expected_level.astype(np.float32)
        np.testing.assert_array_equal(np.isnan(lm[z]), r.empty)
        np.testing.assert_allclose(lm[z][~r.empty], want[~r.empty], rtol=1e-6)
    m = montage(stack, res, per_level=3)
    p = res[0].grid.patch_size
    assert m.image.shape == (11 * p, 3 * p)
    for lvl in range(11):
        cells = [c for c in m.cells if c["level"] == lvl]
        assert len(cells) <= 3
        assert [c["certainty"] for c in cells] == sorted((c["certainty"] for c in cells),
                                                         reverse=True)
        for j, c in enumerate(cells):
            r = res[c["z"]]
            assert r.patch_level[c["row"], c["col"]] == lvl and not r.empty[c["row"], c["col"]]
            y0, x0, y1, x1 = r.grid.boxes()[c["row"], c["col"]]
            np.testing.assert_array_equal(m.image[lvl * p:(lvl + 1) * p, j * p:(j + 1) * p],
                                          stack[c["z"], y0:y1, x0:x1])
    assert m.cells, "no patch was placed"
    with pytest.raises(FocusQAError, match="SF only"):
        level_map(assess_stack(stack[:2]).channels[0].slices)


def test_patch_scores_are_patch_sf():
    from napari_focusqa.core.metrics import spatial_frequency

    _, stack = _tilted_stack()
    grid = make_grid(stack.shape[1:], 84)
    sc = patch_scores(stack[:2], grid)
    y0, x0, y1, x1 = grid.boxes()[1, 2]
    assert sc[1, 1, 2] == pytest.approx(float(spatial_frequency(stack[1, y0:y1, x0:x1])))
