"""napari reader: TIFF / OME-TIFF / ImageJ hyperstacks, CZI / ND2 / LIF / OME-Zarr
(with the ``[formats]`` extra) and folders of single-plane TIFFs.

The reader claims only files it can read: a TIFF whose header it has checked (not RGB),
a vendor file whose bioio plugin is installed, a folder of TIFFs or an ``.zarr`` folder.
Anything else is left to napari's other readers. Pixels are read lazily (dask) where the
library allows, so a large file opens at once and only the planes shown are decoded.

Every series (scene / position) opens as one image layer per channel, named after the
channel (or the file and its stain), prefixed by the series when there are several, and
scaled in µm (z from the z-step, y/x from the pixel size). Layer metadata keeps the
source under the ``"focusqa"`` key so the widgets know the stain, z-step, file and series.
Built on :func:`napari_focusqa.io.read_series`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_focusqa.core.errors import ImageError
from napari_focusqa.core.stains import stain_for_channel
from napari_focusqa.io.reader import (
    SUPPORTED_SUFFIXES,
    TIFF_SUFFIXES,
    ImageData,
    can_read,
    read_image,
    read_series,
)

LayerData = tuple[Any, dict[str, Any], str]
PathLike = str | os.PathLike[str]

_COLORMAPS_2 = ("green", "magenta")
_COLORMAPS_N = ("blue", "green", "red", "magenta", "cyan", "yellow")


def _is_tiff(p: Path) -> bool:
    return p.name.lower().endswith(TIFF_SUFFIXES)


def _folder_tiffs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and _is_tiff(p)
                  and not p.name.startswith("."))


def _claims(p: Path) -> bool:
    if p.is_dir() and not p.name.lower().endswith(".zarr"):
        return bool(_folder_tiffs(p))
    return can_read(p)


def get_reader(path: PathLike | Sequence[PathLike]) -> Callable[..., list[LayerData]] | None:
    """npe2 reader hook: a reader function when FocusQA can read every path, else ``None``."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths or not all(_claims(Path(p)) for p in paths):
        return None
    return read_layers


def read_layers(path: PathLike | Sequence[PathLike]) -> list[LayerData]:
    """Layer data tuples for files (every series, lazily) and/or folders of TIFFs."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    layers: list[LayerData] = []
    for p in map(Path, paths):
        if p.is_dir() and not p.name.lower().endswith(".zarr"):
            layers.extend(_folder_layers(p))
        else:
            for img in read_series(p, lazy=True):
                layers.extend(image_layers(img))
    return layers


def read_folder(folder: PathLike) -> ImageData:
    """Stack a folder of single-plane TIFFs (sorted by name) along z.

    Raises
    ------
    ImageError
        No TIFFs, files with several planes, or planes of different shapes/channels.
    """
    folder = Path(folder)
    files = _folder_tiffs(folder)
    if not files:
        raise ImageError(f"{folder}: folder contains no TIFF files")
    imgs = [read_image(f) for f in files]
    first = imgs[0]
    for f, im in zip(files, imgs):
        t, z, c, y, x = im.data.shape
        if t != 1 or z != 1:
            raise ImageError(
                f"{folder}: {f.name} holds {t * z} planes; a folder is stacked along z only "
                "when every file is one plane (open multi-plane files directly)"
            )
        if im.data.shape != first.data.shape:
            raise ImageError(
                f"{folder}: {f.name} has shape {im.data.shape[2:]} (C, Y, X) but "
                f"{files[0].name} has {first.data.shape[2:]}; all planes must match"
            )
    data = np.concatenate([im.data for im in imgs], axis=1)
    return ImageData(
        data=data,
        path=str(folder),
        channel_names=list(first.channel_names),
        z_step_um=first.z_step_um,
        pixel_size_um=first.pixel_size_um,
        original_axes="ZCYX" if first.n_channels > 1 else "ZYX",
        metadata=dict(first.metadata, files=[f.name for f in files]),
    )


def _folder_layers(folder: Path) -> list[LayerData]:
    files = _folder_tiffs(folder)
    if not files:
        raise ImageError(f"{folder}: folder contains no TIFF files")
    first = read_series(files[0], lazy=True)[0]
    if first.data.shape[0] == 1 and first.data.shape[1] == 1:
        return image_layers(read_folder(folder))
    # a folder of stacks: every file on its own
    layers: list[LayerData] = []
    for f in files:
        for img in read_series(f, lazy=True):
            layers.extend(image_layers(img))
    return layers


def layer_name(img: ImageData, c: int) -> str:
    """Channel name when known; else the file name plus channel index and stain.

    A series of a multi-series file is prefixed with its name (or ``S<index>``).
    """
    prefix = ""
    if img.n_series > 1:
        prefix = f"{img.series_name or f'S{img.series}'} "
    name = img.channel_names[c] if c < len(img.channel_names) else None
    if name:
        return prefix + str(name)
    stem = Path(img.path).name.rstrip("/") if img.path else "image"
    for suf in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if stem.lower().endswith(suf):
            stem = stem[: -len(suf)]
            break
    stain = img.stains[c]
    label = stem if img.n_channels == 1 else f"{stem} C{c}"
    return prefix + (label if stain == "generic" else f"{label} [{stain}]")


def image_layers(img: ImageData) -> list[LayerData]:
    """One image-layer tuple per channel of ``img``.

    Layer data is ``(T, Z, Y, X)`` when there are several time points, else ``(Z, Y, X)``,
    else ``(Y, X)`` for a single plane; scale in µm when the file says so.
    """
    t, z, nc, _, _ = img.data.shape
    xy = img.pixel_size_um if img.pixel_size_um else 1.0
    zs = img.z_step_um if img.z_step_um else 1.0
    stains = img.stains
    cmaps = ("gray",) if nc == 1 else _COLORMAPS_2 if nc == 2 else _COLORMAPS_N
    layers: list[LayerData] = []
    for c in range(nc):
        arr = img.data[:, :, c]
        if t > 1:
            scale: tuple[float, ...] = (1.0, zs, xy, xy)
        elif z > 1:
            arr, scale = arr[0], (zs, xy, xy)
        else:
            arr, scale = arr[0, 0], (xy, xy)
        name = img.channel_names[c] if c < len(img.channel_names) else None
        meta = {
            "focusqa": {
                "source": img.path,
                "channel_index": c,
                "channel_name": name,
                "stain": stains[c] if c < len(stains) else stain_for_channel(name),
                "z_step_um": img.z_step_um,
                "pixel_size_um": img.pixel_size_um,
                "original_axes": img.original_axes,
                "time_points": t,
                "info": img.metadata.get("info"),
                "optics": img.metadata.get("optics"),
                "series": img.series,
                "series_name": img.series_name,
                "n_series": img.n_series,
                "format": img.format,
                **{k: img.metadata[k] for k in ("well", "plate_row", "plate_column")
                   if img.metadata.get(k) is not None},
            }
        }
        if "files" in img.metadata:
            meta["focusqa"]["files"] = list(img.metadata["files"])
        kwargs: dict[str, Any] = {
            "name": layer_name(img, c),
            "scale": scale,
            "colormap": cmaps[c % len(cmaps)],
            "blending": "additive" if nc > 1 else "translucent",
            "metadata": meta,
        }
        layers.append((arr, kwargs, "image"))
    return layers
