"""Patch-border overlay data for napari Shapes layers, built from core results.

Pure numpy (+ pandas for the features table): no Qt and no napari import, so the
overlay can be built in a worker thread and tested without a display. Colours always
come from :func:`napari_focusqa.core.colors.level_colors` (hue = level, lightness =
certainty), the one map shared with the CLI and Fiji.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_focusqa.core.assess import FocusResult
from napari_focusqa.core.colors import level_colors
from napari_focusqa.core.errors import FocusQAError
from napari_focusqa.core.zstack import ChannelCurve


@dataclass
class OverlayData:
    """Everything a napari Shapes layer of patch borders needs.

    Attributes
    ----------
    data : ndarray, (N, 4, D)
        Rectangle corners (y0,x0), (y0,x1), (y1,x1), (y1,x0) in data (pixel) coordinates,
        preceded by the fixed leading coordinates and the z index when ``D > 2``.
    features : pandas.DataFrame
        One row per rectangle: ``z``, ``row``, ``col``, the box ``y0, x0, y1, x1``
        (pixels, exclusive ends), ``level``, ``certainty``, ``expected_level`` and one
        ``p<k>`` column per class probability.
    edge_color : ndarray, (N, 4)
        RGBA colours from :func:`level_colors` of ``level`` and ``certainty``.
    edge_width : float
        Border width in pixels.
    num_classes : int
        Number of defocus levels of the model.
    patches_per_slice : int
        Rectangles per z-slice.
    """

    data: np.ndarray
    features: Any
    edge_color: np.ndarray
    edge_width: float
    num_classes: int
    patches_per_slice: int

    @property
    def n_slices(self) -> int:
        return int(self.data.shape[0] // max(self.patches_per_slice, 1))

    def for_slice(self, z_index: int) -> OverlayData:
        """The rectangles of one slice as 2D shapes (for per-slice display)."""
        if not 0 <= z_index < self.n_slices:
            raise FocusQAError(f"z_index: {z_index} out of range 0..{self.n_slices - 1}")
        n = self.patches_per_slice
        sl = slice(z_index * n, (z_index + 1) * n)
        return OverlayData(
            np.ascontiguousarray(self.data[sl, :, -2:]),
            self.features.iloc[sl].reset_index(drop=True),
            self.edge_color[sl],
            self.edge_width,
            self.num_classes,
            n,
        )

    def layer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``napari.layers.Shapes`` (data excluded)."""
        return {
            "shape_type": "rectangle",
            "edge_color": self.edge_color,
            "face_color": "transparent",
            "edge_width": self.edge_width,
            "features": self.features,
        }


def default_edge_width(patch_size: int, image_shape: Sequence[int] | None = None) -> float:
    """Border width in pixels: 3 px for 84 px patches, wider on very large images.

    napari draws Shapes edges in data units, so on a 4096² image a 3 px border would be
    under one screen pixel; the width grows to ``max(H, W) / 400`` (at most 1/6 patch).
    """
    w = max(1.0, patch_size / 28.0)
    if image_shape is not None:
        w = max(w, min(max(image_shape[-2:]) / 400.0, patch_size / 6.0))
    return float(round(w, 1))


