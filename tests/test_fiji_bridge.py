"""Python side of the Fiji bridge against a real ImageJ 1.x (scyjava + ij.jar) JVM.

The JVM is started once for the whole pytest session (JPype allows one per process) in
headless mode; nothing here needs a display. Tests skip without Java locally and fail
when ``FOCUSQA_REQUIRE_JAVA=1`` (CI).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import require_shared

from napari_focusqa.core.assess import RECORD_COLUMNS, assess_image
from napari_focusqa.core.colors import EMPTY_RGB, level_colors_uint8, patch_colors_uint8
from napari_focusqa.core.errors import FocusQAError, ImageError

DECONWOLF = "deconwolf_dapi_widefield_zstack.tif"
BBBC006 = "bbbc006_hoechst_infocus_9fields.tif"


@pytest.fixture(scope="session")
def ij():
    from fiji_bridge import bridge
    from fiji_bridge.testing import require_java

    require_java()
    s = bridge.start()
    yield s
    s.shutdown_threads()


def _patch_rois(ov):
    rois = [ov.get(i) for i in range(int(ov.size()))]
    return [r for r in rois if str(r.getName()).startswith("focusqa patch")]


def _rgb(color):
    return (int(color.getRed()), int(color.getGreen()), int(color.getBlue()))


# --------------------------------------------------------------------------------------
# numpy <-> ImagePlus
# --------------------------------------------------------------------------------------
@pytest.mark.java
@pytest.mark.parametrize(
    ("dtype", "bits"),
    [(np.uint8, 8), (np.uint16, 16), (np.float32, 32), (np.int16, 32), (np.float64, 32),
     (np.bool_, 8)],
)
def test_roundtrip_each_dtype(ij, dtype, bits):
    from fiji_bridge.bridge import from_imageplus, to_imageplus

    rng = np.random.default_rng(1)
    if dtype == np.bool_:
        a = rng.random((3, 37, 53)) > 0.5
    elif np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        a = rng.integers(info.min, info.max, size=(3, 37, 53), endpoint=True).astype(dtype)
    else:
        a = (rng.standard_normal((3, 37, 53)) * 1e3).astype(dtype)
    imp = to_imageplus(a, "rt", pixel_size_um=0.13, z_step_um=0.3)
    assert int(imp.getBitDepth()) == bits
    assert (int(imp.getWidth()), int(imp.getHeight()), int(imp.getNSlices())) == (53, 37, 3)
    back = from_imageplus(imp)
    assert back.data.shape == (1, 3, 1, 37, 53)
    expect = a.astype(np.uint8) if dtype == np.bool_ else a
    if bits == 32:
        np.testing.assert_array_equal(back.data[0, :, 0], expect.astype(np.float32))
    else:
        assert back.data.dtype == expect.dtype
        np.testing.assert_array_equal(back.data[0, :, 0], expect)
    assert back.pixel_size_um == pytest.approx(0.13)
    assert back.z_step_um == pytest.approx(0.3)
    # extremes survive the signed Java types (byte/short)
    if dtype in (np.uint8, np.uint16):
        imp2 = to_imageplus(np.array([[0, np.iinfo(dtype).max]], dtype=dtype))
        assert from_imageplus(imp2).data.ravel().tolist() == [0, np.iinfo(dtype).max]
        assert float(imp2.getProcessor().getf(1, 0)) == np.iinfo(dtype).max


@pytest.mark.java
def test_hyperstack_dims_order_and_channel_names(ij):
    from fiji_bridge.bridge import from_imageplus, to_imageplus

    t, z, c, y, x = 2, 3, 2, 20, 30
    a = np.arange(t * z * c * y * x, dtype=np.uint16).reshape(t, z, c, y, x)
    imp = to_imageplus(a, "hs", axes="TZCYX", channel_names=["DAPI", "GFP"])
    assert (int(imp.getNChannels()), int(imp.getNSlices()), int(imp.getNFrames())) == (c, z, t)
    assert bool(imp.isHyperStack())
    # ImageJ's own indexing agrees with numpy's: plane (c=2, z=3, t=1)
    idx = int(imp.getStackIndex(2, 3, 1))
    plane = np.asarray(imp.getStack().getPixels(idx), dtype=np.int16).view(np.uint16)
    np.testing.assert_array_equal(plane.reshape(y, x), a[0, 2, 1])
    back = from_imageplus(imp)
    np.testing.assert_array_equal(back.data, a)
    assert back.channel_names == ["DAPI", "GFP"]
    assert back.stains[0] == "nucleus"
    # axes given explicitly in another order
    czyx = np.ascontiguousarray(np.moveaxis(a[0], 1, 0))  # (C, Z, Y, X)
    imp2 = to_imageplus(czyx, axes="CZYX")
    np.testing.assert_array_equal(from_imageplus(imp2).data[0], a[0])


@pytest.mark.java
def test_converter_errors_name_the_parameter(ij):
    from fiji_bridge.bridge import from_imageplus, to_imageplus

    with pytest.raises(ImageError, match="data"):
        to_imageplus(np.zeros((10, 10), np.complex64))
    with pytest.raises(ImageError, match="axes"):
        to_imageplus(np.zeros((2, 10, 10), np.uint8), axes="YX")
    with pytest.raises(ImageError, match="axes"):
        to_imageplus(np.zeros((2, 10, 10), np.uint8), axes="QYX")
    with pytest.raises(ImageError, match="channel_names"):
        to_imageplus(np.zeros((2, 10, 10), np.uint8), axes="CYX", channel_names=["a"])
    with pytest.raises(ImageError, match="pixel_size_um"):
        to_imageplus(np.zeros((10, 10), np.uint8), pixel_size_um=-1.0)
    rgb = ij.jimport("ij.IJ").createImage("rgb", "RGB black", 8, 8, 1)
    with pytest.raises(ImageError, match="RGB"):
        from_imageplus(rgb)


@pytest.mark.java
def test_opened_tiff_matches_python_reader(ij):
    """ImageJ's own TIFF reader and FocusQA's agree on pixels and calibration."""
    from fiji_bridge.bridge import from_imageplus
    from napari_focusqa.io import read_image

    path = require_shared(DECONWOLF)
    imp = ij.IJ.openImage(str(path))
    d = from_imageplus(imp)
    ref = read_image(path)
    np.testing.assert_array_equal(d.data, ref.data)
    assert d.z_step_um == pytest.approx(ref.z_step_um)
    assert d.pixel_size_um == pytest.approx(ref.pixel_size_um, rel=1e-4)
    assert d.path == str(path)


# --------------------------------------------------------------------------------------
# Overlay
# --------------------------------------------------------------------------------------
@pytest.mark.java
def test_overlay_rectangles_equal_focus_result(ij, sharpness_model):
    import tifffile

    from fiji_bridge.bridge import result_overlay, to_imageplus

    img = tifffile.imread(require_shared(BBBC006))[0]  # (520, 696) uint16, real Hoechst
    res = assess_image(img, str(sharpness_model))
    imp = to_imageplus(img)
    ov = result_overlay(res, imp=imp)
    rects = _patch_rois(ov)
    assert len(rects) == res.grid.n_patches == 7 * 9
    boxes = res.grid.boxes()
    colours = patch_colors_uint8(res.patch_level, res.patch_certainty, res.empty, res.num_classes)
    grey = tuple(round(v * 255) for v in EMPTY_RGB)
    assert 0 < int(res.empty.sum()) < res.grid.n_patches  # sparse nuclei: some patches empty
    seen = set()
    for roi in rects:
        b = roi.getBounds()
        name = str(roi.getName())
        r = int(name.split(" r")[1].split()[0])
        c = int(name.split(" r")[1].split()[1][1:])
        y0, x0, y1, x1 = boxes[r, c]
        # drawn 1 px inside the patch, like the CLI overlay PNG
        assert (int(b.x), int(b.y), int(b.width), int(b.height)) == (
            x0 + 1, y0 + 1, x1 - x0 - 2, y1 - y0 - 2)
        assert _rgb(roi.getStrokeColor()) == tuple(int(v) for v in colours[r, c])
        assert f"level {res.patch_level[r, c]} " in name
        # patches without structure: neutral grey and named so; the others by level
        assert name.endswith("no structure") == bool(res.empty[r, c])
        assert (_rgb(roi.getStrokeColor()) == grey) == bool(res.empty[r, c])
        assert int(roi.getPosition()) == 0  # single plane: shown everywhere
        seen.add((r, c))
    assert len(seen) == 63
    # the legend: one filled square per level with the map's full-certainty colour
    legend = [ov.get(i) for i in range(int(ov.size())) if "legend level" in str(ov.get(i).getName())]
    assert len(legend) == res.num_classes
    full = level_colors_uint8(np.arange(11), np.ones(11), 11)
    assert [_rgb(r.getFillColor()) for r in legend] == [tuple(int(v) for v in c) for c in full]
    nostruct = [ov.get(i) for i in range(int(ov.size()))
                if str(ov.get(i).getName()) == "focusqa legend no structure"]
    assert len(nostruct) == 1 and _rgb(nostruct[0].getFillColor()) == grey
    # more than one distinct colour: the map really varies over this real image
    assert len({_rgb(r.getStrokeColor()) for r in rects}) > 1


@pytest.mark.java
def test_assess_imageplus_stack_positions_best_slice(ij, sharpness_model):
    from fiji_bridge.bridge import StackResult, assess_imageplus
    from napari_focusqa.pipeline import assess_file

    path = require_shared(DECONWOLF)
    imp = ij.IJ.openImage(str(path))
    out = assess_imageplus(imp, str(sharpness_model))
    assert isinstance(out.result, StackResult)
    # the core's (fused) best slice for this model, as the CLI gives it from the file
    ref = assess_file(path, str(sharpness_model), "stack")[0].channels[0]
    assert out.best_z_index[0] == ref.best_z_index
    assert abs(out.result.channels[0].best_z_index_sf - 19) <= 1  # documented focus
    assert int(imp.getCurrentSlice()) == out.best_z_index[0] + 1
    ov = imp.getOverlay()
    assert ov is not None and int(ov.size()) == int(out.overlay.size())
    rects = _patch_rois(ov)
    curve = out.result.channels[0]
    per_slice = curve.slices[0].grid.n_patches
    assert per_slice == 3 * 2  # 201 x 101 image, 84 px patches, edge-aligned extra row/col
    assert len(rects) == 40 * per_slice
    positions = sorted(int(r.getPosition()) for r in rects)
    assert positions == sorted(z for z in range(1, 41) for _ in range(per_slice))
    # colours of slice 20 equal that slice's FocusResult
    s = curve.slices[19]
    want = patch_colors_uint8(s.patch_level, s.patch_certainty, s.empty, s.num_classes).reshape(-1, 3)
    got = [_rgb(r.getStrokeColor()) for r in rects if int(r.getPosition()) == 20]
    assert sorted(got) == sorted(tuple(int(v) for v in w) for w in want)
    assert int(out.table.size()) == 40
    assert int(out.patch_table.size()) == 240


# --------------------------------------------------------------------------------------
# ResultsTable == CLI CSV
# --------------------------------------------------------------------------------------
@pytest.mark.java
def test_results_table_equals_cli_csv(ij, sharpness_model, tmp_path):
    from fiji_bridge.bridge import assess_imageplus, table_to_records
    from napari_focusqa.cli import main

    path = require_shared(DECONWOLF)
    out_csv = tmp_path / "cli.csv"
    assert main(["assess", str(path), "--model", str(sharpness_model), "--csv", str(out_csv)]) == 0
    with open(out_csv, newline="") as fh:
        reader = csv.DictReader(fh)
        cli_cols = reader.fieldnames
        cli_rows = list(reader)
    imp = ij.IJ.openImage(str(path))
    out = assess_imageplus(imp, str(sharpness_model), file=str(path))
    headings = [str(h) for h in out.table.getHeadings() if str(h) not in (" ", "Label")]
    # a z-stack is assessed with its stack context in both: each plane also has its SF
    # relative to the channel's best, as in `focusqa zstack --json`
    assert "stack_sf_ratio" in cli_cols and sorted(headings) == sorted(cli_cols)
    assert headings[: len(RECORD_COLUMNS)] == list(RECORD_COLUMNS)
    rows = table_to_records(out.table)
    assert len(rows) == len(cli_rows) == 40
    zs = tmp_path / "zstack.json"
    assert main(["zstack", str(path), "--model", str(sharpness_model), "--json", str(zs)]) == 0
    assert [r["verdict"] for r in rows] == json.loads(zs.read_text())["channels"][0]["verdict"]
    sf = np.array([r["sf"] for r in rows])
    assert [r["stack_sf_ratio"] for r in rows] == pytest.approx(sf / sf.max(), abs=1e-6)
    for got, want in zip(rows, cli_rows):
        for col in cli_cols:
            g, w = got[col], want[col]
            if isinstance(g, float):
                assert g == pytest.approx(float(w), rel=1e-12, abs=1e-12), col
            else:
                assert g == w, col
    assert rows[19]["z_index"] == 19.0 and rows[19]["stain"] == cli_rows[19]["stain"]
    # the verdict columns are there, as the CLI writes them
    assert {"verdict", "structured_fraction"} <= set(headings)
    assert {r["verdict"] for r in rows} <= {"in_focus", "out_of_focus", "no_structure"}
    assert all(0.0 <= r["structured_fraction"] <= 1.0 for r in rows)


@pytest.mark.java
def test_shipped_model_best_slice_is_the_documented_focus(ij):
    """With the default shipped model the bridge's best slice is the stack's documented
    focus (z index 19), and the Results carry the core's verdicts."""
    from fiji_bridge.bridge import assess_imageplus, table_to_records
    from napari_focusqa.core.model import default_model_id

    if default_model_id() is None:
        pytest.skip("no shipped model installed")
    imp = ij.IJ.openImage(str(require_shared(DECONWOLF)))
    out = assess_imageplus(imp, "default")
    assert abs(out.best_z_index[0] - 19) <= 1
    assert int(imp.getCurrentSlice()) == out.best_z_index[0] + 1
    rows = table_to_records(out.table)
    assert [r["verdict"] for r in rows] == [s.verdict for s in out.result.planes()]
    # the ImagePlus keeps the file's Info (NA 1.45, 461 nm) and pixel size: the verdicts
    # use that instrument's threshold, as `focusqa zstack` does on the file
    from napari_focusqa.pipeline import assess_file

    cli = assess_file(require_shared(DECONWOLF), "default", mode="stack")[0]
    assert [r["verdict"] for r in rows] == [s.verdict for s in cli.channels[0].slices]
    assert rows[19]["verdict"] == "in_focus"


