"""Read the overlay that ImageJ stores in a TIFF (no Java needed).

ImageJ writes each overlay ROI in its binary ``.roi`` format into the TIFF's ImageJ
metadata (``Overlays``); :func:`read_overlay` decodes the fields FocusQA uses: type,
bounds, stroke/fill colour, stack position (plain or hyperstack ``c, z, t``) and name.
Layout (big-endian): ``"Iout"`` magic, version, type at byte 6, top/left/bottom/right
shorts at 8..14, stroke width at 34, stroke colour (ARGB int) at 40, fill colour at 44,
subtype at 48, position at 56, header-2 offset at 60; header 2 holds the C/Z/T position
at 4/8/12 and the name offset/length at 16/20 (UTF-16 characters).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Any

from napari_focusqa.core.errors import ImageError

ROI_TYPES = {0: "polygon", 1: "rect", 2: "oval", 3: "line", 4: "freeline", 5: "polyline",
             6: "noroi", 7: "freehand", 8: "traced", 9: "angle", 10: "point"}
SUBTYPE_TEXT = 1


@dataclass
class OverlayRoi:
    """One decoded overlay ROI (ImageJ pixel coordinates, 1-based positions, 0 = all)."""

    type: str
    subtype: int
    x: int
    y: int
    width: int
    height: int
    stroke_rgb: tuple[int, int, int] | None
    fill_rgb: tuple[int, int, int] | None
    stroke_width: int
    position: int
    c: int
    z: int
    t: int
    name: str

    @property
    def is_text(self) -> bool:
        return self.type == "rect" and self.subtype == SUBTYPE_TEXT


def _rgb(argb: int) -> tuple[int, int, int] | None:
    if argb == 0:
        return None
    return ((argb >> 16) & 255, (argb >> 8) & 255, argb & 255)


def decode_roi(data: bytes) -> OverlayRoi:
    """Decode one ImageJ ``.roi`` blob.

    Raises
    ------
    ImageError
        If ``data`` is not an ImageJ ROI.
    """
    b = bytes(data)
    if len(b) < 64 or b[:4] != b"Iout":
        raise ImageError("roi: not an ImageJ ROI (missing 'Iout' header)")
    typ = b[6]
    top, left, bottom, right = struct.unpack(">hhhh", b[8:16])
    stroke_w = struct.unpack(">h", b[34:36])[0]
    stroke, fill = struct.unpack(">ii", b[40:48])
    subtype = struct.unpack(">h", b[48:50])[0]
    position = struct.unpack(">i", b[56:60])[0]
    hdr2 = struct.unpack(">i", b[60:64])[0]
    c = z = t = 0
    name = ""
    if 0 < hdr2 and hdr2 + 24 <= len(b):
        c, z, t, name_off, name_len = struct.unpack(">iiiii", b[hdr2 + 4: hdr2 + 24])
        if name_off > 0 and name_len > 0 and name_off + 2 * name_len <= len(b):
            name = b[name_off: name_off + 2 * name_len].decode("utf-16-be")
    return OverlayRoi(
        type=ROI_TYPES.get(typ, str(typ)), subtype=subtype, x=left, y=top,
        width=right - left, height=bottom - top,
        stroke_rgb=_rgb(stroke & 0xFFFFFFFF), fill_rgb=_rgb(fill & 0xFFFFFFFF),
        stroke_width=stroke_w, position=position, c=c, z=z, t=t, name=name,
    )


def read_overlay(path: str | os.PathLike[str]) -> list[OverlayRoi]:
    """All overlay ROIs stored in an ImageJ TIFF (empty list when there is none)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        meta: dict[str, Any] = tif.imagej_metadata or {}
    blobs = meta.get("Overlays", [])
    if isinstance(blobs, (bytes, bytearray)):
        blobs = [blobs]
    return [decode_roi(b) for b in blobs]
