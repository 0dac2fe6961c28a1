"""Batch throughput: N synthetic 1024² uint16 images, serial vs 1 and 2 dask workers.

Usage::

    python benchmarks/bench_batch.py [--n 1000] [--size 1024] [--model ID|CARD]
                                     [--modes serial,1,2] [--data DIR] [--format csv]

The images (blurred synthetic cells + Poisson noise, 3 blur levels) are generated once
into ``--data`` (default: a temp dir, removed at the end unless ``--data`` is given).
Each mode runs in a fresh subprocess so peak memory (ru_maxrss) is per mode: the main
process and the largest worker. Throughput is reported with and without the dask
cluster start-up. The model defaults to the installed ``fqa-levels`` (or the default
levels model); when none is installed the tiny analytic test model is built and used
(say so in any numbers you quote). ``--model none`` measures SF only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _generate(folder: Path, n: int, size: int) -> list[str]:
    import numpy as np
    import tifffile
    from scipy import ndimage

    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / f"BENCH_{chr(65 + (i // 24) % 16)}{i % 24 + 1:02d}_s{i // 384 + 1}_w1.tif"
             for i in range(n)]
    if all(f.exists() for f in files):
        return [str(f) for f in files]
    rng = np.random.default_rng(0)
    base = np.zeros((size, size), np.float32)
    idx = rng.integers(0, size, (2, size * size // 2000))
    base[idx[0], idx[1]] = 1.0
    base = ndimage.gaussian_filter(base, 4.0) * 3e4 + 100
    blurred = [base] + [ndimage.gaussian_filter(base, s) for s in (3.0, 9.0)]
    # Poisson noise drawn once per blur level (4 variants each); files differ by an offset
    noisy = [rng.poisson(b).astype(np.uint16) for b in blurred for _ in range(4)]
    t0 = time.perf_counter()
    for i, f in enumerate(files):
        if not f.exists():
            tifffile.imwrite(f, noisy[(i * 5) % len(noisy)] + np.uint16(i % 50))
    print(f"generated {n} images of {size}x{size} uint16 in {time.perf_counter() - t0:.1f} s "
          f"({sum(f.stat().st_size for f in files) / 1e9:.2f} GB) in {folder}", flush=True)
    return [str(f) for f in files]


def _child(args: argparse.Namespace) -> None:
    """Run one mode and print one JSON line with its numbers."""
    from napari_focusqa import batch

    files = json.loads(Path(args.files_json).read_text())
    model = None if args.model == "none" else args.model
    out = Path(args.out)
    t0 = time.perf_counter()
    worker_rss = []
    if args.child == "serial":
        startup = 0.0
        t1 = time.perf_counter()
        s = batch.run_batch(files, out, model=model, workers=0, progress=False, log=None,
                            overwrite=True)
    else:
        from distributed import Client, LocalCluster

        n = int(args.child)
        import dask

        with dask.config.set(batch.WORKER_MALLOC_CONFIG):  # as run_batch's own LocalCluster
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address=":0", silence_logs=40)
        client = Client(cluster)
        threads = max(1, (os.cpu_count() or 1) // n)
        if model is not None:  # load the model on every worker before timing the run
            ref = str(Path(model).resolve()) if os.sep in model else model
            client.run(batch.preload_model, ref, threads)
        startup = time.perf_counter() - t0
        t1 = time.perf_counter()
        s = batch.run_batch(files, out, model=model, client=client, progress=False, log=None,
                            overwrite=True, worker_threads=threads, max_in_flight=8 * n)
        worker_rss = list(client.run(_maxrss_mb).values())
        client.close()
        cluster.close()
    t2 = time.perf_counter()
    rows = batch.read_results(out)
    print(json.dumps({
        "mode": args.child,
        "files": s.files_done,
        "failed": s.files_failed,
        "rows": len(rows),
        "startup_s": startup,
        "process_s": t2 - t1,
        "total_s": t2 - t0,
        "main_rss_mb": _maxrss_mb(),
        "worker_rss_mb": max(worker_rss) if worker_rss else None,
    }), flush=True)


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--model", default=None)
    ap.add_argument("--modes", default="serial,1,2")
    ap.add_argument("--data", default=None, help="folder for the images (kept)")
    ap.add_argument("--format", default="csv", choices=("csv", "parquet"))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--files-json", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return 0

    from napari_focusqa.core.model import default_model_id

    tmp = Path(tempfile.mkdtemp(prefix="focusqa_bench_"))
    try:
        model = args.model or default_model_id()
        note = ""
        if model is None:
            from napari_focusqa.testing import build_sharpness_model

            model = str(build_sharpness_model(tmp / "model"))
            note = " (no shipped model installed: tiny analytic test model)"
        data = Path(args.data) if args.data else tmp / "images"
        files = _generate(data, args.n, args.size)
        fj = tmp / "files.json"
        fj.write_text(json.dumps(files))
        print(f"model: {model}{note}; {os.cpu_count()} CPU cores", flush=True)
        results = []
        for mode in args.modes.split(","):
            out = tmp / f"out_{mode}.{args.format}"
            cmd = [sys.executable, __file__, "--child", mode, "--files-json", str(fj),
                   "--out", str(out), "--model", model]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"mode {mode} failed:\n{r.stderr}", file=sys.stderr)
                continue
            res = json.loads(r.stdout.strip().splitlines()[-1])
            results.append(res)
            print(f"  {mode}: {res['process_s']:.1f} s", flush=True)
        print()
        hdr = (f"{'mode':<22}{'images':>7}{'start s':>9}{'run s':>8}{'img/s':>8}"
               f"{'img/s incl. start':>19}{'peak RSS main MB':>18}{'peak RSS worker MB':>20}")
        print(hdr)
        print("-" * len(hdr))
        for r in results:
            label = "serial (in process)" if r["mode"] == "serial" else f"dask, {r['mode']} worker(s)"
            wr = "-" if r["worker_rss_mb"] is None else f"{r['worker_rss_mb']:.0f}"
            print(f"{label:<22}{r['files']:>7}{r['startup_s']:>9.1f}{r['process_s']:>8.1f}"
                  f"{r['files'] / r['process_s']:>8.1f}{r['files'] / r['total_s']:>19.1f}"
                  f"{r['main_rss_mb']:>18.0f}{wr:>20}")
        return 0
    finally:
        if args.data is None:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            shutil.rmtree(tmp / "model", ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
