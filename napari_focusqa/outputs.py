"""Derived outputs of a z-stack assessment (numpy only: used by the CLI and napari).

- :func:`extract_substack`: the best plane of each channel (or of one reference channel,
  applied to all) ± N planes, as a ``(2N + 1, C, Y, X)`` stack; :func:`write_substack`
  saves it as an ImageJ hyperstack (``focusqa zstack --extract OUT.tif``).
- :func:`patch_scores`, :func:`height_map` and :func:`all_in_focus`: the best z of every
  patch (per-patch SF, or any per-patch score such as the model's ``-expected level``),
  smoothed, and the all-in-focus composite built from it (thick samples, tilted slides).
- :func:`level_map`: the model's expected level of every patch of every plane, a
  patch-resolution "probability image" (the original Fiji plugin's output).
- :func:`montage`: per level, the most certain patches side by side (quick visual QC).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_focusqa.core.assess import FocusResult
from napari_focusqa.core.errors import FocusQAError
from napari_focusqa.core.metrics import spatial_frequency
from napari_focusqa.core.patches import PatchGrid, make_grid


# ------------------------------------------------------------------ best-focus substack
@dataclass
class Substack:
    """``data`` is ``(n_planes, C, Y, X)``; ``z_indices[c]`` the source planes of channel c."""

    data: np.ndarray
    z_indices: list[list[int]]
    best: list[int]


def substack_window(n_z: int, best: int, planes: int) -> list[int]:
    """``2 * planes + 1`` consecutive plane indices centred on ``best``, shifted to stay
    inside ``0 .. n_z - 1`` (so every channel keeps the same number of planes)."""
    if planes < 0:
        raise FocusQAError(f"planes: expected 0 or more, got {planes}")
    if not 0 <= best < n_z:
        raise FocusQAError(f"best: plane {best} out of range 0..{n_z - 1}")
    n = 2 * planes + 1
    if n > n_z:
        raise FocusQAError(f"planes: ±{planes} needs {n} planes, the stack has {n_z}")
    start = min(max(best - planes, 0), n_z - n)
    return list(range(start, start + n))


def extract_substack(zcyx: Any, best_z: Sequence[int], *, reference_channel: int | None = None,
                     planes: int = 0) -> Substack:
    """Best plane(s) of every channel of a ``(Z, C, Y, X)`` stack.

    Parameters
    ----------
    zcyx : array_like, (Z, C, Y, X)
    best_z : sequence of int
        Best plane of each channel (e.g. ``ChannelCurve.best_z_index``).
    reference_channel : int, optional
        Use this channel's best plane for every channel (no chromatic shift applied).
    planes : int
        Planes kept on each side of the best one.
    """
    arr = zcyx
    if getattr(arr, "ndim", None) != 4:
        raise FocusQAError(f"stack: expected (Z, C, Y, X), got shape {np.shape(arr)}")
    n_z, n_c = int(arr.shape[0]), int(arr.shape[1])
    if len(best_z) != n_c:
        raise FocusQAError(f"best_z: expected one plane per channel ({n_c}), got {len(best_z)}")
    best = [int(b) for b in best_z]
    if reference_channel is not None:
        if not 0 <= reference_channel < n_c:
            raise FocusQAError(f"reference_channel: {reference_channel} out of range "
                               f"0..{n_c - 1}")
        best = [best[reference_channel]] * n_c
    idx = [substack_window(n_z, b, planes) for b in best]
    data = np.stack([np.asarray(arr[i, c]) for c in range(n_c) for i in [idx[c]]], axis=1)
    return Substack(data, idx, best)


def write_substack(path: str | os.PathLike[str], sub: Substack, *,
                   z_step_um: float | None = None, pixel_size_um: float | None = None,
                   channel_names: Sequence[str | None] | None = None) -> Path:
    """Save a :class:`Substack` as an ImageJ hyperstack TIFF (ZCYX), atomically."""
    import json

    import tifffile

    out = Path(path)
    if out.suffix.lower() not in (".tif", ".tiff"):
        raise FocusQAError(f"extract: expected a .tif/.tiff file name, got {out.name!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"axes": "ZCYX", "Info": json.dumps(
        {"focusqa_substack": {"z_indices": sub.z_indices, "best": sub.best,
                              "channels": list(channel_names or [])}})}
    if z_step_um:
        meta["spacing"] = float(z_step_um)
        meta["unit"] = "um"
    kwargs: dict[str, Any] = {}
    if pixel_size_um:
        kwargs["resolution"] = (1.0 / pixel_size_um, 1.0 / pixel_size_um)
    data = sub.data
    if data.dtype not in (np.uint8, np.uint16, np.float32):
        data = data.astype(np.float32)
    tmp = out.with_name(f".{out.name}.part")
    try:
        tifffile.imwrite(tmp, data, imagej=True, metadata=meta, **kwargs)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


# ------------------------------------------------------------------ height map, composite
def patch_scores(zyx: Any, grid: PatchGrid) -> np.ndarray:
    """``(Z, rows, cols)`` spatial frequency of every patch of every plane."""
    return np.stack([np.asarray(spatial_frequency(grid.extract(np.asarray(plane))))
                     for plane in zyx])


def _median3(a: np.ndarray) -> np.ndarray:
    pad = np.pad(a, 1, mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(pad, (3, 3))
    return np.median(win.reshape(*a.shape, 9), axis=-1)


def height_map(scores: np.ndarray, *, smooth: int = 1) -> np.ndarray:
    """Best plane of every patch: ``argmax`` over z of ``(Z, rows, cols)`` scores (higher
    = sharper; NaN ignored), then ``smooth`` passes of a 3×3 median. Float ``(rows, cols)``."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 3 or s.shape[0] == 0:
        raise FocusQAError(f"scores: expected (Z, rows, cols), got shape {s.shape}")
    if smooth < 0:
        raise FocusQAError(f"smooth: expected 0 or more passes, got {smooth}")
    filled = np.where(np.isfinite(s), s, -np.inf)
    h = np.argmax(filled, axis=0).astype(np.float64)
    for _ in range(smooth):
        h = _median3(h)
    return h


