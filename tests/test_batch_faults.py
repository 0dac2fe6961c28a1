"""Batch under faults: out of memory, a killed dask worker, a full disk; transient errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_focusqa import batch
from napari_focusqa.testing import kill_busy_worker, write_small_images

REPO = Path(__file__).resolve().parents[1]

# A batch run in a child process whose address space is capped a little above what it
# needs after its imports: reading a big image raises a real MemoryError.
_LIMITED = textwrap.dedent("""
    import resource, sys
    import numpy, scipy.ndimage, tifffile
    from napari_focusqa import batch, pipeline
    import napari_focusqa.core.zstack, napari_focusqa.io.tiff
    def vm():
        for line in open("/proc/self/status"):
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    cap = vm() + 300 * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    s = batch.run_batch(sys.argv[2:], sys.argv[1], model=None, workers=0, resume=True,
                        max_attempts=2, progress=False, log=None)
    print(s.files_done, s.files_failed, s.files_transient)
""")


def _rows_by_name(out: Path) -> dict[str, list[dict]]:
    by: dict[str, list[dict]] = {}
    for r in batch.read_results(out):
        by.setdefault(Path(r["file"]).name, []).append(r)
    return by


def test_out_of_memory_is_transient_and_resume_retries_it(tmp_path) -> None:
    small = write_small_images(tmp_path / "in", 2, size=128)
    big = tmp_path / "in" / "P1_B01_s1_w1.tif"
    # 20000 x 20000 uint16 = 800 MB of pixels, a few hundred kB on disk (zlib of zeros)
    tifffile.imwrite(big, np.zeros((20000, 20000), np.uint16), compression="zlib",
                     tile=(1024, 1024))
    out = tmp_path / "o.csv"
    files = [str(p) for p in [*small, big]]

    def limited_run() -> list[int]:
        r = subprocess.run([sys.executable, "-c", _LIMITED, str(out), *files], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return [int(v) for v in r.stdout.split()]

    assert limited_run() == [3, 1, 1]  # done, failed, transient
    (row,) = _rows_by_name(out)[big.name]
    assert row["error_kind"] == batch.TRANSIENT and row["attempts"] == 1
    assert "memory" in row["error"]
    good_before = [r for r in batch.read_results(out) if not r["error"]]
    assert len(good_before) == 2 and {r["error_kind"] for r in good_before} == {None}
    # resume retries the transient failure (only it) ...
    assert limited_run() == [1, 1, 1]
    (row,) = _rows_by_name(out)[big.name]
    assert row["attempts"] == 2
    # ... until the bound (max_attempts=2 here) is reached
    assert limited_run() == [0, 0, 0]
    # with the memory there (here: a smaller image in its place) it completes
    tifffile.imwrite(big, np.zeros((256, 256), np.uint16) + 7)
    s = batch.run_batch(files, out, model=None, workers=0, resume=True, retry_failed=True,
                        progress=False, log=None)
    assert s.files_done == 1 and s.exit_code == 0
    rows = batch.read_results(out)
    assert [r for r in rows if not r["error"]][:2] == good_before  # never rewritten
    assert [Path(r["file"]).name for r in rows].count(big.name) == 1
    assert all(r["error"] is None for r in rows)


def test_permanent_errors_are_not_retried_by_resume(tmp_path) -> None:
    write_small_images(tmp_path / "in", 2, size=128)
    bad = tmp_path / "in" / "P1_C01_s1_w1.tif"
    bad.write_bytes(b"II*\x00" + b"\x13" * 40)
    out = tmp_path / "o.parquet"
    s = batch.run_batch([tmp_path / "in"], out, workers=0, progress=False, log=None)
    assert s.files_failed == 1 and s.files_transient == 0
    (row,) = _rows_by_name(out)[bad.name]
    assert row["error_kind"] == batch.PERMANENT and row["attempts"] == 1
    s = batch.run_batch([tmp_path / "in"], out, workers=0, resume=True, progress=False,
                        log=None)
    assert s.files_done == 0 and s.failed_kept == 1
    assert "not retried" in s.format()


def _killed_worker_run(folder: Path, out: Path, first_kill: int, model=None,
                       every: int = 8, max_kills: int = 4, files_per_task: int = 32) -> tuple:
    """Run on a 2-process LocalCluster; SIGKILL a busy worker after ``first_kill`` files,
    and again every ``every`` files until a file was lost with it (at most ``max_kills``).

    ``allowed-failures: 0`` makes the scheduler give up on a lost task at once
    (``KilledWorker``) instead of re-running it elsewhere, so it becomes a row. (A kill can
    land just after a task finished; dask then recomputes it and nothing is lost: hence
    the repeat.)
    """
    import dask
    import distributed

    killed: list[int] = []
    state = {"next": first_kill, "lost": 0}

    def on_result(res, summary) -> None:
        state["lost"] += res.get("error_kind") == batch.TRANSIENT
        if summary.files_done >= state["next"] and not state["lost"] and len(killed) < max_kills:
            pid = kill_busy_worker(client)
            if pid:
                killed.append(pid)
                state["next"] = summary.files_done + every

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=":0", silence_logs=50) as cluster, \
            distributed.Client(cluster) as client:
        s = batch.run_batch([folder], out, model=model, client=client, progress=False,
                            log=None, on_result=on_result, max_in_flight=8,
                            files_per_task=files_per_task)
    return s, killed


def test_killed_worker_rows_are_transient_and_resume_completes(tmp_path, sharpness_model) -> None:
    pytest.importorskip("distributed")
    folder = tmp_path / "in"
    files = write_small_images(folder, 48, size=512)
    out = tmp_path / "o.csv"
    s, killed = _killed_worker_run(folder, out, 4, model=sharpness_model, files_per_task=1)
    assert killed, "no worker was busy to be killed"
    rows = batch.read_results(out)
    lost = [r for r in rows if r["error"]]
    assert lost and all(r["error_kind"] == batch.TRANSIENT for r in lost)
    assert all("KilledWorker" in r["error"] for r in lost)
    assert s.files_transient == len(lost) and s.exit_code == batch.EXIT_SOME_FAILED
    finished = [r for r in rows if not r["error"]]
    s2 = batch.run_batch([folder], out, model=sharpness_model, workers=0, resume=True,
                         progress=False, log=None)
    assert s2.files_done == len(lost) and s2.exit_code == 0
    after = batch.read_results(out)
    names = [Path(r["file"]).name for r in after]
    assert sorted(names) == sorted(p.name for p in files)  # each file exactly once
    assert [r for r in after if r["attempts"] == 1] == finished  # finished rows unchanged
    assert all(r["error"] is None for r in after)
    assert {r["attempts"] for r in after if r["file"] in {x["file"] for x in lost}} == {2}


# --------------------------------------------------------------------------- full disk
def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True)
    return r.returncode == 0


def _fill(path: Path, leave: int) -> Path:
    """Fill the file system of ``path`` until only about ``leave`` bytes are free."""
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    filler = path / "filler.bin"
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(free - leave, 0))
    return filler


def _cli(*args: str, preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "napari_focusqa", "batch", *args,
                           "--workers", "0", "--no-progress", "--model", "none"], cwd=REPO,
                          capture_output=True, text=True, timeout=300, preexec_fn=preexec)


def _check_complete_files(out: Path) -> list[dict]:
    """Readable, and every file present with all of its rows (none cut short)."""
    rows = batch.read_results(out)
    by = {}
    for r in rows:
        by.setdefault(r["file"], []).append(r)
    assert all(len(v) == v[0]["file_rows"] for v in by.values())
    if out.is_file():
        assert out.read_bytes().endswith(b"\n")
    return rows


@pytest.mark.parametrize(("disk", "suffix"), [("tmpfs", ".csv"), ("tmpfs", ".parquet"),
                                              ("file-size-limit", ".csv")])
def test_full_disk_leaves_the_output_intact_and_resume_completes(tmp_path, disk, suffix) -> None:
    write_small_images(tmp_path / "in", 60, size=96)
    first = sorted((tmp_path / "in").glob("*.tif"))[:20]
    mnt = tmp_path / "disk"
    preexec = None
    if disk == "tmpfs":
        if not _mount_tmpfs(mnt, "1m"):
            pytest.skip("cannot mount a tmpfs here (needs root); the file-size-limit case runs")
    else:
        mnt.mkdir()
    out = mnt / f"o{suffix}"
    try:
        r = _cli(*map(str, first), "--out", str(out))
        assert r.returncode == 0, r.stderr
        before = _check_complete_files(out)
        if disk == "tmpfs":
            filler = _fill(mnt, 3000)
        else:
            import resource

            size = out.stat().st_size + 3000

            def preexec() -> None:  # writes beyond this size fail with EFBIG
                resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

        r = _cli(str(tmp_path / "in"), "--out", str(out), "--resume", preexec=preexec)
        assert r.returncode == 2, (r.returncode, r.stderr)
        err = r.stderr.strip()
        assert len(err.splitlines()) == 1 and "--out: cannot write" in err and "intact" in err
        during = _check_complete_files(out)
        assert during[: len(before)] == before  # what was there is untouched and readable
        assert len(before) <= len(during) < 60
        if disk == "tmpfs":
            filler.unlink()
        r = _cli(str(tmp_path / "in"), "--out", str(out), "--resume")
        assert r.returncode == 0, r.stderr
        after = _check_complete_files(out)
        assert after[: len(during)] == during
        names = [Path(x["file"]).name for x in after]
        assert len(names) == len(set(names)) == 60
    finally:
        if disk == "tmpfs":
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


# --------------------------------------------------------------------------- load
@pytest.mark.slow
def test_ten_thousand_images_worker_killed_mid_run_then_resume(tmp_path) -> None:
    """10,000 small images on 2 dask workers, one killed mid-run: no finished row lost or
    duplicated, the lost files are transient error rows, and resume completes."""
    pytest.importorskip("distributed")
    folder = tmp_path / "in"
    files = write_small_images(folder, 10_000, size=64)
    out = tmp_path / "o.parquet"
    s, killed = _killed_worker_run(folder, out, 3_000, every=500)
    assert killed
    rows = batch.read_results(out)
    assert len(rows) == 10_000 == len({r["file"] for r in rows})
    lost = {r["file"] for r in rows if r["error"]}
    assert lost and {r["error_kind"] for r in rows if r["error"]} == {batch.TRANSIENT}
    finished = [r for r in rows if not r["error"]]
    s2 = batch.run_batch([folder], out, workers=0, resume=True, progress=False, log=None)
    assert s2.files_done == len(lost) and s2.exit_code == 0
    after = batch.read_results(out)
    assert sorted(Path(r["file"]).name for r in after) == sorted(p.name for p in files)
    assert all(r["error"] is None for r in after)
    key = {r["file"]: r for r in after}
    assert all(key[r["file"]] == r for r in finished)  # finished rows unchanged
