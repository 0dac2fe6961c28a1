"""Wall time and peak memory of napari's "Assess focus" on a 60×2×1024² z-stack.

Usage::

    python benchmarks/bench_napari.py [--z 60] [--c 2] [--size 1024] [--model ID|CARD|none]
                                      [--repeat 2] [--gui]

Phases, timed separately (the widget runs 1–3 in its ``thread_worker``; only 4 blocks
the Qt main thread):

1. ``assess``: the core's :func:`assess_stack` on every channel (the number the issue's
   ≤ 3 s target is about; the model session is created before timing, as in a running
   app);
2. ``overlay``: the numpy vertex/feature/colour arrays of the patch borders
   (:func:`build_overlay`);
3. ``shapes``: constructing the napari ``Shapes`` layers from those arrays;
4. ``add_layer`` (``--gui`` only, needs a display, e.g. ``xvfb-run -a``): adding the
   ready layers to a shown viewer.

The stack is the embedded procedural sample tiled to ``size``² and resampled to ``z``
slices (real focus curves, no downloads). Memory: tracemalloc peak of the assessment
(numpy buffers; the stack itself excluded) and the process's peak RSS (ru_maxrss,
includes Python, Qt/napari imports and onnxruntime). The model defaults to the installed
default levels model, else the tiny analytic test model (named in the output).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import tracemalloc


def _stack(z: int, c: int, size: int):
    import numpy as np

    from napari_focusqa.io.sample_data import make_sample_stack

    img = make_sample_stack()
    base = img.data[0]  # (21, 2, 252, 336)
    zi = np.round(np.linspace(0, base.shape[0] - 1, z)).astype(int)
    reps = (-(-size // base.shape[2]), -(-size // base.shape[3]))
    out = np.empty((z, c, size, size), np.uint16)
    for ci in range(c):
        plane_stack = base[zi, ci % base.shape[1]]
        out[:, ci] = np.tile(plane_stack, (1, *reps))[:, :size, :size]
    return out, img.channel_names, img.z_step_um


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--z", type=int, default=60)
    ap.add_argument("--c", type=int, default=2)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--model", default=None, help="model id or card path; 'none' = SF only")
    ap.add_argument("--repeat", type=int, default=2, help="timed repetitions (best is shown)")
    ap.add_argument("--gui", action="store_true", help="also time add_layer in a shown viewer")
    args = ap.parse_args(argv)


    from napari_focusqa.core.model import default_model_id, load_model
    from napari_focusqa.core.zstack import assess_stack
    from napari_focusqa.widgets.overlay import build_overlay

    model_arg = args.model or default_model_id()
    note = ""
    if model_arg is None:
        from napari_focusqa.testing import build_sharpness_model

        model_arg = str(build_sharpness_model(tempfile.mkdtemp(prefix="fqa_bench_")))
        note = " (no shipped model installed: tiny analytic test model)"
    fm = None if model_arg == "none" else load_model(model_arg)
    if fm is not None:
        _ = fm.session

    stack, names, z_step = _stack(args.z, args.c, args.size)
    names = [names[i % len(names)] for i in range(args.c)]
    rss_before = _rss_mb()

    t_assess, results, peak = [], None, 0
    for _ in range(max(1, args.repeat)):
        tracemalloc.start()
        t0 = time.perf_counter()
        results = [
            assess_stack(stack[:, c], fm, z_step_um=z_step, channel_names=[names[c]])
            for c in range(args.c)
        ]
        t_assess.append(time.perf_counter() - t0)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert results is not None
    rss_assess = _rss_mb()

    rows: list[tuple[str, str]] = []
    n_patches = 0
    t_ov = t_sh = t_add = None
    if fm is not None:
        t0 = time.perf_counter()
        overlays = [build_overlay(sr.channels[0]) for sr in results]
        t_ov = time.perf_counter() - t0
        n_patches = sum(o.data.shape[0] for o in overlays)
        from napari.layers import Shapes

        t0 = time.perf_counter()
        layers = [Shapes(o.data, ndim=3, name=f"ch{i} patches", **o.layer_kwargs())
                  for i, o in enumerate(overlays)]
        t_sh = time.perf_counter() - t0
        if args.gui:
            import napari
            from qtpy.QtWidgets import QApplication

            viewer = napari.Viewer(show=True)
            for c in range(args.c):
                viewer.add_image(stack[:, c], name=names[c])
            QApplication.processEvents()
            t0 = time.perf_counter()
            for ly in layers:
                viewer.add_layer(ly)
            QApplication.processEvents()
            t_add = time.perf_counter() - t0
            viewer.close()

    mp = args.z * args.c * args.size * args.size / 1e6
    best = min(t_assess)
    rows += [
        ("stack", f"{args.z}×{args.c}×{args.size}² uint16 ({stack.nbytes / 2**20:.0f} MiB)"),
        ("model", (fm.id if fm else "none (SF only)") + note),
        ("threads", os.environ.get("FOCUSQA_THREADS") or f"onnxruntime default ({os.cpu_count()} CPUs)"),
        ("1 assess (core, all channels)", f"{best:.2f} s best of {len(t_assess)} "
         f"({', '.join(f'{t:.2f}' for t in t_assess)}); {mp / best:.0f} Mpx/s"),
    ]
    if fm is not None:
        per_slice = n_patches // (args.z * args.c)
        rows += [
            ("2 overlay arrays (numpy)", f"{t_ov:.2f} s for {n_patches} rectangles "
             f"({per_slice} per slice)"),
            ("3 napari Shapes construction", f"{t_sh:.2f} s (in the worker thread)"),
        ]
        if t_add is not None:
            rows.append(("4 add_layer (GUI thread)", f"{t_add:.2f} s"))
    rows += [
        ("assess peak (tracemalloc)", f"{peak / 2**20:.0f} MiB above the stack"),
        ("process peak RSS", f"{rss_before:.0f} MiB before, {rss_assess:.0f} MiB after assess, "
         f"{_rss_mb():.0f} MiB at end"),
        ("target", f"assess ≤ 3 s: {'met' if best <= 3 else 'NOT met'}"),
    ]
    w = max(len(k) for k, _ in rows)
    print(f"{'quantity':<{w}}  value")
    print(f"{'-' * w}  {'-' * 40}")
    for k, v in rows:
        print(f"{k:<{w}}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