def _interp_grid(values: np.ndarray, grid: PatchGrid) -> np.ndarray:
    """Bilinear interpolation of per-patch values (at patch centres) to every pixel."""
    p = grid.patch_size
    cy = grid.row_starts + (p - 1) / 2.0
    cx = grid.col_starts + (p - 1) / 2.0
    h, w = grid.image_shape
    ys, xs = np.arange(h), np.arange(w)
    along_x = np.stack([np.interp(xs, cx, row) for row in values])  # (rows, W)
    return np.stack([np.interp(ys, cy, col) for col in along_x.T], axis=1)  # (H, W)


def all_in_focus(zyx: Any, height: np.ndarray, grid: PatchGrid) -> tuple[np.ndarray, np.ndarray]:
    """All-in-focus composite of a ``(Z, Y, X)`` stack from a patch height map.

    The patch heights are interpolated to every pixel (bilinear between patch centres)
    and each pixel is blended linearly from the two planes around its height.

    Returns
    -------
    composite : ndarray, (Y, X) float32
    height_px : ndarray, (Y, X) float32, the plane index used at each pixel
    """
    arr = zyx
    n_z = int(arr.shape[0])
    if tuple(arr.shape[-2:]) != tuple(grid.image_shape):
        raise FocusQAError(f"stack: planes of {arr.shape[-2:]} do not match the grid's "
                           f"{grid.image_shape}")
    if np.shape(height) != grid.shape:
        raise FocusQAError(f"height: expected {grid.shape} patches, got {np.shape(height)}")
    hp = np.clip(_interp_grid(np.asarray(height, dtype=np.float64), grid), 0, n_z - 1)
    lo = np.floor(hp).astype(np.int64)
    hi = np.minimum(lo + 1, n_z - 1)
    frac = (hp - lo).astype(np.float32)
    out = np.zeros(grid.image_shape, dtype=np.float32)
    for z in np.unique(np.concatenate([lo.ravel(), hi.ravel()])):
        plane = np.asarray(arr[int(z)], dtype=np.float32)
        out += np.where(lo == z, plane * (1 - frac), 0) + np.where(hi == z, plane * frac, 0)
    # where lo == hi (top plane) both terms added the same plane: weights sum to 1 anyway
    return out, hp.astype(np.float32)


