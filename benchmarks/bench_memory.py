"""Peak memory of assessing a 60×2×1024² uint16 z-stack (SF only and with a model).

Usage::

    python benchmarks/bench_memory.py [--z 60] [--c 2] [--size 1024] [--model ID|CARD]

Each case runs in a fresh subprocess: the stack is created in memory, then
``assess_stack`` runs under ``tracemalloc`` (numpy reports its buffers to it). Printed:
the stack's own size, the extra peak allocated by the assessment (tracemalloc peak minus
the stack), the process's peak RSS (ru_maxrss, includes Python, numpy and onnxruntime)
and the wall time. The model defaults to the installed default levels model, else the
tiny analytic test model (noted in the output).
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


def _child(args: argparse.Namespace) -> None:
    import tracemalloc

    import numpy as np

    from napari_focusqa.core.model import load_model
    from napari_focusqa.core.zstack import assess_stack

    model = None if args.model == "none" else load_model(args.model)
    if model is not None:  # the session exists before measuring, as in a long-lived app
        _ = model.session
    rng = np.random.default_rng(0)
    plane = rng.poisson(300, (args.size, args.size)).astype(np.uint16)
    stack = np.empty((args.z, args.c, args.size, args.size), np.uint16)
    for z in range(args.z):
        for c in range(args.c):
            stack[z, c] = plane + np.uint16(z + c)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    t0 = time.perf_counter()
    res = assess_stack(stack, model, z_step_um=0.5)
    dt = time.perf_counter() - t0
    _cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(res.channels) == args.c and res.channels[0].n_slices == args.z
    print(json.dumps({
        "case": args.model if model is None else model.id,
        "stack_mb": stack.nbytes / 2**20,
        "extra_peak_mb": peak / 2**20,
        "rss_before_mb": rss0,
        "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "seconds": dt,
        "planes_per_s": args.z * args.c / dt,
    }))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--z", type=int, default=60)
    ap.add_argument("--c", type=int, default=2)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--model", default=None)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return 0
    from napari_focusqa.core.model import default_model_id

    tmp = Path(tempfile.mkdtemp(prefix="focusqa_mem_"))
    try:
        model = args.model or default_model_id()
        note = ""
        if model is None:
            from napari_focusqa.testing import build_sharpness_model

            model = str(build_sharpness_model(tmp))
            note = " (no shipped model installed: tiny analytic test model)"
        print(f"stack {args.z}x{args.c}x{args.size}x{args.size} uint16; model: {model}{note}")
        rows = []
        for case in ("none", model):
            cmd = [sys.executable, __file__, "--child", "--z", str(args.z), "--c", str(args.c),
                   "--size", str(args.size), "--model", case]
            r = subprocess.run(cmd, capture_output=True, text=True,
                               env=dict(os.environ, PYTHONTRACEMALLOC="0"))
            if r.returncode:
                print(r.stderr, file=sys.stderr)
                return 1
            rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
        hdr = (f"{'case':<18}{'stack MB':>9}{'extra peak MB':>15}{'RSS before MB':>15}"
               f"{'peak RSS MB':>13}{'time s':>8}{'planes/s':>10}")
        print(hdr)
        print("-" * len(hdr))
        for x in rows:
            name = "SF only" if x["case"] == "none" else x["case"]
            print(f"{name:<18}{x['stack_mb']:>9.0f}{x['extra_peak_mb']:>15.1f}"
                  f"{x['rss_before_mb']:>15.0f}{x['rss_peak_mb']:>13.0f}{x['seconds']:>8.1f}"
                  f"{x['planes_per_s']:>10.1f}")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
