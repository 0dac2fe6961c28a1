"""Batch under load and faults: N small images, a dask worker killed mid-run, resume;
a full disk; and the parquet sink's cost per flush as the table grows.

Usage::

    python benchmarks/bench_batch_faults.py [--n 10000] [--size 64] [--workers 2]
                                            [--kill-at 0.3] [--model none]
                                            [--skip-disk] [--sink-rows 200000]

Scenarios (each prints one table row; nothing here is asserted, the tests do that):

* ``rescheduled``: dask's default ``allowed-failures`` (3): the killed worker's tasks are
  re-run on the other worker; expect every file done in one run, no error rows.
* ``killed->rows``: ``allowed-failures`` 0: the killed worker's tasks become
  ``transient`` error rows; then ``--resume`` (serial) retries them.
* ``full disk``: a 2 MB tmpfs (root only; skipped otherwise) filled up during a
  ``--resume``: exit code, rows intact, then resume after freeing space.
* ``parquet sink``: seconds per 2,000-row flush at the start and the end of a
  ``--sink-rows`` table (flat = bounded memory and linear I/O) and peak RSS.

Counts reported: rows, distinct files, duplicated files, files missing, error rows.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path


def _counts(out: Path, n: int) -> dict[str, int]:
    from napari_focusqa import batch

    rows = batch.read_results(out)
    files = Counter(r["file"] for r in rows)
    return {"rows": len(rows), "files": len(files),
            "dup": sum(c - 1 for c in files.values() if c > 1),
            "missing": n - len(files), "errors": sum(1 for r in rows if r["error"])}


def _killed_run(folder: Path, out: Path, n: int, workers: int, kill_at: float,
                allowed_failures: int | None, model: str | None) -> dict[str, float]:
    import dask
    import distributed

    from napari_focusqa import batch
    from napari_focusqa.testing import kill_busy_worker

    killed: list[int] = []
    at = {"next": int(n * kill_at), "lost": 0}

    def on_result(res: dict, summary: batch.BatchSummary) -> None:
        at["lost"] += res.get("error_kind") == batch.TRANSIENT
        if summary.files_done >= at["next"] and not killed:
            pid = kill_busy_worker(client)
            if pid:
                killed.append(pid)
                at["kill_s"] = time.perf_counter() - t0

    cfg = {} if allowed_failures is None else {
        "distributed.scheduler.allowed-failures": allowed_failures}
    t_start = time.perf_counter()
    with dask.config.set({**cfg, **batch.WORKER_MALLOC_CONFIG}), \
            distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                     dashboard_address=":0", silence_logs=50) as cluster, \
            distributed.Client(cluster) as client:
        t0 = time.perf_counter()
        s = batch.run_batch([folder], out, model=model, client=client, progress=False,
                            log=None, on_result=on_result)
        run_s = time.perf_counter() - t0
    return {"run_s": run_s, "with_startup_s": time.perf_counter() - t_start,
            "files_per_s": s.files_done / run_s, "killed": len(killed),
            "transient": s.files_transient}


def _resume(folder: Path, out: Path, model: str | None) -> dict[str, float]:
    from napari_focusqa import batch

    t0 = time.perf_counter()
    s = batch.run_batch([folder], out, model=model, workers=0, resume=True, progress=False,
                        log=None)
    return {"resume_s": time.perf_counter() - t0, "resumed": s.files_done,
            "skipped": s.files_skipped, "exit": s.exit_code}


def _full_disk(tmp: Path, folder: Path, n_first: int) -> str:
    mnt = tmp / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
            capture_output=True).returncode != 0:
        return "skipped (cannot mount a tmpfs: needs root)"
    from napari_focusqa import batch

    try:
        out = mnt / "o.csv"
        first = sorted(folder.glob("*.tif"))[:n_first]
        cmd = [sys.executable, "-m", "napari_focusqa", "batch", "--out", str(out),
               "--workers", "0", "--no-progress", "--model", "none"]
        subprocess.run([*cmd, *map(str, first)], check=True, capture_output=True)
        before = batch.read_results(out)
        st = os.statvfs(mnt)
        with open(mnt / "filler", "wb") as fh:
            fh.write(b"\0" * (st.f_bavail * st.f_frsize - 4000))
        r = subprocess.run([*cmd, str(folder), "--resume"], capture_output=True, text=True)
        during = batch.read_results(out)
        intact = during[: len(before)] == before
        (mnt / "filler").unlink()
        t0 = time.perf_counter()
        r2 = subprocess.run([*cmd, str(folder), "--resume"], capture_output=True, text=True)
        after = batch.read_results(out)
        names = Counter(x["file"] for x in after)
        return (f"full disk: exit {r.returncode}, stderr lines "
                f"{len(r.stderr.strip().splitlines())}, rows before/at failure "
                f"{len(before)}/{len(during)}, earlier rows intact: {intact}; after freeing "
                f"space resume exit {r2.returncode} in {time.perf_counter() - t0:.1f} s, "
                f"{len(after)} rows, {len(names)} files, duplicates "
                f"{sum(c - 1 for c in names.values())}")
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _sink(tmp: Path, n_rows: int) -> str:
    from napari_focusqa import batch

    cols = batch.PLANE_COLUMNS
    sink = batch.ParquetSink(tmp / "sink.parquet", cols, flush_rows=2000, flush_seconds=1e9)
    row = batch.normalise_row({"file": "/data/plate/P1_A01_s1_w1.tif", "channel": "0",
                               "sf": 123.4, "predicted_level": 3, "z_index": 0,
                               "probabilities": [0.1] * 11, "verdict": "in_focus",
                               "attempts": 1, "file_rows": 1}, cols)
    times = []
    for _ in range(n_rows // 2000):
        t0 = time.perf_counter()
        sink.write([dict(row) for _ in range(2000)])
        times.append(time.perf_counter() - t0)
    sink.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    k = max(len(times) // 10, 1)
    return (f"parquet sink, {n_rows} rows in 2,000-row parts: first {k} flushes "
            f"{sum(times[:k]) / k * 1e3:.1f} ms each, last {k} "
            f"{sum(times[-k:]) / k * 1e3:.1f} ms each; peak RSS {rss:.0f} MB; "
            f"{len(list((tmp / 'sink.parquet').glob('part-*')))} parts")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kill-at", type=float, default=0.3, help="fraction done at the kill")
    ap.add_argument("--model", default="none", help="'none' (SF only), an id or a card")
    ap.add_argument("--skip-disk", action="store_true")
    ap.add_argument("--sink-rows", type=int, default=200_000)
    args = ap.parse_args()
    model = None if args.model == "none" else args.model

    from napari_focusqa.testing import write_small_images

    tmp = Path(tempfile.mkdtemp(prefix="focusqa_faults_"))
    try:
        t0 = time.perf_counter()
        folder = tmp / "in"
        write_small_images(folder, args.n, size=args.size)
        print(f"generated {args.n} images {args.size}x{args.size} uint16 in "
              f"{time.perf_counter() - t0:.1f} s; {args.workers} workers, model "
              f"{args.model}, kill at {args.kill_at:.0%}; load {os.getloadavg()[0]:.1f}",
              flush=True)
        head = ("| scenario | run s | files/s | incl. start-up s | killed | transient rows "
                "| resume s (files) | rows | files | dup | missing | errors after |")
        print(head)
        print("|---" * 12 + "|")
        for name, af in (("rescheduled", None), ("killed->rows", 0)):
            out = tmp / f"{name[:6]}.parquet"
            k = _killed_run(folder, out, args.n, args.workers, args.kill_at, af, model)
            r = _resume(folder, out, model)
            c = _counts(out, args.n)
            print(f"| {name} | {k['run_s']:.1f} | {k['files_per_s']:.0f} | "
                  f"{k['with_startup_s']:.1f} | {k['killed']} | {k['transient']} | "
                  f"{r['resume_s']:.1f} ({r['resumed']}) | {c['rows']} | {c['files']} | "
                  f"{c['dup']} | {c['missing']} | {c['errors']} |", flush=True)
        if not args.skip_disk:
            print(_full_disk(tmp, folder, min(200, args.n // 5)), flush=True)
        print(_sink(tmp, args.sink_rows), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