def composite_from_stack(zyx: Any, patch_size: int = 84, *, smooth: int = 1,
                         scores: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Height map + composite in one call: ``(composite, height_px, height_patches)``."""
    grid = make_grid(tuple(zyx.shape[-2:]), patch_size)
    sc = patch_scores(zyx, grid) if scores is None else np.asarray(scores)
    hmap = height_map(sc, smooth=smooth)
    comp, hp = all_in_focus(zyx, hmap, grid)
    return comp, hp, hmap


# ------------------------------------------------------------------ level map
def level_map(results: Sequence[FocusResult]) -> np.ndarray:
    """``(Z, rows, cols)`` float32 expected level of every patch of every plane; NaN for
    patches without structure."""
    if not results:
        raise FocusQAError("results: no planes")
    out = []
    for r in results:
        if r.patch_expected_level is None:
            raise FocusQAError("results: the level map needs a model's per-patch levels "
                               "(this result has SF only)")
        lv = np.asarray(r.patch_expected_level, dtype=np.float32).copy()
        if r.empty is not None:
            lv[np.asarray(r.empty, dtype=bool)] = np.nan
        out.append(lv)
    return np.stack(out)


# ------------------------------------------------------------------ montage
@dataclass
class Montage:
    """``image`` is ``(K * P, per_level * P)``: row k holds level k's most certain
    patches, left to right; ``cells`` lists them (level, z, row, col, certainty)."""

    image: np.ndarray
    patch_size: int
    cells: list[dict[str, Any]] = field(default_factory=list)


def montage(zyx: Any, results: Sequence[FocusResult], *, per_level: int = 6) -> Montage:
    """Certainty-ranked patches per predicted level, for a quick look at what the model
    calls each level (patches without structure are left out)."""
    if len(results) != int(zyx.shape[0]):
        raise FocusQAError(f"results: expected one per plane ({zyx.shape[0]}), got "
                           f"{len(results)}")
    r0 = results[0]
    if r0.grid is None or r0.patch_level is None or r0.num_classes is None:
        raise FocusQAError("results: the montage needs a model's per-patch levels")
    empty = np.stack([np.zeros(r0.grid.shape, bool) if r.empty is None else np.asarray(r.empty)
                      for r in results])
    return montage_from_arrays(zyx, np.stack([np.asarray(r.patch_level) for r in results]),
                               np.stack([np.asarray(r.patch_certainty) for r in results]),
                               empty, r0.grid, int(r0.num_classes), per_level=per_level)


def montage_from_arrays(zyx: Any, level: np.ndarray, certainty: np.ndarray,
                        empty: np.ndarray, grid: PatchGrid, num_classes: int, *,
                        per_level: int = 6) -> Montage:
    """:func:`montage` from ``(Z, rows, cols)`` level / certainty / empty arrays (e.g. the
    features of a napari patch layer)."""
    if per_level < 1:
        raise FocusQAError(f"per_level: expected 1 or more, got {per_level}")
    k, p = int(num_classes), grid.patch_size
    lv, ce = np.asarray(level), np.asarray(certainty, dtype=np.float64)
    ok = ~np.asarray(empty, dtype=bool)
    img = np.zeros((k * p, per_level * p), dtype=np.float32)
    boxes = grid.boxes()
    cells = []
    for lvl in range(k):
        z, rr, cc = np.nonzero((lv == lvl) & ok)
        order = np.argsort(-ce[z, rr, cc], kind="stable")[:per_level]
        for j, i in enumerate(order):
            y0, x0, y1, x1 = (int(v) for v in boxes[rr[i], cc[i]])
            img[lvl * p:(lvl + 1) * p, j * p:(j + 1) * p] = np.asarray(
                zyx[int(z[i])][y0:y1, x0:x1], dtype=np.float32)
            cells.append({"level": lvl, "z": int(z[i]), "row": int(rr[i]),
                          "col": int(cc[i]), "certainty": float(ce[z[i], rr[i], cc[i]])})
    return Montage(img, p, cells)
