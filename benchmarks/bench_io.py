"""Read speed: vendor formats (bioio) vs the tifffile path, on the same pixels.

Usage: python benchmarks/bench_io.py [--repeat N] [--z 40] [--size 1024]

Writes one (Z, C, Y, X) uint16 stack as an ImageJ TIFF, an OME-TIFF, a CZI (pylibCZIrw)
and an OME-Zarr (bioio-ome-zarr) into a temporary folder, then times
``napari_focusqa.io.read_image`` on each (full read into numpy, median of N), plus bioio's
own TIFF plugins on the TIFFs (why TIFFs stay on tifffile) and the lazy open used by the
napari reader. The real CellDivision CZI in ../shared/data is timed against its TIFF
conversion when present. Target: vendor read <= 1.5x the tifffile path.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(os.environ.get("FOCUSQA_SHARED_DATA",
                   Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def _time(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm: imports, page cache
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1000 * statistics.median(ts)


def _write_all(folder: Path, data: np.ndarray) -> dict[str, Path]:
    import tifffile
    from bioio_ome_zarr.writers import Channel, OMEZarrWriter
    from pylibCZIrw import czi as pyczi

    z, c = data.shape[:2]
    names = ["DAPI", "GFP", "RFP", "Cy5"][:c]
    paths = {"imagej-tiff": folder / "s.tif", "ome-tiff": folder / "s.ome.tif",
             "czi": folder / "s.czi", "ome-zarr": folder / "s.ome.zarr"}
    tifffile.imwrite(paths["imagej-tiff"], data, imagej=True,
                     metadata={"axes": "ZCYX", "spacing": 0.5, "unit": "um", "Labels": names})
    tifffile.imwrite(paths["ome-tiff"], data, ome=True,
                     metadata={"axes": "ZCYX", "PhysicalSizeZ": 0.5, "Channel": {"Name": names}})
    with pyczi.create_czi(str(paths["czi"]), exist_ok=True) as doc:
        for zi in range(z):
            for ci in range(c):
                doc.write(data=data[zi, ci], plane={"Z": zi, "C": ci})
        doc.write_metadata(channel_names=dict(enumerate(names)), scale_x=0.2e-6,
                           scale_y=0.2e-6, scale_z=0.5e-6)
    tczyx = data.transpose(1, 0, 2, 3)[None]
    w = OMEZarrWriter(str(paths["ome-zarr"]), level_shapes=tczyx.shape, dtype=tczyx.dtype,
                      axes_names=["t", "c", "z", "y", "x"],
                      axes_types=["time", "channel", "space", "space", "space"],
                      physical_pixel_size=[1, 1, 0.5, 0.2, 0.2],
                      channels=[Channel(label=n, color="FFFFFF") for n in names])
    w.write_full_volume(tczyx)
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--z", type=int, default=40)
    ap.add_argument("--channels", type=int, default=2)
    ap.add_argument("--size", type=int, default=1024)
    args = ap.parse_args()

    from bioio import BioImage

    from napari_focusqa.io import read_image, read_series

    rng = np.random.default_rng(0)
    data = rng.integers(0, 4000, (args.z, args.channels, args.size, args.size), dtype=np.uint16)
    mb = data.nbytes / 2**20
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = _write_all(Path(tmp), data)
        for fmt, p in paths.items():
            img = read_image(p)
            assert np.array_equal(img.zcyx(0), data), fmt  # same pixels, or no comparison
            rows.append((f"read_image  {fmt}", _time(lambda p=p: read_image(p), args.repeat), ""))
        import bioio_ome_tiff
        import bioio_tifffile

        for fmt, reader in (("imagej-tiff", bioio_tifffile.Reader),
                            ("ome-tiff", bioio_ome_tiff.Reader)):
            p = paths[fmt]
            rows.append((f"bioio {reader.__module__.split('.')[0]}  {fmt}",
                         _time(lambda p=p, r=reader: BioImage(p, reader=r).get_image_data("TZCYX"),
                               args.repeat), "(not used: slower)"))
        for fmt in ("imagej-tiff", "czi"):
            p = paths[fmt]
            rows.append((f"lazy open (napari)  {fmt}",
                         _time(lambda p=p: read_series(p, lazy=True), args.repeat), ""))
    base = rows[0][1]
    print(f"stack {args.z}x{args.channels}x{args.size}x{args.size} uint16 ({mb:.0f} MiB), "
          f"median of {args.repeat}; ratio vs read_image on the ImageJ TIFF (tifffile)")
    print(f"{'reader / format':<42}{'ms':>10}{'ratio':>8}")
    print("-" * 60)
    for name, ms, note in rows:
        print(f"{name:<42}{ms:>10.1f}{ms / base:>8.2f}  {note}")

    czi, tif = SHARED / "czitools_CellDivision_T3_Z5_CH2_X240_Y170.czi", \
        SHARED / "czitools_celldivision_2ch_zstack.tif"
    if czi.exists() and tif.exists():
        t_tif = _time(lambda: read_image(tif), args.repeat)
        t_czi = _time(lambda: read_image(czi), args.repeat)
        print(f"\nreal CellDivision 3x5x2x170x240 (0.6 MiB): TIFF {t_tif:.1f} ms, "
              f"CZI {t_czi:.1f} ms, ratio {t_czi / t_tif:.1f} (per-file metadata cost "
              "dominates tiny files)")
    else:
        print(f"\n(real CZI comparison skipped: {SHARED} not present)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