def rectangles(
    boxes: np.ndarray,
    z_indices: Sequence[int] | np.ndarray | None = None,
    *,
    inset: float = 0.0,
    leading: Sequence[float] = (),
) -> np.ndarray:
    """Corner vertices of every box on every slice, fully vectorised.

    Parameters
    ----------
    boxes : ndarray, (..., 4)
        ``(y0, x0, y1, x1)`` patch boxes with exclusive ``y1``/``x1`` (as
        :meth:`PatchGrid.boxes`). The pixel ``(y, x)`` covers ``[y - 0.5, y + 0.5]`` in
        napari data coordinates, so a box is drawn from ``y0 - 0.5`` to ``y1 - 0.5``.
    z_indices : sequence of int, optional
        Slices to repeat the boxes on (z varies slowest). ``None`` gives 2D vertices.
    inset : float
        Move each side inwards by this many pixels (half the border width keeps the
        border inside its patch, so neighbouring borders do not overlap).
    leading : sequence of float
        Fixed coordinates prepended to every vertex (e.g. the time point of a TZYX layer).

    Returns
    -------
    ndarray, (n_z * n_boxes, 4, D) float64
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if b.size and not np.all((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])):
        raise FocusQAError("boxes: every box needs y1 > y0 and x1 > x0")
    y0 = b[:, 0] - 0.5 + inset
    x0 = b[:, 1] - 0.5 + inset
    y1 = b[:, 2] - 0.5 - inset
    x1 = b[:, 3] - 0.5 - inset
    corners = np.stack(
        [np.stack([y0, x0], -1), np.stack([y0, x1], -1), np.stack([y1, x1], -1),
         np.stack([y1, x0], -1)],
        axis=1,
    )  # (n, 4, 2)
    lead = np.asarray(list(leading), dtype=np.float64)
    if z_indices is None:
        out = corners
        if lead.size:
            pre = np.broadcast_to(lead, (out.shape[0], 4, lead.size))
            out = np.concatenate([pre, out], axis=-1)
        return np.ascontiguousarray(out)
    z = np.asarray(z_indices, dtype=np.float64).ravel()
    n, nz = corners.shape[0], z.size
    out = np.empty((nz, n, 4, lead.size + 3), dtype=np.float64)
    if lead.size:
        out[..., : lead.size] = lead
    out[..., lead.size] = z[:, None, None]
    out[..., lead.size + 1 :] = corners[None]
    return out.reshape(nz * n, 4, lead.size + 3)


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


def build_overlay(
    slices: Sequence[FocusResult] | ChannelCurve,
    *,
    z_indices: Sequence[int] | None = None,
    leading: Sequence[float] = (),
    edge_width: float | None = None,
    two_d: bool = False,
) -> OverlayData:
    """Patch borders for every slice of a channel.

    Parameters
    ----------
    slices : ChannelCurve or sequence of FocusResult
        Per-slice model results (all on the same grid).
    z_indices : sequence of int, optional
        z index of each slice (default ``0..n-1``).
    leading : sequence of float
        Fixed leading data coordinates (e.g. time point) for layers with more than 3 dims.
    edge_width : float, optional
        Border width in pixels (default from the patch size).
    two_d : bool
        Return 2D rectangles (for a single 2D image; needs exactly one slice).
    """
    res = slices.slices if isinstance(slices, ChannelCurve) else list(slices)
    res = _slices_with_patches(res)
    nz = len(res)
    z = np.arange(nz) if z_indices is None else np.asarray(z_indices, dtype=np.int64)
    if z.size != nz:
        raise FocusQAError(f"z_indices: expected {nz} values, got {z.size}")
    if two_d and nz != 1:
        raise FocusQAError(f"two_d: a 2D overlay needs exactly one slice, got {nz}")
    grid = res[0].grid
    assert grid is not None
    width = (default_edge_width(grid.patch_size, grid.image_shape) if edge_width is None
             else float(edge_width))
    if not (np.isfinite(width) and width > 0):
        raise FocusQAError(f"edge_width: expected a positive number, got {edge_width!r}")
    inset = min(width / 2.0, grid.patch_size / 4.0)
    data = rectangles(grid.boxes(), None if two_d else z, inset=inset, leading=leading)

    probs = np.stack([np.asarray(s.probabilities) for s in res])  # (Z, r, c, K)
    k = probs.shape[-1]
    npp = grid.n_patches
    probs = probs.reshape(nz * npp, k)
    level = np.stack([np.asarray(s.patch_level) for s in res]).reshape(-1).astype(np.int64)
    cert = np.stack([np.asarray(s.patch_certainty) for s in res]).reshape(-1)
    expected = np.stack([np.asarray(s.patch_expected_level) for s in res]).reshape(-1)
    rows, cols = np.meshgrid(np.arange(grid.rows), np.arange(grid.cols), indexing="ij")
    feats: dict[str, Any] = {
        "z": np.repeat(z, npp),
        "row": np.tile(rows.ravel(), nz),
        "col": np.tile(cols.ravel(), nz),
        "y0": np.tile(grid.boxes()[..., 0].ravel(), nz),
        "x0": np.tile(grid.boxes()[..., 1].ravel(), nz),
        "y1": np.tile(grid.boxes()[..., 2].ravel(), nz),
        "x1": np.tile(grid.boxes()[..., 3].ravel(), nz),
        "level": level,
        "certainty": cert,
        "expected_level": expected,
    }
    for i in range(k):
        feats[f"p{i}"] = probs[:, i]
    import pandas as pd

    features = pd.DataFrame(feats)
    colors = level_colors(level, cert, num_classes=k)
    return OverlayData(data, features, colors, width, k, npp)
