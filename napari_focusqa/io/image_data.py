"""The one image type every reader returns: pixels in ``TZCYX`` order plus metadata.

A file may hold several *series* (scenes, positions, wells, OME images). Each series is
its own :class:`ImageData`; ``series``/``series_name``/``n_series`` say which one it is,
so no series is ever silently dropped or mixed with another.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_focusqa.core.errors import ImageError
from napari_focusqa.core.stains import stain_for_channel

#: a ``dask.array.Array`` when read lazily (the napari reader); numpy otherwise
ArrayLike = Any


@dataclass
class ImageData:
    """One series of an image file in canonical ``TZCYX`` order.

    ``data`` is a numpy array, or a dask array when the reader was asked for a lazy
    read (``lazy=True``); index it and call ``np.asarray`` to get pixels.
    """

    data: ArrayLike
    path: str | None = None
    channel_names: list[str | None] = field(default_factory=list)
    z_step_um: float | None = None
    pixel_size_um: float | None = None
    original_axes: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    #: index of this series in its file (scene / position / OME image), 0-based
    series: int = 0
    #: the file's name for this series (OME Image Name, CZI scene name, ...) if any
    series_name: str | None = None
    #: how many series the file holds
    n_series: int = 1
    #: reader that produced it: "imagej-tiff", "ome-tiff", "tiff", "png", "czi", ...
    format: str = ""

    @property
    def shape_tzcyx(self) -> tuple[int, int, int, int, int]:
        t, z, c, y, x = self.data.shape
        return (int(t), int(z), int(c), int(y), int(x))

    @property
    def n_channels(self) -> int:
        return int(self.data.shape[2])

    @property
    def n_slices(self) -> int:
        return int(self.data.shape[1])

    @property
    def n_times(self) -> int:
        return int(self.data.shape[0])

    @property
    def is_lazy(self) -> bool:
        return not isinstance(self.data, np.ndarray)

    @property
    def stains(self) -> list[str]:
        """Stain class per channel; a lone unnamed channel falls back to the Info text."""
        info = self.metadata.get("info")
        if self.n_channels == 1 and self.channel_names[0] is None and info:
            return [stain_for_channel(str(info))]
        return [stain_for_channel(n) for n in self.channel_names]

    def zcyx(self, t: int = 0) -> np.ndarray:
        """The (Z, C, Y, X) stack of time point ``t`` (always a numpy array)."""
        if not 0 <= t < self.data.shape[0]:
            raise ImageError(f"t: time index {t} out of range (0..{self.data.shape[0] - 1})")
        return np.asarray(self.data[t])

    def loaded(self) -> ImageData:
        """This image with its pixels in memory (itself when already numpy)."""
        if not self.is_lazy:
            return self
        from dataclasses import replace

        return replace(self, data=np.asarray(self.data))

    def source(self) -> dict[str, Any]:
        """Provenance for result records: the file, plus the series of a multi-series file."""
        out: dict[str, Any] = {"file": self.path}
        if self.n_series > 1:
            out["series"] = self.series
            if self.series_name:
                out["series_name"] = self.series_name
        for key in ("well", "plate_row", "plate_column"):
            if self.metadata.get(key) is not None:
                out[key] = self.metadata[key]
        return out


def to_tzcyx(arr: Any, axes: str, path: str) -> Any:
    """Reorder an array with axes string ``axes`` (tifffile letters) to ``TZCYX``.

    Works on numpy and dask arrays. Unknown axes of length 1 are dropped; unknown axes
    longer than 1 and 8-bit RGB(A) samples are refused with an :class:`ImageError`.
    """
    axes = axes.upper()
    # tifffile names an unknown leading axis Q/I; treat it as Z (or T if Z exists)
    rename = {"Q": "Z", "I": "Z", "R": "Z"}
    out_axes: list[str] = []
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
        out_axes[out_axes.index("S")] = "C" if "C" not in out_axes else "T"
    for a in [a for a in out_axes if a not in "TZCYX"]:
        i = out_axes.index(a)
        if arr.shape[i] != 1:
            raise ImageError(
                f"{path}: unsupported axis {a!r} of length {arr.shape[i]} in axes {axes!r}; "
                "expected at most T, Z, C, Y, X"
            )
        arr = arr[(slice(None),) * i + (0,)]
        out_axes.pop(i)
    if len(set(out_axes)) != len(out_axes):
        raise ImageError(f"{path}: cannot interpret axes {axes!r}")
    for a in "TZCYX":
        if a not in out_axes:
            arr = arr[None]
            out_axes.insert(0, a)
    return arr.transpose([out_axes.index(a) for a in "TZCYX"])


def check_size(path: str, nbytes: int) -> None:
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


def check_series_index(path: str, index: int | None, n_series: int) -> None:
    """Refuse a series index the file does not have."""
    if index is not None and not 0 <= index < n_series:
        raise ImageError(f"{path}: series {index} out of range; the file holds {n_series} "
                         f"series (0..{n_series - 1})")


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` for one-line error reports."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
