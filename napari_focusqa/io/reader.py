"""Read microscopy images keeping axes, channel names, z-step, pixel size and series.

:func:`read_image` returns one :class:`ImageData` whose ``data`` always has axes
``"TZCYX"`` (missing axes have length 1), so every front end sees the same layout for
every format. :func:`read_series` returns every series (scene, position, OME image) of a
file. A multi-series file is never silently reduced to its first series:
:func:`read_image` refuses it unless a series is chosen.

Formats: TIFF (ImageJ hyperstack, OME-TIFF, plain) and PNG/JPEG/BMP with the core
install; CZI, ND2, LIF and OME-Zarr through bioio with the ``[formats]`` extra.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from napari_focusqa.core.errors import ImageError
from napari_focusqa.io.bioio_reader import (
    BIOIO_FORMATS,
    bioio_format,
    plugin_available,
    read_bioio,
)
from napari_focusqa.io.image_data import ImageData, to_tzcyx
from napari_focusqa.io.tiff import read_tiff, tiff_readable

__all__ = ["SUPPORTED_SUFFIXES", "ImageData", "can_read", "read_image", "read_series",
           "series_count"]

TIFF_SUFFIXES = (".tif", ".tiff", ".ome.tif", ".ome.tiff", ".btf")
PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
VENDOR_SUFFIXES = tuple(BIOIO_FORMATS)
#: every file name ending FocusQA reads (vendor ones need the ``[formats]`` extra)
SUPPORTED_SUFFIXES = TIFF_SUFFIXES + PLAIN_SUFFIXES + VENDOR_SUFFIXES


def is_supported(path: str | os.PathLike[str]) -> bool:
    """True when the file name has a suffix FocusQA reads (``.zarr`` folders included)."""
    return str(path).lower().rstrip("/").endswith(SUPPORTED_SUFFIXES)


def can_read(path: str | os.PathLike[str]) -> bool:
    """Cheap check (headers only) that :func:`read_series` will read this file.

    TIFFs: tifffile parses the header and finds a series that is not 8-bit RGB; vendor
    files: bioio and the plugin are installed; PNG/JPEG/BMP: a grey image mode.
    """
    p = Path(path)
    name = p.name.lower().rstrip("/")
    if not p.exists() or not name.endswith(SUPPORTED_SUFFIXES):
        return False
    if bioio_format(name):
        return plugin_available(name)
    if p.is_dir() or p.stat().st_size == 0:
        return False
    if name.endswith(PLAIN_SUFFIXES):
        try:
            from PIL import Image

            with Image.open(p) as im:
                return im.mode in ("1", "L", "I", "I;16", "I;16B", "F")
        except Exception:  # not an image PIL can open
            return False
    return tiff_readable(str(p))


def read_plain(path: str) -> ImageData:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            mode = im.mode
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageError(f"{path}: not a readable image ({exc})") from exc
    if arr.ndim == 3:
        if mode in ("RGB", "RGBA", "P") and not (arr[..., 0] == arr[..., 1]).all():
            raise ImageError(
                f"{path}: RGB image; FocusQA assesses grey fluorescence channels "
                "(convert to greyscale first)"
            )
        arr = arr[..., 0]
    return ImageData(data=to_tzcyx(arr, "YX", path), path=path, channel_names=[None],
                     original_axes="YX", format=Path(path).suffix.lower().lstrip("."))


def _checked_path(path: str | os.PathLike[str]) -> str:
    p = Path(path)
    s = str(path)
    if not p.exists():
        raise ImageError(f"{s}: file does not exist")
    name = p.name.lower()
    if p.is_dir():
        if bioio_format(name):  # OME-Zarr is a folder
            return s
        raise ImageError(f"{s}: is a folder; pass image files (or use `focusqa batch`)")
    if p.stat().st_size == 0:
        raise ImageError(f"{s}: file is empty")
    if not name.endswith(SUPPORTED_SUFFIXES):
        raise ImageError(
            f"{s}: unsupported format {p.suffix or '(no suffix)'!r}; FocusQA reads TIFF, "
            "OME-TIFF, PNG/JPEG/BMP and, with the [formats] extra, CZI, ND2, LIF, OME-Zarr"
        )
    return s


def _read(path: str, lazy: bool, only: int | None) -> list[ImageData]:
    name = Path(path).name.lower()
    if name.endswith(PLAIN_SUFFIXES):
        if only not in (None, 0):
            raise ImageError(f"{path}: series {only} out of range; the file holds 1 series")
        imgs = [read_plain(path)]
    elif bioio_format(name):
        imgs = read_bioio(path, lazy=lazy, only=only)
    else:
        imgs = read_tiff(path, lazy=lazy, only=only)
    for img in imgs:
        if int(np.prod(img.data.shape)) == 0:
            raise ImageError(f"{path}: image has no pixels (shape {tuple(img.data.shape)})")
        if np.dtype(img.data.dtype).kind not in "biuf":
            raise ImageError(f"{path}: unsupported pixel type {img.data.dtype}")
    return imgs


def read_series(path: str | os.PathLike[str], *, lazy: bool = False) -> list[ImageData]:
    """Every series (scene / position / OME image) of a file, in file order.

    ``lazy=True`` gives dask arrays where the library allows (tifffile via zarr, bioio);
    otherwise numpy arrays.

    Raises
    ------
    ImageError
        Missing, empty, corrupt, RGB, unsupported or otherwise unusable files (one line
        naming the file), including a vendor format whose bioio plugin is not installed.
    """
    return _read(_checked_path(path), lazy, None)


def read_image(path: str | os.PathLike[str], *, series: int | None = None,
               lazy: bool = False) -> ImageData:
    """One series of a file as :class:`ImageData` (``TZCYX``).

    ``series=None`` reads a single-series file and refuses a multi-series one (use
    :func:`read_series` for all, or pick ``series=N``): no series is silently dropped.

    Raises
    ------
    ImageError
        As :func:`read_series`; also a multi-series file without ``series`` and a
        ``series`` index the file does not have.
    """
    s = _checked_path(path)
    imgs = _read(s, lazy, series)
    if series is None and len(imgs) > 1:
        names = ", ".join(im.series_name or str(im.series) for im in imgs[:6])
        more = ", ..." if len(imgs) > 6 else ""
        raise ImageError(
            f"{s}: holds {len(imgs)} series ({names}{more}); choose one with series=N "
            "(CLI --series N) or read every series with read_series()"
        )
    return imgs[0]


def series_count(path: str | os.PathLike[str]) -> int:
    """How many series a file holds (reads lazily where the library allows)."""
    return len(read_series(path, lazy=True))
