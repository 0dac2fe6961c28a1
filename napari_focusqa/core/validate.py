"""Validators that turn user arrays into float32 2D images or clear errors."""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_focusqa.core.errors import ImageError


def as_image2d(image: Any, *, name: str = "image", min_size: int = 2) -> np.ndarray:
    """Return ``image`` as a C-contiguous 2D array or raise :class:`ImageError`.

    Integers keep their dtype, bool becomes uint8, floats become float32 (values beyond
    float32's range count as infinite).

    Accepts any real integer, bool or float dtype. Refuses complex data, NaN/inf,
    RGB(A) and anything that is not 2D, naming ``name`` in the message.
    """
    arr = np.asarray(image)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise ImageError(f"{name}: expected a real numeric array, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[-1] in (3, 4) and arr.dtype == np.uint8:
        raise ImageError(
            f"{name}: looks like an RGB(A) image (shape {arr.shape}); "
            "convert it to one grey channel or pass channels separately"
        )
    if arr.ndim != 2:
        raise ImageError(f"{name}: expected a 2D (Y, X) array, got shape {arr.shape}")
    if min(arr.shape) < min_size:
        raise ImageError(
            f"{name}: image of shape {arr.shape} is too small (need at least "
            f"{min_size}x{min_size} pixels)"
        )
    if arr.dtype.kind == "b":
        return np.ascontiguousarray(arr, dtype=np.uint8)
    if arr.dtype.kind == "f":
        with np.errstate(over="ignore"):
            out = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(out).all():
            bad = "NaN" if np.isnan(out).any() else "infinite"
            raise ImageError(f"{name}: contains {bad} values; focus is undefined there")
        return out
    return np.ascontiguousarray(arr)
