"""Read microscopy images keeping axes, channel names, z-step and pixel size.

:func:`read_image` returns an :class:`ImageData` whose ``data`` always has axes
``"TZCYX"`` (missing axes have length 1), so every front end sees the same layout.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_focusqa._logging import quiet_logger
from napari_focusqa.core.errors import ImageError
from napari_focusqa.core.stains import stain_for_channel

TIFF_SUFFIXES = (".tif", ".tiff", ".ome.tif", ".ome.tiff", ".btf")
PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
_MICRO = ("µm", "um", "micron", "microns", "micrometer", "\\u00b5m", "μm")


@dataclass
class ImageData:
    """An image in canonical ``TZCYX`` order plus the metadata FocusQA uses."""

    data: np.ndarray
    path: str | None = None
    channel_names: list[str | None] = field(default_factory=list)
    z_step_um: float | None = None
    pixel_size_um: float | None = None
    original_axes: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def shape_tzcyx(self) -> tuple[int, int, int, int, int]:
        t, z, c, y, x = self.data.shape
        return (t, z, c, y, x)

    @property
    def n_channels(self) -> int:
        return int(self.data.shape[2])

    @property
    def n_slices(self) -> int:
        return int(self.data.shape[1])

    @property
    def stains(self) -> list[str]:
        """Stain class per channel; a lone unnamed channel falls back to the Info text."""
        info = self.metadata.get("info")
        if self.n_channels == 1 and self.channel_names[0] is None and info:
            return [stain_for_channel(str(info))]
        return [stain_for_channel(n) for n in self.channel_names]

    def zcyx(self, t: int = 0) -> np.ndarray:
        """The (Z, C, Y, X) stack of time point ``t``."""
        if not 0 <= t < self.data.shape[0]:
            raise ImageError(f"t: time index {t} out of range (0..{self.data.shape[0] - 1})")
        return self.data[t]

    def source(self) -> dict[str, Any]:
        return {"file": self.path}


def _canonical(arr: np.ndarray, axes: str, path: str) -> np.ndarray:
    axes = axes.upper()
    # tifffile names an unknown leading axis Q/I; treat it as Z (or T if Z exists)
    rename = {"Q": "Z", "I": "Z", "R": "Z"}
    out_axes = []
    for a in axes:
        b = rename.get(a, a)
        if b in out_axes:
            b = "T" if "T" not in out_axes else b
        out_axes.append(b)
    if "S" in out_axes:
        n = arr.shape[out_axes.index("S")]
        # 8-bit RGB(A) is a colour picture; tifffile also stores e.g. (4, Y, X) uint16
        # arrays as planar "RGB" by default, which we read as channels instead.
        if n in (3, 4) and arr.dtype == np.uint8:
            raise ImageError(
                f"{path}: RGB(A) image (samples per pixel = {n}); FocusQA assesses grey "
                "fluorescence channels: save the channels as a grey hyperstack"
            )
        # other sample counts: treat as channels
        out_axes[out_axes.index("S")] = "C" if "C" not in out_axes else "T"
    unknown = [a for a in out_axes if a not in "TZCYX"]
    for a in unknown:
        i = out_axes.index(a)
        if arr.shape[i] != 1:
            raise ImageError(
                f"{path}: unsupported axis {a!r} of length {arr.shape[i]} in axes {axes!r}; "
                "expected at most T, Z, C, Y, X"
            )
        arr = np.take(arr, 0, axis=i)
        out_axes.pop(i)
    if len(set(out_axes)) != len(out_axes):
        raise ImageError(f"{path}: cannot interpret axes {axes!r}")
    for a in "TZCYX":
        if a not in out_axes:
            arr = arr[np.newaxis]
            out_axes.insert(0, a)
    order = [out_axes.index(a) for a in "TZCYX"]
    return np.transpose(arr, order)


def _um(value: float, unit: str | None) -> float | None:
    u = (unit or "").strip().lower()
    if u in ("nm", "nanometer"):
        return value / 1000.0
    if u in ("mm",):
        return value * 1000.0
    if u in _MICRO:
        return value
    return value if not u else None


def _parse_labels(labels: Any) -> list[str]:
    if isinstance(labels, (list, tuple)):
        return [str(x) for x in labels]
    if isinstance(labels, str):
        try:
            v = ast.literal_eval(labels)
            if isinstance(v, (list, tuple)):
                return [str(x) for x in v]
        except (ValueError, SyntaxError):
            return [labels]
    return []


def _ome_meta(tif: Any) -> dict[str, Any]:
    import tifffile

    out: dict[str, Any] = {}
    try:
        d = tifffile.xml2dict(tif.ome_metadata)
    except Exception:  # malformed OME XML: fall back to pixels only
        return out
    ome = d.get("OME", {})
    img = ome.get("Image", {})
    if isinstance(img, list):
        img = img[0]
    px = img.get("Pixels", {})
    if "PhysicalSizeZ" in px:
        out["z_step_um"] = _um(float(px["PhysicalSizeZ"]), px.get("PhysicalSizeZUnit", "µm"))
    if "PhysicalSizeX" in px:
        out["pixel_size_um"] = _um(float(px["PhysicalSizeX"]), px.get("PhysicalSizeXUnit", "µm"))
    ch = px.get("Channel", [])
    if isinstance(ch, dict):
        ch = [ch]
    names = [c.get("Name") or c.get("Fluor") for c in ch if isinstance(c, dict)]
    if names:
        out["channel_names"] = names
    return out


def _imagej_meta(tif: Any, n_channels: int) -> dict[str, Any]:
    ij = tif.imagej_metadata or {}
    out: dict[str, Any] = {"info": ij.get("Info")}
    unit = ij.get("unit")
    if "spacing" in ij:
        out["z_step_um"] = _um(float(ij["spacing"]), unit)
    page = tif.pages[0]
    xr = page.tags.get("XResolution")
    if xr is not None:
        num, den = xr.value
        if num and num != den:
            px = float(den) / float(num)
            if unit:
                out["pixel_size_um"] = _um(px, unit)
            else:  # no ImageJ unit: use the TIFF ResolutionUnit (1 = none -> assume µm)
                ru = int(getattr(page.tags.get("ResolutionUnit"), "value", 1))
                out["pixel_size_um"] = {2: px * 25400.0, 3: px * 10000.0}.get(ru, px)
    labels = _parse_labels(ij.get("Labels"))
    if labels and ij.get("channels", 1) == n_channels and n_channels > 1:
        out["channel_names"] = labels[:n_channels] if len(labels) >= n_channels else None
    return out


def _check_size(path: str, nbytes: int) -> None:
    """Refuse images whose header claims more bytes than this machine's memory."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if nbytes > total:
        raise ImageError(
            f"{path}: header claims {nbytes / 2**30:.1f} GiB of pixels, more than this "
            f"machine's {total / 2**30:.1f} GiB of memory (damaged file?)"
        )


