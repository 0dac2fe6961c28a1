"""Focus results as an ImageJ ``Overlay``: one rectangle per patch plus a colour legend.

Colours are :func:`napari_focusqa.core.colors.level_colors_uint8` of the patch level and
certainty, the map the CLI overlay PNG and napari use. :func:`patch_rois` and
:func:`legend_entries` need no Java (the macro exchange files use them too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fiji_bridge.jvm import FijiError, jimport
from napari_focusqa.core.assess import FocusResult
from napari_focusqa.core.colors import EMPTY_RGB, level_colors_uint8, patch_colors_uint8
from napari_focusqa.core.zstack import StackResult

#: rectangles are drawn this many pixels inside their patch (as the CLI overlay PNG does),
#: so that neighbouring patches' outlines stay distinguishable
ROI_INSET = 1

#: overlay ROI name prefixes (used by tests and by users filtering the overlay)
PATCH_ROI_PREFIX = "focusqa patch"
LEGEND_ROI_PREFIX = "focusqa legend"


# --------------------------------------------------------------------------------------
def slices_of(result: FocusResult | StackResult | Sequence[FocusResult]) -> list[FocusResult]:
    """The plane results of ``result`` (a stack's in channel-then-z order)."""
    if isinstance(result, FocusResult):
        return [result]
    if isinstance(result, StackResult):
        return [s for c in result.channels for s in c.slices]
    out = list(result)
    if not all(isinstance(r, FocusResult) for r in out):
        raise FijiError("result: expected a FocusResult, a StackResult or a list of FocusResult")
    return out


def patch_rois(result: FocusResult) -> list[dict[str, Any]]:
    """Rectangles of one result: ``x, y, w, h, level, certainty, empty, rgb, hex`` per patch.

    ``x, y, w, h`` is the patch; ``draw`` is the rectangle drawn, :data:`ROI_INSET`
    pixels inside it (like the CLI overlay PNG). The colours are
    :func:`~napari_focusqa.core.colors.patch_colors_uint8` of the patch level and
    certainty, with patches without structure (``empty``) in the core's neutral grey (the
    same map as the CLI overlay PNG and napari). No rectangles without model output.
    """
    if result.grid is None or result.patch_level is None or result.patch_certainty is None:
        return []
    k = result.num_classes or 11
    rgb = patch_colors_uint8(result.patch_level, result.patch_certainty, result.empty, k)
    empty = (np.zeros(rgb.shape[:2], dtype=bool) if result.empty is None
             else np.asarray(result.empty, dtype=bool))
    boxes = result.grid.boxes()
    out = []
    for r in range(result.grid.rows):
        for c in range(result.grid.cols):
            y0, x0, y1, x1 = (int(v) for v in boxes[r, c])
            col = tuple(int(v) for v in rgb[r, c])
            out.append(
                {
                    "row": r, "col": c, "x": x0, "y": y0, "w": x1 - x0, "h": y1 - y0,
                    "draw": (x0 + ROI_INSET, y0 + ROI_INSET,
                             x1 - x0 - 2 * ROI_INSET, y1 - y0 - 2 * ROI_INSET),
                    "level": int(result.patch_level[r, c]),
                    "certainty": round(float(result.patch_certainty[r, c]), 6),
                    "empty": bool(empty[r, c]),
                    "rgb": col,
                    "hex": "#{:02x}{:02x}{:02x}".format(*col),
                }
            )
    return out


def legend_entries(num_classes: int = 11) -> list[dict[str, Any]]:
    """Colour legend: one entry per level at full certainty (``level``, ``rgb``, ``hex``)."""
    rgb = level_colors_uint8(np.arange(num_classes), np.ones(num_classes), num_classes)
    return [
        {"level": k, "rgb": tuple(int(v) for v in rgb[k]),
         "hex": "#{:02x}{:02x}{:02x}".format(*(int(v) for v in rgb[k]))}
        for k in range(num_classes)
    ]


def empty_legend_entry() -> dict[str, Any]:
    """Legend entry of the patches without structure (the core's neutral grey)."""
    rgb = tuple(int(round(v * 255)) for v in EMPTY_RGB)
    return {"level": None, "rgb": rgb, "hex": "#{:02x}{:02x}{:02x}".format(*rgb)}


def roi_name(c: int, z: int, t: int, p: dict[str, Any]) -> str:
    """Name of a patch rectangle (1-based ``c, z, t``; ``p`` from :func:`patch_rois`)."""
    name = (f"{PATCH_ROI_PREFIX} c{c} z{z} t{t} r{p['row']} c{p['col']} "
            f"level {p['level']} certainty {p['certainty']:.3f}")
    return name + " no structure" if p["empty"] else name


def _position_of(res: FocusResult) -> tuple[int, int, int]:
    s = res.source
    c = int(s.get("channel_index") or 0)
    z = int(s.get("z_index") or 0)
    t = int(s.get("t_index") or 0)
    return c + 1, z + 1, t + 1


def result_overlay(
    result: FocusResult | StackResult | Sequence[FocusResult],
    *,
    imp: Any = None,
    overlay: Any = None,
    legend: bool = True,
    stroke_width: float = 1.0,
    positioned: bool | None = None,
) -> Any:
    """Draw focus results as an ImageJ ``Overlay``.

    Parameters
    ----------
    result : FocusResult, StackResult or list of FocusResult
        Each result's ``source`` (``channel_index``, ``z_index``, ``t_index``) gives the
        ImageJ position of its rectangles.
    imp : ImagePlus, optional
        The image the overlay is for: decides between hyperstack positions ``(c, z, t)``
        and plain stack positions, and sizes the legend.
    overlay : ij.gui.Overlay, optional
        Add to this overlay instead of a new one.
    legend : bool
        Add a colour legend (one square per level, position 0 = every slice).
    positioned : bool, optional
        Give every rectangle its slice position (default: when there is more than one
        plane in ``result`` or ``imp`` is a stack).

    Returns
    -------
    ij.gui.Overlay
    """
    Overlay = jimport("ij.gui.Overlay")
    Roi = jimport("ij.gui.Roi")
    Color = jimport("java.awt.Color")
    slices = slices_of(result)
    ov = Overlay() if overlay is None else overlay
    if imp is not None:
        hyper = bool(imp.isHyperStack()) or int(imp.getNChannels()) > 1 or int(imp.getNFrames()) > 1
        if positioned is None:
            positioned = int(imp.getStackSize()) > 1
    else:
        chans = {r.source.get("channel_index") or 0 for r in slices}
        frames = {r.source.get("t_index") or 0 for r in slices}
        hyper = len(chans) > 1 or len(frames) > 1
    if positioned is None:
        positioned = len(slices) > 1
    k = 11
    for res in slices:
        if res.num_classes:
            k = res.num_classes
        c, z, t = _position_of(res)
        for p in patch_rois(res):
            roi = Roi(*p["draw"])
            roi.setStrokeColor(Color(*p["rgb"]))
            roi.setStrokeWidth(float(stroke_width))
            roi.setName(roi_name(c, z, t, p))
            if positioned:
                if hyper:
                    roi.setPosition(c, z, t)
                else:
                    roi.setPosition(z)
            ov.add(roi)
    if legend and any(r.patch_level is not None for r in slices):
        _add_legend(ov, k, imp)
    return ov


def legend_text(k: int, width: int) -> str:
    """Caption under the legend squares (shorter on narrow images)."""
    if width >= 480:
        return f"0 in focus ... {k - 1} defocused; dark = uncertain; grey = no structure"
    if width >= 300:
        return f"0 in focus ... {k - 1}; grey = no structure"
    return f"0 in focus ... {k - 1}"


def _add_legend(ov: Any, k: int, imp: Any = None) -> None:
    Roi = jimport("ij.gui.Roi")
    TextRoi = jimport("ij.gui.TextRoi")
    Color = jimport("java.awt.Color")
    Font = jimport("java.awt.Font")
    width = int(imp.getWidth()) if imp is not None else 400
    size = int(max(6, min(16, (width - 8) // (k + 2))))
    x0, y0 = 2, 2
    # one square per level, a gap, then the grey of "no structure"
    for slot, e, name in [*((e["level"], e, f"level {e['level']}") for e in legend_entries(k)),
                          (k + 1, empty_legend_entry(), "no structure")]:
        sq = Roi(x0 + slot * size, y0, size, size)
        sq.setFillColor(Color(*e["rgb"]))
        sq.setName(f"{LEGEND_ROI_PREFIX} {name}")
        sq.setPosition(0)
        ov.add(sq)
    font = Font("SansSerif", Font.PLAIN, int(max(8, size - 2)))
    txt = TextRoi(x0, y0 + size + 1, legend_text(k, width), font)
    txt.setStrokeColor(Color(255, 255, 255))
    txt.setName(f"{LEGEND_ROI_PREFIX} text")
    txt.setPosition(0)
    ov.add(txt)
