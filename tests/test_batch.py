"""``focusqa batch``: plate names, mixed good/corrupt folders, resume after a kill, dask."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from napari_focusqa import batch
from napari_focusqa.cli import main
from napari_focusqa.core.assess import assess_image
from napari_focusqa.testing import blob_image

REPO = Path(__file__).resolve().parents[1]


def _cells(rng: np.random.Generator, shape=None, sigma=0.0) -> np.ndarray:
    return blob_image(rng, shape or (200, 260), sigma, n=60)


def _make_plate(folder: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    good = {}
    for well, sigma in (("A01", 0.0), ("A02", 6.0), ("B01", 0.0)):
        for site in (1, 2):
            p = folder / f"P1_{well}_s{site}_w1.tif"
            img = _cells(rng, sigma=sigma)
            tifffile.imwrite(p, img)
            good[str(p)] = img
    # a 2-channel ImageJ hyperstack: one row per channel
    two = np.stack([_cells(rng), _cells(rng, sigma=5.0)])
    p = folder / "sub" / "P1_C03_s1.tif"
    p.parent.mkdir()
    tifffile.imwrite(p, two, imagej=True, metadata={"axes": "CYX"})
    good[str(p)] = two
    (folder / "P1_B02_s1_w1.tif").write_bytes(b"II*\x00" + b"\x13" * 40)  # corrupt header
    (folder / "P1_B02_s2_w1.tif").write_bytes(b"")  # empty
    whole = (folder / "P1_A01_s1_w1.tif").read_bytes()
    (folder / "P1_B03_s1_w1.tif").write_bytes(whole[: len(whole) // 2])  # truncated
    (folder / "P1_B04_s1_w1.tif").write_bytes(b"\x00" * 1000)  # not a TIFF
    (folder / "readme.txt").write_text("not an image")
    (folder / "P1_A01_s1_w1_thumb.tif").write_bytes(b"x")  # IXM thumbnail: skipped
    return good


@pytest.fixture
def plate(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    good = _make_plate(tmp_path / "plate", np.random.default_rng(7))
    return tmp_path / "plate", good


BAD = {"P1_B02_s1_w1.tif", "P1_B02_s2_w1.tif", "P1_B03_s1_w1.tif", "P1_B04_s1_w1.tif"}


# --------------------------------------------------------------------------- names
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("MyPlate_B02_s3_w2.TIF", {"plate": "MyPlate", "well": "B02", "site": 3, "name_channel": "w2"}),
        (
            "Plate 1_P24_s1_w1A1B2C3D4-1111-2222-3333-444455556666.tif",
            {"plate": "Plate 1", "well": "P24", "site": 1, "name_channel": "w1"},
        ),
        ("r02c03f04p05-ch2sk1fk1fl1.tiff", {"well": "B03", "site": 4, "plane": 5, "name_channel": "ch2"}),
        ("MFGTMP_170112_A05f07d1.TIF", {"plate": "MFGTMP_170112", "well": "A05", "site": 7, "name_channel": "d1"}),
        ("scan-H7-ch0.ome.tif", {"well": "H07"}),
        ("deconwolf_dapi.tif", {}),
    ],
)
def test_parse_plate_name(name: str, expected: dict) -> None:
    got = batch.parse_plate_name(f"/data/{name}")
    assert set(got) == set(batch.PLATE_COLUMNS)
    for k in batch.PLATE_COLUMNS:
        assert got[k] == expected.get(k), (k, got)


def test_expand_inputs_folders_globs_and_errors(plate) -> None:
    folder, good = plate
    files = batch.expand_inputs([folder])
    names = sorted(Path(f).name for f in files)
    assert "readme.txt" not in names and "P1_A01_s1_w1_thumb.tif" not in names
    assert len(files) == len(good) + len(BAD)
    assert str(folder / "sub" / "P1_C03_s1.tif") in files  # recursive
    # a glob and an explicit duplicate: kept once, in order
    g = batch.expand_inputs([str(folder / "P1_A0*_s1_w1.tif"), str(folder / "P1_A01_s1_w1.tif")])
    assert [Path(f).name for f in g] == ["P1_A01_s1_w1.tif", "P1_A02_s1_w1.tif"]
    with pytest.raises(batch.BatchError, match="INPUT: .*does not exist"):
        batch.expand_inputs([folder / "nope.tif"])
    with pytest.raises(batch.BatchError, match="matches no files"):
        batch.expand_inputs([str(folder / "*.czi")])


# --------------------------------------------------------------------------- main job
def test_mixed_folder_rows_for_all_files(plate, tmp_path, sharpness_model, capsys) -> None:
    folder, good = plate
    out = tmp_path / "res.csv"
    rc = main(["batch", str(folder), "--out", str(out), "--workers", "0",
               "--model", str(sharpness_model), "--no-progress"])
    assert rc == batch.EXIT_SOME_FAILED
    rows = batch.read_results(out)
    by_file: dict[str, list[dict]] = {}
    for r in rows:
        by_file.setdefault(Path(r["file"]).name, []).append(r)
    assert set(by_file) == {Path(p).name for p in good} | BAD
    for name in BAD:
        (r,) = by_file[name]
        assert r["error"] and r["error"].startswith("ImageError: "), r
        assert name in r["error"]
        assert r["predicted_level"] is None and r["sf"] is None
        assert r["well"] == name.split("_")[1]  # plate columns kept for failed files too
    for path, img in good.items():
        got = by_file[Path(path).name]
        planes = [img] if img.ndim == 2 else list(img)
        assert len(got) == len(planes)
        for r, plane in zip(sorted(got, key=lambda r: r["channel_index"]), planes):
            ref = assess_image(plane, sharpness_model)
            assert r["error"] is None
            assert r["predicted_level"] == ref.predicted_level
            assert r["sf"] == pytest.approx(ref.sf, rel=1e-6)
            assert r["mean_certainty"] == pytest.approx(ref.mean_certainty, abs=1e-6)
            assert r["model"] == "test-sharpness"
    # the blurred wells get a higher (more defocused) level than the sharp ones
    lv = {n: rs[0]["predicted_level"] for n, rs in by_file.items() if n not in BAD}
    assert lv["P1_A02_s1_w1.tif"] > lv["P1_A01_s1_w1.tif"]
    assert by_file["P1_A01_s2_w1.tif"][0]["plate"] == "P1"
    assert by_file["P1_A01_s2_w1.tif"][0]["site"] == 2
    summary = capsys.readouterr().out
    assert f"{len(good) + len(BAD)} files assessed" in summary
    assert "failures: 4" in summary
    assert "out of focus per channel" in summary


def test_all_good_exit_0_and_parquet_matches_csv(plate, tmp_path, sharpness_model) -> None:
    folder, good = plate
    inputs = sorted(good)
    s_csv = batch.run_batch(inputs, tmp_path / "a.csv", model=sharpness_model, workers=0,
                            progress=False, log=None)
    s_pq = batch.run_batch(inputs, tmp_path / "a.parquet", model=sharpness_model, workers=0,
                           progress=False, log=None)
    assert s_csv.exit_code == 0 and s_pq.exit_code == 0
    assert s_csv.files_done == len(good) and s_csv.rows == len(good) + 1
    a = batch.read_results(tmp_path / "a.csv")
    b = batch.read_results(tmp_path / "a.parquet")
    assert len(a) == len(b) == len(good) + 1
    for ra, rb in zip(a, b):
        assert ra == rb
    # out-of-focus counts: the A02 wells are blurred by sigma 6
    n_out = sum(r["in_focus"] is False for r in a)
    assert sum(v[0] for v in s_csv.out_of_focus.values()) == n_out >= 2


def test_existing_out_needs_resume_or_overwrite(plate, tmp_path, sharpness_model, capsys) -> None:
    folder, good = plate
    out = tmp_path / "r.csv"
    out.write_text("precious\n")
    rc = main(["batch", str(folder), "--out", str(out), "--workers", "0", "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "--out" in err and "--resume" in err and len(err.splitlines()) == 1
    assert out.read_text() == "precious\n"
    rc = main(["batch", str(folder), "--out", str(tmp_path / "r.xlsx"), "--workers", "0"])
    assert rc == 2 and "--out: expected a .csv or .parquet" in capsys.readouterr().err
    rc = main(["batch", str(folder), "--out", str(tmp_path / "m.csv"), "--workers", "0",
               "--model", str(tmp_path / "missing.json")])
    assert rc == 2 and "model" in capsys.readouterr().err
    assert not (tmp_path / "m.csv").exists()  # nothing written for a bad model


def test_sf_only_without_model(plate, tmp_path) -> None:
    folder, good = plate
    s = batch.run_batch([folder], tmp_path / "sf.csv", model=None, workers=0,
                        progress=False, log=None)
    rows = [r for r in batch.read_results(tmp_path / "sf.csv") if not r["error"]]
    assert len(rows) == len(good) + 1
    assert all(r["sf"] > 0 and r["predicted_level"] is None and r["model"] is None for r in rows)
    assert s.files_failed == len(BAD)
    assert "n/a (no model)" in s.format()


def test_resume_retry_failed_fixes_error_rows(plate, tmp_path, sharpness_model) -> None:
    folder, good = plate
    out = tmp_path / "r.parquet"
    batch.run_batch([folder], out, model=sharpness_model, workers=0, progress=False, log=None)
    # the user replaces the corrupt file by a good one and re-runs the failures only
    tifffile.imwrite(folder / "P1_B02_s1_w1.tif", _cells(np.random.default_rng(1)))
    s = batch.run_batch([folder], out, model=sharpness_model, workers=0, resume=True,
                        retry_failed=True, progress=False, log=None)
    assert s.files_skipped == len(good) and s.files_done == len(BAD)
    rows = batch.read_results(out)
    names = [Path(r["file"]).name for r in rows]
    assert names.count("P1_B02_s1_w1.tif") == 1
    fixed = next(r for r in rows if r["file"].endswith("P1_B02_s1_w1.tif"))
    assert fixed["error"] is None and fixed["predicted_level"] is not None
    assert sum(1 for r in rows if r["error"]) == len(BAD) - 1


def test_zstack_mode_finds_the_focus_slice(tmp_path, sharpness_model) -> None:
    rng = np.random.default_rng(3)
    sharp = _cells(rng, (168, 168)).astype(np.float32)
    sigmas = [abs(z - 6) * 1.5 for z in range(11)]
    stack = np.stack([ndimage.gaussian_filter(sharp, s) if s else sharp for s in sigmas])
    p = tmp_path / "stack_A03.tif"
    tifffile.imwrite(p, stack.astype(np.uint16), imagej=True, metadata={"axes": "ZYX", "spacing": 0.5})
    flat = tmp_path / "single_A04.tif"
    tifffile.imwrite(flat, sharp.astype(np.uint16))
    out = tmp_path / "z.csv"
    s = batch.run_batch([p, flat], out, model=sharpness_model, workers=0, zstack=True,
                        progress=False, log=None)
    assert s.exit_code == batch.EXIT_SOME_FAILED
    rows = {Path(r["file"]).name: r for r in batch.read_results(out)}
    r = rows["stack_A03.tif"]
    assert r["best_z_index"] == 6 and r["best_z_um"] == pytest.approx(3.0)
    assert r["n_slices"] == 11 and r["well"] == "A03" and r["error"] is None
    ref = assess_image(stack[6].astype(np.uint16), sharpness_model)
    assert r["predicted_level_at_best"] == ref.predicted_level
    assert r["in_focus_at_best"] is ref.in_focus
    assert "not a z-stack" in rows["single_A04.tif"]["error"]
    # resuming a plane-mode run on a z-stack output is refused clearly
    with pytest.raises(batch.BatchError, match="--resume"):
        batch.run_batch([p], out, workers=0, resume=True, progress=False, log=None)


def test_zstack_real_widefield_stack(tmp_path) -> None:
    from conftest import require_shared

    path = require_shared("deconwolf_dapi_widefield_zstack.tif")
    out = tmp_path / "z.csv"
    s = batch.run_batch([path], out, model=None, workers=0, zstack=True, progress=False, log=None)
    (r,) = batch.read_results(out)
    assert s.exit_code == 0
    assert r["n_slices"] == 40 and abs(r["best_z_index"] - 19) <= 2  # documented peak z≈19
    assert r["z_step_um"] == pytest.approx(0.3)


# --------------------------------------------------------------------------- kill + resume
def _count_data_lines(path: Path) -> int:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    return max(data.count(b"\n") - 1, 0)


def test_resume_after_kill_no_duplicates(tmp_path, sharpness_model) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(11)
    n = 150
    base = [_cells(rng, (336, 336), sigma=s) for s in (0.0, 3.0, 8.0)]
    for i in range(n):
        tifffile.imwrite(folder / f"img_{i:04d}.tif", base[i % 3] + np.uint16(i % 7))
    out = tmp_path / "res.csv"
    cmd = [sys.executable, "-m", "napari_focusqa", "batch", str(folder), "--out", str(out),
           "--workers", "0", "--model", str(sharpness_model), "--no-progress"]
    env = dict(os.environ, FOCUSQA_THREADS="1")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        t0 = time.monotonic()
        while _count_data_lines(out) < 10 and time.monotonic() - t0 < 60:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)  # no chance to clean up
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = batch.read_results(out)
    assert 10 <= len(before) < n, "the batch must have been interrupted mid-way"
    rc = subprocess.run(cmd + ["--resume"], cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=120)
    assert rc.returncode == 0, rc.stderr
    # every file with complete rows is kept as it is; none is assessed twice
    assert f"({len(before)} already in the output skipped)" in rc.stdout
    after = batch.read_results(out)
    names = [Path(r["file"]).name for r in after]
    assert len(names) == len(set(names)) == n
    assert set(names) == {f"img_{i:04d}.tif" for i in range(n)}
    assert after[: len(before)] == before  # what was written survives unchanged
    assert all(r["error"] is None and r["predicted_level"] is not None for r in after)


# --------------------------------------------------------------------------- dask
def test_local_cluster_two_processes(plate, tmp_path, sharpness_model) -> None:
    distributed = pytest.importorskip("distributed")
    folder, good = plate
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
        silence_logs=40,
    ) as cluster, distributed.Client(cluster) as client:
        s = batch.run_batch([folder], tmp_path / "d.csv", model=sharpness_model, client=client,
                            progress=False, log=None, max_in_flight=3)
        stats = client.run(batch.worker_stats)
        # the multi-node path: the CLI connects to a running scheduler by address
        rc = main(["batch", str(folder / "P1_A0*_s1_w1.tif"), "--out", str(tmp_path / "c.parquet"),
                   "--scheduler", cluster.scheduler_address, "--model", str(sharpness_model),
                   "--no-progress"])
        stats_after = client.run(batch.worker_stats)
        # the optics reach the workers: a metadata-free widefield stack with --na etc.
        plain = _plain_deconwolf(tmp_path)
        so = batch.run_batch([plain], tmp_path / "o.csv", model="fqa-levels", client=client,
                             progress=False, log=None, optics=DECONWOLF_OPTICS)
    assert so.files_done == 1 and so.files_failed == 0
    rows = batch.read_results(tmp_path / "o.csv")
    assert [r["verdict"] for r in rows] == _recorded_verdicts()
    assert rc == 0
    assert [Path(r["file"]).name for r in sorted(batch.read_results(tmp_path / "c.parquet"),
                                                 key=lambda r: r["file"])] == [
        "P1_A01_s1_w1.tif", "P1_A02_s1_w1.tif"]
    assert all(v["model_loads"] == 1 for v in stats_after.values())  # still one session each
    assert s.files_done == len(good) + len(BAD) and s.files_failed == len(BAD)
    # each worker process loaded the model (one onnxruntime session) exactly once
    assert len(stats) == 2 and len({v["pid"] for v in stats.values()}) == 2
    assert all(v["model_loads"] == 1 and len(v["sessions"]) == 1 for v in stats.values())
    assert sum(v["files"] for v in stats.values()) == len(good) + len(BAD)
    assert os.getpid() not in {v["pid"] for v in stats.values()}
    # same numbers as the serial run
    batch.run_batch([folder], tmp_path / "s.csv", model=sharpness_model, workers=0,
                    progress=False, log=None)
    key = lambda r: (r["file"], r["channel_index"] or 0)  # noqa: E731
    d = sorted(batch.read_results(tmp_path / "d.csv"), key=key)
    ser = sorted(batch.read_results(tmp_path / "s.csv"), key=key)
    assert d == ser


def test_cancel_keeps_rows_and_resume_completes(plate, tmp_path, sharpness_model) -> None:
    from napari_focusqa.core.errors import Cancelled

    folder, good = plate
    out = tmp_path / "c.csv"
    seen: list[str] = []

    def on_result(res, summary) -> None:
        seen.append(res["file"])
        assert summary.files_done == len(seen)
        assert all(set(r) == set(batch.PLANE_COLUMNS) for r in res["rows"])

    with pytest.raises(Cancelled, match="after 2 files"):
        batch.run_batch([folder], out, model=sharpness_model, workers=0, progress=False,
                        log=None, on_result=on_result, cancel=lambda: len(seen) >= 2)
    assert {r["file"] for r in batch.read_results(out)} == set(seen)
    s = batch.run_batch([folder], out, model=sharpness_model, workers=0, resume=True,
                        progress=False, log=None)
    # the two files written are complete: resume skips both and assesses the rest
    assert s.files_skipped == 2 and s.files_done == len(good) + len(BAD) - 2
    files = [r["file"] for r in batch.read_results(out)]
    assert len(set(files)) == len(good) + len(BAD)


def test_default_shipped_model_on_real_in_focus_fields(tmp_path, capsys) -> None:
    """Without --model the installed default model is used (skips when none is shipped)."""
    from conftest import require_shared

    from napari_focusqa.core.model import default_model_id

    mid = default_model_id()
    if mid is None:
        pytest.skip("no shipped levels model installed in models/")
    path = require_shared("bbbc006_hoechst_infocus_9fields.tif")
    out = tmp_path / "real.parquet"
    assert main(["batch", str(path), "--out", str(out), "--workers", "0", "--no-progress"]) == 0
    rows = batch.read_results(out)
    assert len(rows) == 9 and {r["model"] for r in rows} == {mid}
    # 9 in-focus Hoechst fields (BBBC006 z=16): the shipped model calls most in focus
    assert sum(r["in_focus"] for r in rows) >= 7
    assert "out of focus per channel" in capsys.readouterr().out


def test_sigterm_on_local_cluster_stops_cleanly_then_resumes(tmp_path, sharpness_model) -> None:
    psutil = pytest.importorskip("psutil")
    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(12)
    n = 120
    base = [_cells(rng, (336, 336), sigma=s) for s in (0.0, 4.0)]
    for i in range(n):
        tifffile.imwrite(folder / f"img_{i:04d}.tif", base[i % 2] + np.uint16(i % 5))
    out = tmp_path / "res.csv"
    cmd = [sys.executable, "-m", "napari_focusqa", "batch", str(folder), "--out", str(out),
           "--workers", "2", "--model", str(sharpness_model), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    children: list = []
    try:
        t0 = time.monotonic()
        parent = psutil.Process(proc.pid)
        while time.monotonic() - t0 < 90:  # wait until the workers are up and busy
            assert proc.poll() is None, proc.communicate()
            children = parent.children(recursive=True)
            if len(children) >= 2 and _count_data_lines(out) >= 5:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        stdout, _stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "run again with --resume" in stdout
    gone, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, f"worker processes left behind: {alive}"
    before = batch.read_results(out)
    assert 5 <= len(before) < n
    s = batch.run_batch([folder], out, model=sharpness_model, workers=0, resume=True,
                        progress=False, log=None)
    assert s.files_skipped == len(before)  # every complete file is kept, none redone
    names = [Path(r["file"]).name for r in batch.read_results(out)]
    assert len(names) == len(set(names)) == n


# ------------------------------------------------------------------------ optics
DECONWOLF_OPTICS = {"na": 1.45, "wavelength_nm": 461.0, "pixel_size_um": 0.13}


def _plain_deconwolf(tmp_path: Path) -> Path:
    """deconwolf's pixels in a TIFF without its metadata (no NA, no pixel size)."""
    from tests.conftest import require_shared

    p = tmp_path / "plain" / "dapi.tif"
    p.parent.mkdir(exist_ok=True)
    tifffile.imwrite(p, tifffile.imread(require_shared("deconwolf_dapi_widefield_zstack.tif")))
    return p


