"""Assess an ImageJ ``ImagePlus`` with the FocusQA core and attach the results.

:func:`assess_imageplus` converts the image (:mod:`fiji_bridge.convert`), runs the core
on one time frame, and returns the CLI records, a Results table and a per-patch table
(:mod:`fiji_bridge.tables`) and the patch overlay (:mod:`fiji_bridge.overlay`); it sets
the overlay on the image and moves the stack to the best-focus slice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fiji_bridge.convert import from_imageplus
from fiji_bridge.jvm import FijiError, session
from fiji_bridge.overlay import result_overlay
from fiji_bridge.tables import patch_results_table, results_table
from napari_focusqa.core.assess import FocusResult
from napari_focusqa.core.errors import ImageError
from napari_focusqa.core.zstack import StackResult, assess_stack
from napari_focusqa.pipeline import image_airy_px, resolve_model


# --------------------------------------------------------------------------------------
@dataclass
class BridgeResult:
    """What :func:`assess_imageplus` produced.

    Attributes
    ----------
    result : FocusResult or StackResult
        A :class:`FocusResult` for a single 2D plane, otherwise a :class:`StackResult`.
    records : list of dict
        One CLI record per plane in CLI order (z outer, channel inner).
    table, patch_table, overlay : Java objects (``ResultsTable``, ``ResultsTable``, ``Overlay``)
    best_z_index : dict
        Best-focus slice (0-based) per channel index (stacks only).
    """

    result: FocusResult | StackResult
    records: list[dict[str, Any]]
    table: Any = None
    patch_table: Any = None
    overlay: Any = None
    best_z_index: dict[int, int] = field(default_factory=dict)


def assess_imageplus(
    imp: Any,
    model: Any = None,
    *,
    metrics: Sequence[str] = ("sf",),
    stains: Sequence[str] | None = None,
    channels: Sequence[int] | None = None,
    frame: int = 0,
    file: str | None = None,
    attach: bool = True,
    select_best: bool = True,
    legend: bool = True,
    show_table: bool = False,
) -> BridgeResult:
    """Assess an ImageJ image with the core and attach the overlay (and select best focus).

    Parameters
    ----------
    imp : ij.ImagePlus
        2D image, stack or hyperstack (8/16/32-bit).
    model : model id, card path, FocusModel, ``"default"`` or None
        Resolved by :func:`napari_focusqa.pipeline.resolve_model`; ``None`` (or
        ``"none"``) computes SF only (no patch rectangles), ``"default"`` uses the
        default installed model.
    frame : int
        Time frame (0-based) of a time series to assess.
    file : str, optional
        Value of the ``file`` column (default: the image's file path, else its title).
    attach : bool
        Set the overlay on ``imp`` (replacing any overlay).
    select_best : bool
        For stacks, move ``imp`` to the best-focus slice of the current channel.
    show_table : bool
        Show the records as ImageJ's "Results" window (needs a display, not headless).

    Returns
    -------
    BridgeResult
    """
    fm = None if model is None else resolve_model(None if model == "default" else model)
    data = from_imageplus(imp)
    nt = data.data.shape[0]
    if not 0 <= frame < nt:
        raise ImageError(f"frame: index {frame} out of range (0..{nt - 1})")
    label = file if file is not None else (data.path or data.metadata.get("title"))
    st = stains if stains is not None else data.stains
    stack = assess_stack(
        data.zcyx(frame), fm, z_step_um=data.z_step_um, channel_names=data.channel_names,
        stains=st, channels=channels, metrics=metrics, source={"file": label},
        airy_px=image_airy_px(data),
    )
    if nt > 1:
        for c in stack.channels:
            for s in c.slices:
                s.source["t_index"] = frame
    nz = data.n_slices
    ordered = stack.planes()
    if nz == 1:  # a single plane has no stack context (as `focusqa assess` and the macros)
        for s in ordered:
            s.stack_sf_ratio = None
    one = nz == 1 and len(stack.channels) == 1
    res: FocusResult | StackResult = stack.channels[0].slices[0] if one else stack
    records = [s.to_record() for s in ordered]
    out = BridgeResult(result=res, records=records)
    out.table = results_table(records)
    out.patch_table = patch_results_table(ordered)
    out.overlay = result_overlay(ordered, imp=imp, legend=legend)
    out.best_z_index = {c.channel: c.best_z_index for c in stack.channels} if nz > 1 else {}
    if attach:
        imp.setOverlay(out.overlay)
    if show_table:
        if session().headless:
            raise FijiError("show_table: ImageJ runs headless here; start it with mode='gui'")
        out.table.show("Results")
    if select_best and nz > 1:
        cur_c = int(imp.getChannel()) - 1
        best = out.best_z_index.get(cur_c, next(iter(out.best_z_index.values())))
        if imp.isHyperStack() or int(imp.getNChannels()) > 1 or int(imp.getNFrames()) > 1:
            imp.setPosition(cur_c + 1, best + 1, frame + 1)
        else:
            imp.setSlice(best + 1)
    return out
