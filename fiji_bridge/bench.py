"""Speed of the Fiji bridge: ``python -m fiji_bridge.bench [--planes N] [--size S]``.

Prints a table: JVM start, numpy -> ImagePlus and ImagePlus -> numpy per dtype.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fiji_bridge.bench")
    p.add_argument("--planes", type=int, default=20)
    p.add_argument("--size", type=int, default=1024)
    a = p.parse_args(argv)
    from fiji_bridge import bridge

    t = time.perf_counter()
    s = bridge.start()
    print(f"ImageJ {s.version} via {s.backend}: JVM start {time.perf_counter() - t:.2f} s\n")
    print(f"{'dtype':8s} {'shape':>16s} {'MB':>6s} {'to_imageplus':>13s} {'from_imageplus':>15s}")
    rng = np.random.default_rng(0)
    bridge.to_imageplus(np.zeros((8, 8), np.uint8))  # warm up the JPype conversions
    for dt in (np.uint8, np.uint16, np.float32):
        arr = (rng.random((a.planes, a.size, a.size)) * 200).astype(dt)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