def _recorded_verdicts() -> list[str]:
    from napari_focusqa.pipeline import assess_file
    from tests.conftest import require_shared

    return [r.verdict for r in assess_file(
        require_shared("deconwolf_dapi_widefield_zstack.tif"), "fqa-levels")]


def test_batch_optics_flags_set_the_threshold_and_resume_checks_them(tmp_path, capsys) -> None:
    """`focusqa batch --na/--wavelength-nm/--pixel-size-um`: files without recorded optics
    get the instrument's verdicts (those of the file that records them); the run record
    keeps the optics, and --resume with other optics is one line, exit 2."""
    plain = _plain_deconwolf(tmp_path)
    out = tmp_path / "r.csv"
    flags = ["--na", "1.45", "--wavelength-nm", "461", "--pixel-size-um", "0.13"]
    base = ["batch", str(plain), "--model", "fqa-levels", "--workers", "0", "--no-progress"]
    assert main([*base, "--out", str(out), *flags]) == 0
    rows = batch.read_results(out)
    assert [r["verdict"] for r in rows] == _recorded_verdicts() and rows[19]["verdict"] == \
        "in_focus"
    rec = (tmp_path / "r.csv.focusqa.json").read_text()
    assert '"na": 1.45' in rec and '"pixel_size_um": 0.13' in rec
    capsys.readouterr()
    assert main([*base, "--out", str(out), "--resume", "--na", "1.4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--na 1.45" in err[0] and "--na 1.4" in err[0]
    assert main([*base, "--out", str(out), "--resume", *flags]) == 0  # same optics: fine
    assert len(batch.read_results(out)) == 40
    # without optics the same pixels keep the card's rule
    assert main([*base, "--out", str(tmp_path / "n.csv")]) == 0
    assert batch.read_results(tmp_path / "n.csv")[19]["verdict"] == "out_of_focus"
    assert main([*base, "--out", str(tmp_path / "bad.csv"), "--na", "-1"]) == 2
    assert "na: expected a positive number" in capsys.readouterr().err
