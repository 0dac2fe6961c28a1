"""Core speed: every focus measure on a 2048² uint16 image, whole image and per patch.

Usage: python benchmarks/bench_core.py [--repeat N] [--threads N]
Prints a table of the median wall time (ms) over N runs. Target: SF <= 15 ms whole image
on one core. Set OMP/OPENBLAS threads with --threads (default 1) before numpy loads.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", type=int, default=2048)
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np

    from napari_focusqa.core import metrics
    from napari_focusqa.core.model import default_model_id, load_model
    from napari_focusqa.core.patches import make_grid
    from napari_focusqa.io.sample_data import make_sample_stack

    rng = np.random.default_rng(0)
    tile = make_sample_stack().data[0, 10, 1]
    reps = -(-args.size // tile.shape[0]), -(-args.size // tile.shape[1])
    img = np.tile(tile, reps)[: args.size, : args.size].astype(np.uint16)
    img = (img + rng.poisson(5, img.shape)).astype(np.uint16)
    grid = make_grid(img.shape, 84)

    def timeit(fn) -> float:  # type: ignore[no-untyped-def]
        fn()
        ts = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return 1000 * float(np.median(ts))

    t_extract = timeit(lambda: grid.extract(img))
    patches = grid.extract(img)
    print(f"image {args.size}x{args.size} uint16, {grid.rows}x{grid.cols} = {grid.n_patches} "
          f"patches of 84 px, {args.threads} thread(s), median of {args.repeat}")
    print(f"patch extraction: {t_extract:.1f} ms")
    print(f"{'metric':<22}{'whole image (ms)':>18}{'per patch grid (ms)':>22}")
    print("-" * 62)
    for name in metrics.METRICS:
        tw = timeit(lambda n=name: metrics.compute(n, img))
        tp = timeit(lambda n=name: metrics.compute(n, patches))
        print(f"{name:<22}{tw:>18.1f}{tp:>22.1f}")
    from napari_focusqa.core.structure import patch_structure

    t_struct = timeit(lambda: patch_structure(img, grid))
    print(f"structure test (empty mask) on the {grid.n_patches}-patch grid: {t_struct:.1f} ms")
    _skimage_rows(img, patches, grid, timeit)
    mid = default_model_id()
    if mid:
        from napari_focusqa.core.assess import assess_image
        from napari_focusqa.core.model import FocusModel

        flat = patches.reshape(-1, 84, 84)
        base = load_model(mid)
        for threads in (1, 2):
            m = FocusModel(card=base.card, onnx_path=base.onnx_path, threads=threads)
            t = timeit(lambda m=m: m.predict_proba(flat))
            print(f"model {mid} on {grid.n_patches} patches, {threads} thread(s): {t:.1f} ms")
        m2 = FocusModel(card=base.card, onnx_path=base.onnx_path, threads=2)
        t_all = timeit(lambda: assess_image(img, m2))
        print(f"assess_image (SF + grid + model + structure), 2 threads: {t_all:.1f} ms; "
              f"structure test = {100 * t_struct / max(t_all - t_struct, 1e-9):.1f} % on top "
              "(target <= 10 %)")
    else:
        print("no levels model installed: model timing skipped")
    return 0


def _skimage_rows(img, patches, grid, timeit) -> None:  # type: ignore[no-untyped-def]
    """scikit-image's versions of helpers we hand-write, timed on the same input."""
    try:
        from skimage.measure import blur_effect as sk_blur
        from skimage.util import view_as_blocks
    except ImportError:
        print("scikit-image not installed: comparison skipped")
        return
    from napari_focusqa.core import metrics

    print(f"\n{'scikit-image comparison':<34}{'ours (ms)':>12}{'skimage (ms)':>14}")
    print("-" * 60)
    ours, theirs = timeit(lambda: metrics.blur_effect(img)), timeit(lambda: sk_blur(img))
    print(f"{'blur_effect, whole image':<34}{ours:>12.1f}{theirs:>14.1f}")
    ours = timeit(lambda: metrics.blur_effect(patches))
    theirs = timeit(lambda: [sk_blur(patches[r, c]) for r in range(grid.rows)
                             for c in range(grid.cols)])
    print(f"{'blur_effect, patch grid':<34}{ours:>12.1f}{theirs:>14.1f}")
    p = 84
    h, w = (img.shape[0] // p) * p, (img.shape[1] // p) * p
    ours = timeit(lambda: grid.extract(img))
    theirs = timeit(lambda: view_as_blocks(img[:h, :w], (p, p)))
    print(f"{'patch grid (view_as_blocks*)':<34}{ours:>12.3f}{theirs:>14.3f}")
    print("* view_as_blocks tiles only whole blocks; our grid also covers the image edge")


if __name__ == "__main__":
    sys.exit(main())