@pytest.mark.java
def test_results_table_without_model_has_empty_model_cells(ij):
    from fiji_bridge.bridge import results_table, table_to_records

    rng = np.random.default_rng(0)
    res = assess_image(rng.random((90, 90)).astype(np.float32), None, source={"file": "x"})
    rows = table_to_records(results_table(res))
    assert rows[0]["model"] == "" and rows[0]["predicted_level"] == ""
    assert rows[0]["sf"] == pytest.approx(res.to_record()["sf"])


# --------------------------------------------------------------------------------------
# pyimagej path (Fiji.app): fake locally, real only where FOCUSQA_FIJI_DIR exists
# --------------------------------------------------------------------------------------
def test_pyimagej_init_is_called_with_fiji_dir_and_mode(tmp_path, monkeypatch):
    """Only the call into pyimagej is faked: no Fiji.app can be downloaded here."""
    from fiji_bridge import jvm

    calls = []
    fake = types.ModuleType("imagej")
    fake.init = lambda *a, **kw: calls.append((a, kw)) or "gateway"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "imagej", fake)
    (tmp_path / "jars").mkdir()
    d = jvm._check_fiji_dir(tmp_path)
    assert jvm._init_pyimagej(d, "interactive") == "gateway"
    assert calls == [((str(d),), {"mode": "interactive"})]


