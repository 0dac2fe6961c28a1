"""The patch grid: tiles that cover the *whole* image.

Google's tool drops the leftover border and Fiji's spreads gaps between patches. Here
patches sit at multiples of ``patch_size`` and, when the image is not a multiple of
``patch_size``, one extra row/column of patches is aligned to the bottom/right edge, so
every pixel belongs to at least one patch. The overlap of the edge patches is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_focusqa.core.errors import ImageError

DEFAULT_PATCH_SIZE = 84


def _starts(length: int, size: int) -> np.ndarray:
    starts = list(range(0, length - size + 1, size))
    if starts[-1] + size < length:
        starts.append(length - size)
    return np.asarray(starts, dtype=np.int64)


@dataclass(frozen=True)
class PatchGrid:
    """Where each patch of an image lies.

    Attributes
    ----------
    image_shape : (int, int)
        ``(height, width)`` of the image.
    patch_size : int
        Side of the square patches in pixels.
    row_starts, col_starts : ndarray of int
        Top (left) pixel of each patch row (column).
    """

    image_shape: tuple[int, int]
    patch_size: int
    row_starts: np.ndarray
    col_starts: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.row_starts.size)

    @property
    def cols(self) -> int:
        return int(self.col_starts.size)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    @property
    def n_patches(self) -> int:
        return self.rows * self.cols

    def boxes(self) -> np.ndarray:
        """``(rows, cols, 4)`` int array of ``(y0, x0, y1, x1)``; y1/x1 exclusive."""
        p = self.patch_size
        y0 = np.broadcast_to(self.row_starts[:, None], self.shape)
        x0 = np.broadcast_to(self.col_starts[None, :], self.shape)
        return np.stack([y0, x0, y0 + p, x0 + p], axis=-1)

    def overlap_fraction(self) -> np.ndarray:
        """``(rows, cols)`` fraction of each patch's area shared with earlier patches."""
        p = self.patch_size

        def axis_overlap(starts: np.ndarray) -> np.ndarray:
            ov = np.zeros(starts.size)
            if starts.size > 1:
                ov[1:] = np.clip(starts[:-1] + p - starts[1:], 0, p) / p
            return ov

        oy = axis_overlap(self.row_starts)[:, None]
        ox = axis_overlap(self.col_starts)[None, :]
        return 1.0 - (1.0 - oy) * (1.0 - ox)

    def coverage(self) -> np.ndarray:
        """``(H, W)`` uint8 count of patches covering each pixel (all >= 1)."""
        cov = np.zeros(self.image_shape, dtype=np.uint8)
        p = self.patch_size
        for y in self.row_starts:
            for x in self.col_starts:
                cov[y : y + p, x : x + p] += 1
        return cov

    def extract(self, image: np.ndarray) -> np.ndarray:
        """All patches of ``image`` (..., H, W) as ``(..., rows, cols, P, P)`` (a copy)."""
        arr = np.asarray(image)
        if arr.shape[-2:] != tuple(self.image_shape):
            raise ImageError(
                f"image: shape {arr.shape[-2:]} does not match the grid's {self.image_shape}"
            )
        p = self.patch_size
        win = np.lib.stride_tricks.sliding_window_view(arr, (p, p), axis=(-2, -1))
        return np.ascontiguousarray(win[..., self.row_starts[:, None], self.col_starts[None, :], :, :])

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_shape": list(self.image_shape),
            "patch_size": self.patch_size,
            "rows": self.rows,
            "cols": self.cols,
            "row_starts": self.row_starts.tolist(),
            "col_starts": self.col_starts.tolist(),
        }


def make_grid(image_shape: tuple[int, ...], patch_size: int = DEFAULT_PATCH_SIZE) -> PatchGrid:
    """Build the covering :class:`PatchGrid` for an image of ``image_shape`` (..., H, W).

    Raises
    ------
    ImageError
        If ``patch_size`` is not a positive integer or the image is smaller than one patch.
    """
    if isinstance(patch_size, bool) or not isinstance(patch_size, (int, np.integer)) or patch_size < 1:
        raise ImageError(f"patch_size: expected a positive integer, got {patch_size!r}")
    if len(image_shape) < 2:
        raise ImageError(f"image: expected at least 2 dimensions, got shape {tuple(image_shape)}")
    h, w = int(image_shape[-2]), int(image_shape[-1])
    if h < patch_size or w < patch_size:
        raise ImageError(
            f"image: {h}x{w} pixels is smaller than one {patch_size}x{patch_size} patch"
        )
    return PatchGrid((h, w), int(patch_size), _starts(h, patch_size), _starts(w, patch_size))
