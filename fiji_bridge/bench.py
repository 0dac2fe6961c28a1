"""Speed of the Fiji bridge: ``python -m fiji_bridge.bench [--planes N] [--size S]``.

Prints a table: JVM start, numpy -> ImagePlus and ImagePlus -> numpy per dtype. With
``--macro IMAGE`` it times the macros instead, each in a fresh ImageJ (``java -jar ij.jar
-batch`` under Xvfb when there is no display), as ``focusqa fiji run-macro`` runs them:
opening the image only, then Assess Focus and Focus Curves, and the Python side alone
(``assess-for-macro`` in a fresh interpreter).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def bench_conversions(planes: int, size: int) -> None:
    from fiji_bridge import bridge

    t = time.perf_counter()
    s = bridge.start()
    print(f"ImageJ {s.version} via {s.backend}: JVM start {time.perf_counter() - t:.2f} s\n")
    print(f"{'dtype':8s} {'shape':>16s} {'MB':>6s} {'to_imageplus':>13s} {'from_imageplus':>15s}")
    rng = np.random.default_rng(0)
    bridge.to_imageplus(np.zeros((8, 8), np.uint8))  # warm up the JPype conversions
    for dt in (np.uint8, np.uint16, np.float32):
        arr = (rng.random((planes, size, size)) * 200).astype(dt)
        t = time.perf_counter()
        imp = bridge.to_imageplus(arr)
        t1 = time.perf_counter() - t
        t = time.perf_counter()
        bridge.from_imageplus(imp)
        t2 = time.perf_counter() - t
        mb = arr.nbytes / 1e6
        shape = "x".join(str(v) for v in arr.shape)
        print(f"{np.dtype(dt).name:8s} {shape:>16s} {mb:6.0f} {t1:8.2f} s {mb / t1:4.0f}MB/s"
              f" {t2:9.2f} s {mb / t2:4.0f}MB/s")
    s.shutdown_threads()


def bench_macros(image: str, model: str, repeat: int) -> int:
    from fiji_bridge.install import install
    from fiji_bridge.runner import run_macro

    img = Path(image).resolve()
    if not img.is_file():
        print(f"IMAGE: {img} does not exist", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="focusqa-bench-") as tmp:
        d = Path(tmp)
        ijdir = d / "ImageJ"
        (ijdir / "plugins").mkdir(parents=True)
        install(ijdir)
        res, curves = d / "results.csv", d / "curves.csv"
        cases = {
            "open the image only": (f'open("{img}");\n', ()),
            f"open + Assess Focus (model={model})": (
                f'open("{img}");\nrun("Assess Focus", "model=[{model}] results=[{res}]");\n',
                (res,)),
            "open + Focus Curves (SF only)": (
                f'open("{img}");\nrun("Focus Curves", "model=none csv=[{curves}]");\n',
                (curves,)),
        }
        print(f"{img.name}, best of {repeat}, each in a fresh ImageJ\n")
        print(f"{'what':44s} {'seconds':>8s}")
        for name, (code, expect) in cases.items():
            macro = d / "bench.ijm"
            macro.write_text(code, encoding="utf-8")
            best = float("inf")
            for _ in range(repeat):
                t = time.perf_counter()
                rc, _ = run_macro(macro, imagej_dir=ijdir, expect=expect, echo=False)
                if rc != 0:
                    print(f"{name}: the macro failed", file=sys.stderr)
                    return 1
                best = min(best, time.perf_counter() - t)
            print(f"{name:44s} {best:8.2f}")
        out = d / "x"
        out.mkdir()
        cmd = [sys.executable, "-m", "fiji_bridge", "assess-for-macro", str(img),
               "--out", str(out), "--model", model]
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            best = min(best, time.perf_counter() - t)
        print(f"{'Python side alone (assess-for-macro)':44s} {best:8.2f}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fiji_bridge.bench", description=__doc__)
    p.add_argument("--planes", type=int, default=20)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--macro", metavar="IMAGE", default=None,
                   help="time the macros on this image instead of the conversions")
    p.add_argument("--model", default="default", help="model for Assess Focus (--macro)")
    p.add_argument("--repeat", type=int, default=1, help="runs per case, best kept (--macro)")
    a = p.parse_args(argv)
    if a.macro:
        return bench_macros(a.macro, a.model, max(1, a.repeat))
    bench_conversions(a.planes, a.size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
