"""Patch-border overlay for napari: one square marker per patch per plane.

A napari ``Points`` layer with square symbols, a transparent face and a coloured
border, sized to the patch, draws every patch border of every plane without any
per-rectangle triangulation (napari slices points with one vectorised mask, and vispy
draws them as sprites). Hovering a square shows its ``features`` (level, certainty,
expected level, probabilities, empty) in the status bar.

Pure numpy (+ pandas for the features table): no Qt and no napari import, so the
overlay can be built in a worker thread and tested without a display. Colours always
come from :func:`napari_focusqa.core.colors.patch_colors` (hue = level, lightness =
certainty, empty patches neutral grey), the one map shared with the CLI and Fiji.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_focusqa.core.assess import FocusResult
from napari_focusqa.core.colors import patch_colors
from napari_focusqa.core.errors import FocusQAError
from napari_focusqa.core.zstack import ChannelCurve


@dataclass
class OverlayData:
    """Everything a napari ``Points`` layer of patch borders needs.

    Attributes
    ----------
    coords : ndarray, (N, D) float32
        Patch centres in data (pixel) coordinates, preceded by the fixed leading
        coordinates and the z index when ``D > 2``. Plane by plane (z slowest), then
        row-major over the patch grid.
    features : pandas.DataFrame
        One row per patch and plane: ``z``, ``row``, ``col``, the box ``y0, x0, y1, x1``
        (pixels, exclusive ends), ``level``, ``certainty``, ``expected_level``, ``empty``,
        one ``p<k>`` column per class probability, and the plane's ``verdict`` and
        ``structured_fraction``.
    border_color : ndarray, (N, 4) float32
        RGBA colours from :func:`patch_colors` of ``level``, ``certainty`` and ``empty``.
    border_width : float
        Border width in pixels.
    size : float
        Side of each square in pixels (patch size minus one border width, so that the
        borders of neighbouring patches do not overlap).
    num_classes, patches_per_slice, patch_size : int
    """

    coords: np.ndarray
    features: Any
    border_color: np.ndarray
    border_width: float
    size: float
    num_classes: int
    patches_per_slice: int
    patch_size: int

    @property
    def n_slices(self) -> int:
        return int(self.coords.shape[0] // max(self.patches_per_slice, 1))

    @property
    def nbytes(self) -> int:
        """Bytes held by the overlay's arrays and features table."""
        feats = int(self.features.memory_usage(index=True, deep=True).sum())
        return int(self.coords.nbytes + self.border_color.nbytes + feats)

    def layer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``napari.layers.Points`` (data excluded)."""
        return {
            "symbol": "square",
            "size": self.size,
            "face_color": "transparent",
            "border_color": self.border_color,
            "border_width": self.border_width,
            "border_width_is_relative": False,
            "features": self.features,
            # a patch square may be far larger than napari's default 10,000 screen px cap
            "canvas_size_limits": (1, 100_000),
        }


def default_edge_width(patch_size: int, image_shape: Sequence[int] | None = None) -> float:
    """Border width in pixels: 3 px for 84 px patches, wider on very large images.

    The border is drawn in data units, so on a 4096² image a 3 px border would be under
    one screen pixel; the width grows to ``max(H, W) / 400`` (at most 1/6 patch).
    """
    w = max(1.0, patch_size / 28.0)
    if image_shape is not None:
        w = max(w, min(max(image_shape[-2:]) / 400.0, patch_size / 6.0))
    return float(round(w, 1))


def patch_centres(boxes: np.ndarray) -> np.ndarray:
    """``(n, 2)`` centres of ``(y0, x0, y1, x1)`` boxes (exclusive ends) in napari data
    coordinates, where pixel ``(y, x)`` covers ``[y - 0.5, y + 0.5]``."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if b.size and not np.all((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])):
        raise FocusQAError("boxes: every box needs y1 > y0 and x1 > x0")
    return np.column_stack([(b[:, 0] + b[:, 2] - 1) / 2.0, (b[:, 1] + b[:, 3] - 1) / 2.0])


def _slices_with_patches(slices: Sequence[FocusResult]) -> list[FocusResult]:
    if not slices:
        raise FocusQAError("curve: no slices to draw")
    for s in slices:
        if s.grid is None or s.probabilities is None:
            raise FocusQAError(
                "curve: patch borders need a model's per-patch levels; "
                "this result has SF only (choose a model)"
            )
    g0 = slices[0].grid
    assert g0 is not None
    for s in slices[1:]:
        assert s.grid is not None
        if s.grid.shape != g0.shape or s.grid.patch_size != g0.patch_size:
            raise FocusQAError("curve: slices have different patch grids")
    return list(slices)