def read_tiff(path: str) -> ImageData:
    # tifffile logs warnings for damaged files; we raise one clear error instead
    with quiet_logger("tifffile"):
        return _read_tiff(path)


def _read_tiff(path: str) -> ImageData:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.series:
                raise ImageError(f"{path}: TIFF contains no image series")
            series = tif.series[0]
            axes = series.axes
            _check_size(path, int(series.size) * series.dtype.itemsize)
            arr = series.asarray()
            meta: dict[str, Any] = {}
            canon = _canonical(arr, axes, path)
            nc = canon.shape[2]
            if tif.is_ome:
                meta.update(_ome_meta(tif))
            elif tif.is_imagej:
                meta.update(_imagej_meta(tif, nc))
    except ImageError:
        raise
    except MemoryError as exc:
        raise ImageError(f"{path}: image does not fit in memory") from exc
    except Exception as exc:  # tifffile/imagecodecs raise many types for damaged data
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageError(f"{path}: not a readable TIFF ({type(exc).__name__}: {reason})") from exc
    names = meta.get("channel_names") or [None] * nc
    if len(names) != nc:
        names = [None] * nc
    return ImageData(
        data=canon,
        path=path,
        channel_names=list(names),
        z_step_um=meta.get("z_step_um"),
        pixel_size_um=meta.get("pixel_size_um"),
        original_axes=axes,
        metadata={k: v for k, v in meta.items() if k == "info" and v},
    )


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
    return ImageData(data=_canonical(arr, "YX", path), path=path, channel_names=[None],
                     original_axes="YX")


def read_image(path: str | os.PathLike[str]) -> ImageData:
    """Read a TIFF (ImageJ hyperstack, OME-TIFF, plain 2D/3D) or PNG.

    Raises
    ------
    ImageError
        Missing, empty, corrupt, RGB or otherwise unusable files, naming the file.
    """
    p = Path(path)
    s = str(path)
    if not p.exists():
        raise ImageError(f"{s}: file does not exist")
    if p.is_dir():
        raise ImageError(f"{s}: is a folder; pass image files (or use `focusqa batch`)")
    if p.stat().st_size == 0:
        raise ImageError(f"{s}: file is empty")
    name = p.name.lower()
    if name.endswith(PLAIN_SUFFIXES):
        img = read_plain(s)
    else:
        img = read_tiff(s)
    if img.data.size == 0:
        raise ImageError(f"{s}: image has no pixels (shape {img.data.shape})")
    if img.data.dtype.kind not in "biuf":
        raise ImageError(f"{s}: unsupported pixel type {img.data.dtype}")
    return img
