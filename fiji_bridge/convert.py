"""numpy / :class:`ImageData` <-> ImageJ ``ImagePlus``.

8-, 16- and 32-bit data, stacks and hyperstacks (C, Z, T in ImageJ's channel-fastest
order), calibration (pixel size and z-step in µm, through the reader's unit rule) and
channel names (slice labels). Uses only ImageJ1 classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fiji_bridge.jvm import ImageJSession, jimport, session
from napari_focusqa.core.errors import ImageError
from napari_focusqa.io.image_data import ImageData
from napari_focusqa.io.metadata import to_um

#: axes order of ImageJ hyperstacks as numpy sees them
HYPERSTACK_AXES = "TZCYX"


# --------------------------------------------------------------------------------------
def _ij_dtype(dtype: np.dtype) -> np.dtype:
    """The numpy dtype an array is stored as in ImageJ (8-, 16- or 32-bit)."""
    if dtype == np.uint8 or dtype == np.bool_:
        return np.dtype(np.uint8)
    if dtype == np.uint16:
        return np.dtype(np.uint16)
    if dtype.kind in "iuf":
        return np.dtype(np.float32)
    raise ImageError(f"data: dtype {dtype} cannot be stored in ImageJ (8/16/32-bit only)")


def _to_tzcyx(arr: np.ndarray, axes: str | None) -> np.ndarray:
    if axes is None:
        axes = {2: "YX", 3: "ZYX", 4: "ZCYX", 5: "TZCYX"}.get(arr.ndim)
        if axes is None:
            raise ImageError(f"data: expected 2 to 5 dimensions, got shape {arr.shape}")
    axes = axes.upper()
    if len(axes) != arr.ndim:
        raise ImageError(f"axes: {axes!r} does not match data with {arr.ndim} dimensions")
    if len(set(axes)) != len(axes) or not set(axes) <= set(HYPERSTACK_AXES) or not axes.endswith("YX"):
        raise ImageError(f"axes: expected distinct letters from 'TZCYX' ending in 'YX', got {axes!r}")
    for a in HYPERSTACK_AXES:
        if a not in axes:
            arr = arr[np.newaxis]
            axes = a + axes
    return np.transpose(arr, [axes.index(a) for a in HYPERSTACK_AXES])


def to_imageplus(
    data: Any,
    title: str = "image",
    *,
    axes: str | None = None,
    pixel_size_um: float | None = None,
    z_step_um: float | None = None,
    channel_names: Sequence[str | None] | None = None,
) -> Any:
    """Make an ImageJ ``ImagePlus`` from a numpy array or :class:`ImageData`.

    Parameters
    ----------
    data : array_like or ImageData
        ``uint8`` -> 8-bit, ``uint16`` -> 16-bit, other integer/float dtypes -> 32-bit
        float (integers above 2**24 lose precision), ``bool`` -> 8-bit 0/1.
    title : str
        Window title.
    axes : str, optional
        Letters from ``"TZCYX"`` ending in ``"YX"``; default by dimension: ``YX``,
        ``ZYX``, ``ZCYX``, ``TZCYX``. An :class:`ImageData` is always ``TZCYX``.
    pixel_size_um, z_step_um : float, optional
        Calibration in µm (taken from an :class:`ImageData` when not given).
    channel_names : sequence of str, optional
        Stored as the slice labels of each channel.

    Returns
    -------
    ij.ImagePlus
        A hyperstack when more than one of C/Z/T is > 1 (and not just Z).
    """
    if isinstance(data, ImageData):
        arr, axes = data.data, "TZCYX"
        pixel_size_um = data.pixel_size_um if pixel_size_um is None else pixel_size_um
        z_step_um = data.z_step_um if z_step_um is None else z_step_um
        if channel_names is None:
            channel_names = data.channel_names
    else:
        arr = np.asarray(data)
    if arr.dtype.kind == "c" or arr.dtype.kind not in "biuf":
        raise ImageError(f"data: dtype {arr.dtype} cannot be stored in ImageJ (8/16/32-bit only)")
    tzcyx = _to_tzcyx(arr, axes)
    nt, nz, nc, h, w = tzcyx.shape
    if h < 1 or w < 1:
        raise ImageError(f"data: empty image of shape {arr.shape}")
    if channel_names is not None and len(channel_names) != nc:
        raise ImageError(f"channel_names: expected {nc} names, got {len(channel_names)}")
    ij_dt = _ij_dtype(arr.dtype)
    from jpype import JArray, JByte, JFloat, JShort

    jtype, view = {
        np.dtype(np.uint8): (JByte, np.int8),
        np.dtype(np.uint16): (JShort, np.int16),
        np.dtype(np.float32): (JFloat, np.float32),
    }[ij_dt]
    ImageStack = jimport("ij.ImageStack")
    ImagePlus = jimport("ij.ImagePlus")
    stack = ImageStack(int(w), int(h))
    for t in range(nt):
        for z in range(nz):
            for c in range(nc):
                plane = np.ascontiguousarray(tzcyx[t, z, c].astype(ij_dt, copy=False))
                pixels = JArray(jtype)(plane.view(view).ravel())
                label = None if channel_names is None else channel_names[c]
                stack.addSlice("" if label is None else str(label), pixels)
    imp = ImagePlus(str(title), stack)
    imp.setDimensions(int(nc), int(nz), int(nt))
    if nc > 1 or nt > 1:
        imp.setOpenAsHyperStack(True)
    if nc > 1:
        CompositeImage = jimport("ij.CompositeImage")
        imp = CompositeImage(imp, CompositeImage.GRAYSCALE)
    cal = imp.getCalibration()
    if pixel_size_um is not None:
        if not (np.isfinite(pixel_size_um) and pixel_size_um > 0):
            raise ImageError(f"pixel_size_um: expected a positive number, got {pixel_size_um!r}")
        cal.pixelWidth = float(pixel_size_um)
        cal.pixelHeight = float(pixel_size_um)
        cal.setUnit("micron")
    if z_step_um is not None:
        if not (np.isfinite(z_step_um) and z_step_um > 0):
            raise ImageError(f"z_step_um: expected a positive number, got {z_step_um!r}")
        cal.pixelDepth = float(z_step_um)
        cal.setUnit("micron")
    if ij_dt != np.uint8:
        imp.resetDisplayRange()
    return imp


def _plane_array(pixels: Any, bit_depth: int, h: int, w: int) -> np.ndarray:
    if bit_depth == 8:
        a = np.asarray(pixels, dtype=np.int8).view(np.uint8)
    elif bit_depth == 16:
        a = np.asarray(pixels, dtype=np.int16).view(np.uint16)
    else:
        a = np.asarray(pixels, dtype=np.float32)
    return a.reshape(h, w)


def _um_factor(unit: Any) -> float | None:
    """µm per calibration unit by the readers' rule (``None`` for pixels/unknown units)."""
    return to_um(1.0, str(unit).replace("μ", "µ"))