def patch_empty(result: FocusResult) -> np.ndarray:
    """``(rows, cols)`` bool: patches without structure (the core's ``empty`` mask; all
    False when the result has none)."""
    assert result.grid is not None
    flag = getattr(result, "empty", None)
    if flag is None:
        return np.zeros((result.grid.rows, result.grid.cols), dtype=bool)
    return np.asarray(flag, dtype=bool).reshape(result.grid.rows, result.grid.cols)


def build_overlay(
    slices: Sequence[FocusResult] | ChannelCurve,
    *,
    z_indices: Sequence[int] | None = None,
    leading: Sequence[float] = (),
    edge_width: float | None = None,
    two_d: bool = False,
) -> OverlayData:
    """Patch borders for every plane of a channel.

    Parameters
    ----------
    slices : ChannelCurve or sequence of FocusResult
        Per-plane model results (all on the same grid).
    z_indices : sequence of int, optional
        z index of each plane (default ``0..n-1``).
    leading : sequence of float
        Fixed leading data coordinates (e.g. time point) for layers with more than 3 dims.
    edge_width : float, optional
        Border width in pixels (default from the patch size).
    two_d : bool
        Return 2D points (for a single 2D image; needs exactly one plane).
    """
    res = slices.slices if isinstance(slices, ChannelCurve) else list(slices)
    res = _slices_with_patches(res)
    nz = len(res)
    z = np.arange(nz) if z_indices is None else np.asarray(z_indices, dtype=np.int64)
    if z.size != nz:
        raise FocusQAError(f"z_indices: expected {nz} values, got {z.size}")
    if two_d and nz != 1:
        raise FocusQAError(f"two_d: a 2D overlay needs exactly one plane, got {nz}")
    grid = res[0].grid
    assert grid is not None
    width = (default_edge_width(grid.patch_size, grid.image_shape) if edge_width is None
             else float(edge_width))
    if not (np.isfinite(width) and width > 0):
        raise FocusQAError(f"edge_width: expected a positive number, got {edge_width!r}")
    width = min(width, grid.patch_size / 4.0)
    npp = grid.n_patches
    boxes = grid.boxes().reshape(-1, 4)
    centres = patch_centres(boxes)
    lead = np.asarray(list(leading), dtype=np.float64)
    ndim = lead.size + (2 if two_d else 3)
    coords = np.empty((nz, npp, ndim), dtype=np.float32)
    if lead.size:
        coords[..., : lead.size] = lead
    if not two_d:
        coords[..., lead.size] = z[:, None]
    coords[..., -2:] = centres[None]
    flat = coords.reshape(nz * npp, ndim)

    probs = np.stack([np.asarray(s.probabilities) for s in res]).reshape(nz * npp, -1)
    k = probs.shape[-1]
    level = np.stack([np.asarray(s.patch_level) for s in res]).reshape(-1).astype(np.int16)
    cert = np.stack([np.asarray(s.patch_certainty) for s in res]).reshape(-1)
    expected = np.stack([np.asarray(s.patch_expected_level) for s in res]).reshape(-1)
    empty = np.stack([patch_empty(s) for s in res]).reshape(-1)
    rows, cols = np.meshgrid(np.arange(grid.rows), np.arange(grid.cols), indexing="ij")
    b32 = boxes.astype(np.int32)
    feats: dict[str, Any] = {
        "z": np.repeat(z.astype(np.int32), npp),
        "row": np.tile(rows.ravel().astype(np.int16), nz),
        "col": np.tile(cols.ravel().astype(np.int16), nz),
        "y0": np.tile(b32[:, 0], nz),
        "x0": np.tile(b32[:, 1], nz),
        "y1": np.tile(b32[:, 2], nz),
        "x1": np.tile(b32[:, 3], nz),
        "level": level,
        "certainty": cert.astype(np.float32),
        "expected_level": expected.astype(np.float32),
        "empty": empty,
    }
    for i in range(k):
        feats[f"p{i}"] = probs[:, i].astype(np.float32)
    import pandas as pd

    # the plane's verdict on each of its patches, so hovering shows it too
    feats["verdict"] = pd.Categorical(np.repeat([str(s.verdict) for s in res], npp))
    feats["structured_fraction"] = np.repeat(
        np.asarray([np.nan if s.structured_fraction is None else s.structured_fraction
                    for s in res], dtype=np.float32), npp)

    features = pd.DataFrame(feats)
    colors = patch_colors(level, cert, empty, k).astype(np.float32)
    return OverlayData(flat, features, colors, width, float(grid.patch_size - width), k, npp,
                       int(grid.patch_size))
