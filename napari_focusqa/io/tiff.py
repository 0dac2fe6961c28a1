"""TIFF reading with tifffile: ImageJ hyperstacks, OME-TIFF and plain TIFFs.

Every series of the file is returned (OME images / positions), never only the first.
tifffile reads TIFF pixels 4-6x faster than bioio's TIFF plugins on the same file
(``benchmarks/bench_io.py``), so TIFFs stay on this path even when bioio is installed.
"""

from __future__ import annotations

from typing import Any

from napari_focusqa._logging import quiet_logger
from napari_focusqa.core.errors import ImageError
from napari_focusqa.io.image_data import (
    ImageData,
    check_series_index,
    check_size,
    first_line,
    to_tzcyx,
)
from napari_focusqa.io.metadata import imagej_fields, ome_images, ome_optics


def read_tiff(path: str, *, lazy: bool = False, only: int | None = None) -> list[ImageData]:
    """Every series of a TIFF as :class:`ImageData` (``lazy``: dask arrays via zarr).

    ``only``: read just that series (its ``n_series`` still counts them all).
    """
    # tifffile logs warnings for damaged files; we raise one clear error instead
    with quiet_logger("tifffile"):
        return _read_tiff(path, lazy, only)


def tiff_readable(path: str) -> bool:
    """True when tifffile parses the header and a series is not an 8-bit RGB(A) picture."""
    import tifffile

    try:
        with quiet_logger("tifffile"), tifffile.TiffFile(path) as tif:
            for s in tif.series:
                if "S" in s.axes and s.dtype == "uint8" and s.shape[s.axes.index("S")] in (3, 4):
                    return False
            return bool(tif.series)
    except Exception:  # any parse failure: not ours to claim
        return False


def _lazy_array(path: str, index: int) -> Any:
    """A dask array over series ``index`` (None when dask/zarr are missing).

    The zarr store opens its own file handle, which stays open while the array lives.
    """
    try:
        import dask.array as da
        import tifffile
        import zarr
    except ImportError:
        return None
    store = tifffile.imread(path, aszarr=True, series=index)
    z = zarr.open(store, mode="r")
    if not hasattr(z, "shape"):  # a multiscale group: level 0 is full resolution
        z = z["0"]
    return da.from_zarr(z)


def _read_tiff(path: str, lazy: bool, only: int | None) -> list[ImageData]:
    import tifffile

    out: list[ImageData] = []
    try:
        with tifffile.TiffFile(path) as tif:
            all_series = list(tif.series)
            if not all_series:
                raise ImageError(f"{path}: TIFF contains no image series")
            check_series_index(path, only, len(all_series))
            wanted = range(len(all_series)) if only is None else [only]
            check_size(path, sum(int(all_series[i].size) * all_series[i].dtype.itemsize
                                 for i in wanted))
            ome = ome_images(tif.ome_metadata) if tif.is_ome else []
            optics = ome_optics(tif.ome_metadata) if tif.is_ome else []
            fmt = "ome-tiff" if tif.is_ome else "imagej-tiff" if tif.is_imagej else "tiff"
            for i in wanted:
                series = all_series[i]
                arr = _lazy_array(path, i) if lazy else None
                if arr is None:
                    arr = series.asarray()
                canon = to_tzcyx(arr, series.axes, path)
                nc = int(canon.shape[2])
                meta: dict[str, Any] = {}
                if tif.is_ome:
                    meta = dict(ome[i]) if i < len(ome) else {}
                elif tif.is_imagej:
                    meta = imagej_fields(tif.imagej_metadata or {}, tif.pages.first.tags, nc)
                names = meta.get("channel_names") or [None] * nc
                out.append(ImageData(
                    data=canon,
                    path=path,
                    channel_names=list(names) if len(names) == nc else [None] * nc,
                    z_step_um=meta.get("z_step_um"),
                    pixel_size_um=meta.get("pixel_size_um"),
                    original_axes=series.axes,
                    metadata={**({"info": meta["info"]} if meta.get("info") else {}),
                              **({"optics": optics[i]}
                                 if i < len(optics) and optics[i] else {})},
                    series=i,
                    series_name=meta.get("series_name"),
                    n_series=len(all_series),
                    format=fmt,
                ))
    except ImageError:
        raise
    except MemoryError as exc:
        raise ImageError(f"{path}: image does not fit in memory") from exc
    except Exception as exc:  # tifffile/imagecodecs raise many types for damaged data
        raise ImageError(f"{path}: not a readable TIFF ({first_line(exc)})") from exc
    return out