def test_fiji_dir_and_mode_errors(tmp_path):
    from fiji_bridge import bridge, jvm

    with pytest.raises(FocusQAError, match="fiji_dir"):
        jvm._check_fiji_dir(tmp_path / "missing")
    with pytest.raises(FocusQAError, match="fiji_dir"):
        jvm._check_fiji_dir(tmp_path)  # no jars/
    with pytest.raises(FocusQAError, match="mode"):
        bridge.start(mode="window")
    with pytest.raises(FocusQAError, match="ij_jar"):
        bridge.find_ij_jar(tmp_path / "nope.jar")


@pytest.mark.java
def test_real_fiji_via_pyimagej():
    """Runs only where a Fiji.app exists (FOCUSQA_FIJI_DIR), in its own process."""
    fiji = os.environ.get("FOCUSQA_FIJI_DIR")
    if not fiji:
        pytest.skip("FOCUSQA_FIJI_DIR not set: no Fiji.app here (Fiji downloads unreachable)")
    code = textwrap.dedent(
        """
        import numpy as np
        from fiji_bridge import bridge
        s = bridge.start(mode="headless")
        assert s.backend == "pyimagej", s
        a = np.arange(2 * 30 * 40, dtype=np.uint16).reshape(2, 30, 40)
        imp = bridge.to_imageplus(a)
        assert np.array_equal(bridge.from_imageplus(imp).data[0, :, 0], a)
        print("ok", s.version)
        """
    )
    env = dict(os.environ, FOCUSQA_FIJI_DIR=str(Path(fiji)))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=600)
    assert p.returncode == 0 and "ok" in p.stdout, p.stderr


