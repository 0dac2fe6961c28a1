"""Batch output: parquet part files (bounded memory), every series and time point,
verdict columns, and the plate grid."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from napari_focusqa import batch
from napari_focusqa.core.assess import assess_image
from napari_focusqa.testing import blob_image, write_small_images

VERDICTS = {"in_focus", "out_of_focus", "no_structure"}


def _cells(rng: np.random.Generator, shape=None, sigma=0.0) -> np.ndarray:
    return blob_image(rng, shape or (168, 168), sigma)


# --------------------------------------------------------------------------- parquet
def test_parquet_sink_writes_each_row_once_with_bounded_memory(tmp_path) -> None:
    out = tmp_path / "t.parquet"
    sink = batch.ParquetSink(out, batch.PLANE_COLUMNS, flush_rows=10)
    seen: dict[str, tuple[int, int, int]] = {}
    for k in range(12):
        rows = [batch.normalise_row({"file": f"f{k}.tif", "z_index": z, "sf": float(z),
                                     "file_rows": 4, "attempts": 1}, batch.PLANE_COLUMNS)
                for z in range(4)]
        sink.write(rows)
        assert len(sink.pending) < 10 + 4  # never more than one flush's worth in memory
        for p in sorted(out.glob("part-*.parquet")):
            st = p.stat()
            sig = (st.st_ino, st.st_mtime_ns, st.st_size)
            assert seen.setdefault(p.name, sig) == sig  # a written part is never rewritten
    sink.close()
    parts = sorted(out.glob("part-*.parquet"))
    assert len(parts) == 4  # 48 rows in flushes of >= 10 rows, whole files: 3 x 4 rows each
    rows = batch.read_results(out)
    assert [(r["file"], r["z_index"]) for r in rows] == [
        (f"f{k}.tif", z) for k in range(12) for z in range(4)]
    pd = pytest.importorskip("pandas")
    assert len(pd.read_parquet(out)) == 48  # readers take the folder as one table


def test_parquet_batch_output_is_a_folder_of_parts_matching_csv(tmp_path) -> None:
    write_small_images(tmp_path / "in", 12, size=128)
    a = batch.run_batch([tmp_path / "in"], tmp_path / "a.parquet", workers=0,
                        progress=False, log=None)
    b = batch.run_batch([tmp_path / "in"], tmp_path / "a.csv", workers=0, progress=False,
                        log=None)
    assert a.exit_code == b.exit_code == 0
    assert (tmp_path / "a.parquet").is_dir()
    assert (tmp_path / "a.parquet" / "_focusqa.json").is_file()
    assert (tmp_path / "a.csv.focusqa.json").is_file()
    assert batch.read_results(tmp_path / "a.parquet") == batch.read_results(tmp_path / "a.csv")


# --------------------------------------------------------------------------- series / t
def test_every_series_of_a_multi_position_file_gets_rows(tmp_path, sharpness_model) -> None:
    rng = np.random.default_rng(4)
    imgs = [_cells(rng), _cells(rng, sigma=6.0), _cells(rng, sigma=2.0)]
    p = tmp_path / "positions_A01.ome.tif"
    with tifffile.TiffWriter(p, ome=True) as tw:
        for img in imgs:
            tw.write(img, metadata={"axes": "YX"})
    out = tmp_path / "s.csv"
    s = batch.run_batch([p], out, model=sharpness_model, workers=0, progress=False, log=None)
    assert s.exit_code == 0
    rows = sorted(batch.read_results(out), key=lambda r: r["series"])
    assert [r["series"] for r in rows] == [0, 1, 2]
    for r, img in zip(rows, imgs):
        ref = assess_image(img, sharpness_model)
        assert r["sf"] == pytest.approx(ref.sf, rel=1e-6)
        assert r["predicted_level"] == ref.predicted_level
        assert r["well"] == "A01" and r["file_rows"] == 3


def test_zstack_mode_gives_one_row_per_time_point(tmp_path, sharpness_model) -> None:
    rng = np.random.default_rng(8)
    sharp = _cells(rng).astype(np.float32)
    focus = [1, 3, 5]  # the focus drifts over time
    tz = np.stack([
        np.stack([ndimage.gaussian_filter(sharp, 1.5 * abs(z - f)) if z != f else sharp
                  for z in range(7)]) for f in focus])
    p = tmp_path / "timelapse_B02.tif"
    tifffile.imwrite(p, tz.astype(np.uint16), imagej=True,
                     metadata={"axes": "TZYX", "spacing": 0.5})
    out = tmp_path / "z.parquet"
    s = batch.run_batch([p], out, model=sharpness_model, workers=0, zstack=True,
                        progress=False, log=None)
    assert s.exit_code == 0
    rows = sorted(batch.read_results(out), key=lambda r: r["t_index"])
    assert [r["t_index"] for r in rows] == [0, 1, 2]
    assert [r["best_z_index"] for r in rows] == focus
    assert all(r["n_slices"] == 7 and r["well"] == "B02" for r in rows)
    assert all(r["verdict"] in VERDICTS and 0 <= r["structured_fraction"] <= 1 for r in rows)


# --------------------------------------------------------------------------- verdicts
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_verdict_columns_flow_into_the_table(tmp_path, sharpness_model, suffix) -> None:
    rng = np.random.default_rng(3)
    d = tmp_path / "in"
    d.mkdir()
    tifffile.imwrite(d / "P1_A01_s1_w1.tif", _cells(rng))
    tifffile.imwrite(d / "P1_A02_s1_w1.tif", _cells(rng, sigma=8.0))
    tifffile.imwrite(d / "P1_A03_s1_w1.tif", np.full((168, 168), 100, np.uint16))  # empty
    out = tmp_path / f"v{suffix}"
    batch.run_batch([d], out, model=sharpness_model, workers=0, progress=False, log=None)
    rows = {r["well"]: r for r in batch.read_results(out)}
    for well, r in rows.items():
        ref = assess_image(np.asarray(tifffile.imread(d / f"P1_{well}_s1_w1.tif")),
                           sharpness_model)
        assert r["verdict"] == ref.verdict
        assert r["structured_fraction"] == pytest.approx(ref.structured_fraction, abs=1e-6)
    assert rows["A03"]["verdict"] == "no_structure" and rows["A01"]["verdict"] in VERDICTS


# --------------------------------------------------------------------------- plate grid
def test_plate_grid_from_a_batch_table(tmp_path, sharpness_model) -> None:
    rng = np.random.default_rng(6)
    d = tmp_path / "plate"
    d.mkdir()
    for well, sigma in (("A01", 0.0), ("A02", 7.0), ("C05", 0.0)):
        for site in (1, 2):
            tifffile.imwrite(d / f"P1_{well}_s{site}_w1.tif", _cells(rng, sigma=sigma))
    (d / "P1_B01_s1_w1.tif").write_bytes(b"broken")  # an error row: not on the map
    out = tmp_path / "p.csv"
    batch.run_batch([d], out, model=sharpness_model, workers=0, progress=False, log=None)
    table = batch.read_results(out)
    rows, cols, levels = batch.plate_grid(table, "level")
    assert rows == list("ABCDEFGH") and cols == list(range(1, 13))  # a 96-well plate
    assert levels.shape == (8, 12)
    by = {}
    for r in table:
        if not r["error"]:
            by.setdefault(r["well"], []).append(r["predicted_level"])
    assert levels[0, 0] == pytest.approx(np.mean(by["A01"]))
    assert levels[2, 4] == pytest.approx(np.mean(by["C05"]))
    assert levels[0, 1] > levels[0, 0]  # the blurred well is more defocused
    assert np.isnan(levels[1, 0])  # the broken file's well
    assert int(np.isfinite(levels).sum()) == 3
    _, _, verdicts = batch.plate_grid(out, "verdict")  # a path works too
    assert verdicts[1, 0] is None and {verdicts[0, 0], verdicts[0, 1], verdicts[2, 4]} <= VERDICTS
    a01 = [r["verdict"] for r in table if r["well"] == "A01"]
    assert verdicts[0, 0] in a01
    pd = pytest.importorskip("pandas")
    _, _, from_df = batch.plate_grid(pd.DataFrame(table), "predicted_level")
    np.testing.assert_array_equal(np.isnan(from_df), np.isnan(levels))


def test_plate_grid_picks_the_plate_format_and_refuses_no_wells() -> None:
    rows, cols, v = batch.plate_grid([{"well": "P24", "sf": 2.0}, {"well": "A01", "sf": 4.0}],
                                     "sf")
    assert (len(rows), len(cols)) == (16, 24) and v[15, 23] == 2.0 and v[0, 0] == 4.0
    rows, cols, v = batch.plate_grid([{"well": "B03", "sf": 1.0}], "sf", shape=(4, 6))
    assert (len(rows), len(cols)) == (4, 6) and v[1, 2] == 1.0  # a 24-well plate, if asked
    with pytest.raises(batch.BatchError, match="plate: well C07 .* 4 x 6"):
        batch.plate_grid([{"well": "C07", "sf": 1.0}], "sf", shape=(4, 6))
    with pytest.raises(batch.BatchError, match="plate: no rows with a well"):
        batch.plate_grid([{"file": "x.tif", "sf": 1.0}], "sf")


def test_vendor_formats_in_a_folder_time_lapse_czi(tmp_path) -> None:
    """A real CZI time-lapse (T3 Z5 CH2): found in a folder walk, one row per t and channel."""
    pytest.importorskip("bioio_czi")
    from conftest import require_shared

    czi = require_shared("czitools_CellDivision_T3_Z5_CH2_X240_Y170.czi")
    assert batch.expand_inputs([czi.parent]).count(str(czi)) == 1
    out = tmp_path / "czi.csv"
    s = batch.run_batch([czi], out, model=None, workers=0, zstack=True, progress=False,
                        log=None)
    assert s.exit_code == 0, s.failures
    rows = batch.read_results(out)
    assert sorted((r["t_index"], r["channel_index"]) for r in rows) == [
        (t, c) for t in range(3) for c in range(2)]
    assert all(r["n_slices"] == 5 and 0 <= r["best_z_index"] < 5 for r in rows)