def from_imageplus(imp: Any) -> ImageData:
    """Read an ``ImagePlus`` into an :class:`ImageData` (data ``TZCYX``, calibration).

    Raises
    ------
    ImageError
        For RGB (24-bit) images: split the channels first (Image > Color > Split Channels).
    """
    if imp is None:
        raise ImageError("imp: no image (None)")
    bits = int(imp.getBitDepth())
    if bits == 24:
        raise ImageError(
            f"imp: {imp.getTitle()} is an RGB image; convert it to a stack of channels first"
        )
    nc, nz, nt = int(imp.getNChannels()), int(imp.getNSlices()), int(imp.getNFrames())
    w, h = int(imp.getWidth()), int(imp.getHeight())
    stack = imp.getStack()
    n = int(stack.getSize())
    if n != nc * nz * nt:
        raise ImageError(f"imp: {n} planes do not match C*Z*T = {nc}*{nz}*{nt}")
    dtype = {8: np.uint8, 16: np.uint16, 32: np.float32}[bits]
    out = np.empty((nt, nz, nc, h, w), dtype=dtype)
    flat = out.reshape(n, h, w)  # ImageJ order: channel fastest, then slice, then frame
    for i in range(n):
        flat[i] = _plane_array(stack.getPixels(i + 1), bits, h, w)
    cal = imp.getCalibration()
    f = _um_factor(cal.getUnit())
    px = float(cal.pixelWidth) * f if f is not None else None
    dz = float(cal.pixelDepth) * f if f is not None and nz > 1 else None
    names: list[str | None] = []
    for c in range(nc):
        label = stack.getSliceLabel(c + 1)
        label = None if label is None else str(label).split("\n")[0].strip()
        names.append(label or None)
    fi = imp.getOriginalFileInfo()
    path = None
    if fi is not None and fi.fileName and fi.directory:
        path = str(Path(str(fi.directory)) / str(fi.fileName))
    info = imp.getInfoProperty()
    meta = {"title": str(imp.getTitle()), "info": None if info is None else str(info)}
    return ImageData(
        data=out,
        path=path,
        channel_names=names,
        z_step_um=None if dz is None else round(dz, 9),
        pixel_size_um=None if px is None else round(px, 9),
        original_axes="TZCYX",
        metadata=meta,
    )


def to_python(obj: Any, ij: ImageJSession | None = None) -> Any:
    """Java image -> Python: ``ij.py.from_java`` (pyimagej) or :func:`from_imageplus`."""
    s = ij if ij is not None else session()
    if s.backend == "pyimagej":
        return s.ij.py.from_java(obj)
    return from_imageplus(obj)