@pytest.mark.java
def test_hyperstack_overlay_uses_channel_slice_frame(ij, sharpness_model):
    """Real 2-channel time-lapse z-stack: rectangles carry (c, z, t) of their plane."""
    from fiji_bridge.bridge import assess_imageplus

    path = require_shared("czitools_celldivision_2ch_zstack.tif")
    imp = ij.IJ.openImage(str(path))
    assert (int(imp.getNChannels()), int(imp.getNSlices()), int(imp.getNFrames())) == (2, 5, 3)
    imp.setPosition(2, 1, 2)
    out = assess_imageplus(imp, str(sharpness_model), frame=1)
    rects = _patch_rois(imp.getOverlay())
    per_plane = out.result.channels[0].slices[0].grid.n_patches
    assert len(rects) == 2 * 5 * per_plane
    got = sorted((int(r.getCPosition()), int(r.getZPosition()), int(r.getTPosition())) for r in rects)
    assert got == sorted((c, z, 2) for c in (1, 2) for z in range(1, 6) for _ in range(per_plane))
    # records in CLI order (z outer, channel inner) and tagged with the frame
    assert [(r["z_index"], r["channel_index"]) for r in out.records[:3]] == [(0, 0), (0, 1), (1, 0)]
    assert all(r["t_index"] == 1 for r in out.records)
    # the stack now shows the best slice of the current channel (2), same frame
    assert (int(imp.getChannel()), int(imp.getFrame())) == (2, 2)
    assert int(imp.getSlice()) == out.best_z_index[1] + 1


@pytest.mark.java
def test_session_run_macro_and_to_python(ij):
    """IJ.runMacro in the headless session: pure computation macros work without a display."""
    assert str(ij.run_macro('return "" + (6 * 7);')) == "42"
    from fiji_bridge.convert import to_python

    imp = ij.IJ.createImage("ramp", "16-bit ramp", 64, 8, 1)
    d = to_python(imp, ij)
    row = d.data[0, 0, 0, 0]
    assert row.dtype == np.uint16 and np.all(np.diff(row.astype(int)) >= 0) and row[-1] > row[0]


@pytest.mark.java
def test_show_table_refuses_headless(ij):
    from fiji_bridge.bridge import FijiError, assess_imageplus, to_imageplus

    imp = to_imageplus(np.zeros((90, 90), np.uint16))
    with pytest.raises(FijiError, match="show_table"):
        assess_imageplus(imp, None, show_table=True)
    # a single plane: no stack context column, and a blank frame has no structure
    rec = assess_imageplus(imp, None).records[0]
    assert "stack_sf_ratio" not in rec and rec["verdict"] == "no_structure"
    assert rec["structured_fraction"] == 0.0
