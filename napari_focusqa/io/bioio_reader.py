"""Vendor formats through bioio: CZI, ND2, LIF and OME-Zarr (the ``[formats]`` extra).

Each scene/position becomes one :class:`ImageData` series. The plugin is chosen from the
file name, so a missing plugin gives one clear line instead of bioio's scan of every
installed reader.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import numpy as np

from napari_focusqa._logging import quiet_logger
from napari_focusqa.core.errors import ImageError
from napari_focusqa.io.image_data import (
    ImageData,
    check_series_index,
    check_size,
    first_line,
    to_tzcyx,
)
from napari_focusqa.io.metadata import (
    clean_channel_names,
    czi_optics,
    plate_fields,
    positive,
)

#: suffix -> (plugin module, pip package, format name)
BIOIO_FORMATS: dict[str, tuple[str, str, str]] = {
    ".czi": ("bioio_czi", "bioio-czi", "CZI"),
    ".nd2": ("bioio_nd2", "bioio-nd2", "ND2"),
    ".lif": ("bioio_lif", "bioio-lif", "LIF"),
    ".zarr": ("bioio_ome_zarr", "bioio-ome-zarr", "OME-Zarr"),
}
INSTALL_HINT = "pip install 'napari-focusqa[formats]'"
_PLACEHOLDER_SCENE = re.compile(r"^Image:\d+$")


def bioio_format(name: str) -> tuple[str, str, str] | None:
    """The (plugin module, package, format) for a file name, or None."""
    low = name.lower().rstrip("/")
    for suf, fmt in BIOIO_FORMATS.items():
        if low.endswith(suf):
            return fmt
    return None


def plugin_available(name: str) -> bool:
    """True when bioio and the plugin for this file name can be imported."""
    fmt = bioio_format(name)
    if fmt is None:
        return False
    try:
        importlib.import_module("bioio")
        importlib.import_module(fmt[0])
    except ImportError:
        return False
    return True


def _reader_class(path: str) -> tuple[Any, Any, str]:
    fmt = bioio_format(path)
    if fmt is None:
        raise ImageError(f"{path}: not a bioio format")
    module, package, label = fmt
    try:
        bioio = importlib.import_module("bioio")
    except ImportError as exc:
        raise ImageError(f"{path}: reading {label} files needs bioio and {package} "
                         f"({INSTALL_HINT})") from exc
    try:
        plugin = importlib.import_module(module)
    except ImportError as exc:
        raise ImageError(f"{path}: reading {label} files needs the {package} plugin "
                         f"({INSTALL_HINT})") from exc
    return bioio.BioImage, plugin.Reader, label


def read_bioio(path: str, *, lazy: bool = False, only: int | None = None) -> list[ImageData]:
    """Every scene of a vendor file as :class:`ImageData` (dask arrays when ``lazy``).

    ``only``: read just that scene (its ``n_series`` still counts them all).
    """
    bio_image, reader, label = _reader_class(path)
    # bioio and its plugins log/warn about metadata they cannot parse; we report errors
    with quiet_logger("bioio"), quiet_logger("bioio_base"), \
            quiet_logger(reader.__module__.split(".")[0]):
        try:
            im = bio_image(path, reader=reader)
            scenes = list(im.scenes)
            if label == "CZI":
                from napari_focusqa.io.czi import read_czi_direct, subblock_scene_count

                n_pixels = subblock_scene_count(path)
                if n_pixels is not None and n_pixels != len(scenes):
                    # bioio-czi lists scenes from the XML; never drop the others
                    return read_czi_direct(path, lazy=lazy, only=only)
            check_series_index(path, only, len(scenes))
            wanted = range(len(scenes)) if only is None else [only]
            return [_scene(im, path, i, scenes, label, lazy) for i in wanted]
        except ImageError:
            raise
        except MemoryError as exc:
            raise ImageError(f"{path}: image does not fit in memory") from exc
        except Exception as exc:  # plugins raise many types for damaged/odd files
            if label == "CZI" and type(exc).__name__ == "UnsupportedMetadataError":
                # bioio-czi refuses CZIs without a Scaling block; read them directly
                from napari_focusqa.io.czi import read_czi_direct

                return read_czi_direct(path, lazy=lazy, only=only)
            raise ImageError(f"{path}: not a readable {label} file ({first_line(exc)})") from exc


def _scene(im: Any, path: str, index: int, scenes: list[str], label: str,
           lazy: bool) -> ImageData:
    im.set_scene(index)
    order = str(im.dims.order)
    arr = to_tzcyx(im.dask_data, order, path)
    check_size(path, int(np.prod(arr.shape)) * np.dtype(arr.dtype).itemsize)
    if not lazy:
        eager = None
        if label == "CZI" and set(order) <= set("TCZYX"):
            from napari_focusqa.io.czi import czi_pixels

            eager = czi_pixels(path, index, tuple(int(n) for n in arr.shape))
        arr = np.asarray(arr) if eager is None else eager
    nc = int(arr.shape[2])
    pps = im.physical_pixel_sizes
    name = str(scenes[index])
    placeholder = bool(_PLACEHOLDER_SCENE.match(name))
    extra: dict[str, Any] = {}
    if not placeholder or len(scenes) > 1:
        # plate row/column/position: only files with named or several scenes carry them,
        # and bioio builds standard_metadata through a full OME conversion (~0.5 s/CZI)
        try:
            extra = plate_fields(im.standard_metadata)
        except Exception:  # standard metadata is optional; pixels and names are not
            extra = {}
    if label == "CZI":
        try:
            optics = czi_optics(im.metadata)
        except Exception:  # optics are optional too
            optics = None
        if optics:
            extra["optics"] = optics
    return ImageData(
        data=arr,
        path=path,
        channel_names=clean_channel_names(im.channel_names, nc),
        z_step_um=positive(pps.Z),
        pixel_size_um=positive(pps.X),
        original_axes=order,
        metadata=extra,
        series=index,
        series_name=None if placeholder else name,
        n_series=len(scenes),
        format=label.lower(),
    )
