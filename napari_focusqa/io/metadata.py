"""Metadata fields FocusQA uses (channel names, z-step, pixel size, plate position).

The parsing itself is done by the libraries (tifffile's ImageJ/OME dictionaries,
bioio's ``channel_names``/``physical_pixel_sizes``/``standard_metadata``); these helpers
only pick the fields and convert lengths to micrometres, in one place for every reader
and the Fiji bridge.
"""

from __future__ import annotations

import ast
from typing import Any

#: spellings of "micrometre" seen in ImageJ, OME and Fiji calibrations
MICRO_UNITS = ("µm", "um", "micron", "microns", "micrometer", "micrometre", "\\u00b5m", "μm")
_FACTORS = {"nm": 1e-3, "nanometer": 1e-3, "nanometre": 1e-3, "mm": 1e3, "millimeter": 1e3,
            "millimetre": 1e3, "cm": 1e4, "m": 1e6, "meter": 1e6, "metre": 1e6,
            "inch": 25400.0, "in": 25400.0, **dict.fromkeys(MICRO_UNITS, 1.0)}


def to_um(value: float | None, unit: str | None) -> float | None:
    """``value`` in ``unit`` as micrometres; a missing unit counts as µm, an unknown one
    (``pixel``, ``frame``...) gives ``None``."""
    if value is None:
        return None
    u = (unit or "").strip().lower()
    if not u:
        return float(value)
    f = _FACTORS.get(u)
    return None if f is None else float(value) * f


def positive(value: Any) -> float | None:
    """A usable physical size: a finite number > 0, else ``None``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if v > 0 and v < float("inf") else None


def parse_labels(labels: Any) -> list[str]:
    """ImageJ ``Labels`` (a list, or its string form) as a list of strings."""
    if isinstance(labels, (list, tuple)):
        return [str(x) for x in labels]
    if isinstance(labels, str):
        try:
            v = ast.literal_eval(labels)
            if isinstance(v, (list, tuple)):
                return [str(x) for x in v]
        except (ValueError, SyntaxError):
            return [labels]
    return []


def imagej_fields(ij: dict[str, Any], page_tags: Any, n_channels: int) -> dict[str, Any]:
    """z-step, pixel size, channel labels and Info from tifffile's ``imagej_metadata``."""
    out: dict[str, Any] = {"info": ij.get("Info")}
    unit = ij.get("unit")
    if "spacing" in ij:
        out["z_step_um"] = positive(to_um(float(ij["spacing"]), unit))
    xr = page_tags.get("XResolution")
    if xr is not None:
        num, den = xr.value
        if num and num != den:
            px = float(den) / float(num)
            if unit:
                out["pixel_size_um"] = positive(to_um(px, unit))
            else:  # no ImageJ unit: use the TIFF ResolutionUnit (1 = none -> assume µm)
                ru = int(getattr(page_tags.get("ResolutionUnit"), "value", 1))
                out["pixel_size_um"] = positive({2: px * 25400.0, 3: px * 10000.0}.get(ru, px))
    labels = parse_labels(ij.get("Labels"))
    if labels and ij.get("channels", 1) == n_channels and n_channels > 1 \
            and len(labels) >= n_channels:
        out["channel_names"] = labels[:n_channels]
    return out


def ome_image_fields(image: dict[str, Any]) -> dict[str, Any]:
    """Fields of one OME ``Image`` element (as parsed by ``tifffile.xml2dict``)."""
    out: dict[str, Any] = {}
    if image.get("Name"):
        out["series_name"] = str(image["Name"])
    px = image.get("Pixels", {})
    if "PhysicalSizeZ" in px:
        out["z_step_um"] = positive(to_um(float(px["PhysicalSizeZ"]),
                                          px.get("PhysicalSizeZUnit", "µm")))
    if "PhysicalSizeX" in px:
        out["pixel_size_um"] = positive(to_um(float(px["PhysicalSizeX"]),
                                              px.get("PhysicalSizeXUnit", "µm")))
    ch = px.get("Channel", [])
    names = [c.get("Name") or c.get("Fluor") for c in ([ch] if isinstance(ch, dict) else ch)
             if isinstance(c, dict)]
    if names and any(names):
        out["channel_names"] = [None if n is None else str(n) for n in names]
    return out


def ome_images(ome_xml: str | None) -> list[dict[str, Any]]:
    """The OME ``Image`` fields of every series, in file order ([] if unparsable)."""
    import tifffile

    if not ome_xml:
        return []
    try:
        images = tifffile.xml2dict(ome_xml).get("OME", {}).get("Image", [])
    except Exception:  # malformed OME XML: pixels only
        return []
    if isinstance(images, dict):
        images = [images]
    return [ome_image_fields(im) for im in images if isinstance(im, dict)]


def plate_fields(standard_metadata: Any) -> dict[str, Any]:
    """Well/row/column/position from bioio's ``StandardMetadata`` where the file has them."""
    out: dict[str, Any] = {}
    if standard_metadata is None:
        return out
    row = getattr(standard_metadata, "row", None)
    col = getattr(standard_metadata, "column", None)
    if row is not None:
        out["plate_row"] = str(row)
    if col is not None:
        out["plate_column"] = str(col)
    if row is not None and col is not None:
        r = str(row)
        letter = chr(ord("A") + int(r) - 1) if r.isdigit() and 0 < int(r) <= 26 else r
        out["well"] = f"{letter}{col}"
    pos = getattr(standard_metadata, "position_index", None)
    if pos is not None:
        out["position_index"] = int(pos)
    for key in ("objective", "binning", "imaged_by"):
        v = getattr(standard_metadata, key, None)
        if v:
            out[key] = str(v)
    return out


def clean_channel_names(names: Any, n: int) -> list[str | None]:
    """``n`` channel names; placeholder names (``Channel:0:1``, ``C0``) become ``None``."""
    out: list[str | None] = []
    for name in list(names or [])[:n]:
        s = None if name is None else str(name).strip()
        if not s or s.lower().startswith("channel:") or s.lower() in (f"c{len(out)}", ""):
            s = None
        out.append(s)
    return out + [None] * (n - len(out))


def czi_optics(xml: Any) -> str | None:
    """The objective's NA, the shortest emission wavelength and the immersion of a CZI's
    metadata (an ``ElementTree`` element), as optics text in the form an ImageJ ``Info``
    uses (``"NA 1.2, emission 517 nm, water"``), or None when the CZI names no NA. It goes
    in ``ImageData.metadata["optics"]``, read by :func:`napari_focusqa.pipeline.airy_px_of`.
    """
    if xml is None or not hasattr(xml, "iter"):
        return None

    def numbers(tag: str) -> list[float]:
        out = []
        for e in xml.iter(tag):
            try:
                v = float(str(e.text).strip())
            except (TypeError, ValueError):
                continue
            if v > 0:
                out.append(v)
        return out

    na = numbers("LensNA")
    if not na:
        return None
    parts = [f"NA {na[0]:g}"]
    wl = [w for w in numbers("EmissionWavelength") if 200 <= w <= 2000]
    if wl:
        parts.append(f"emission {min(wl):g} nm")
    imm = [str(e.text).strip().lower() for e in xml.iter("Immersion") if e.text]
    if imm and imm[0] in ("oil", "water", "glycerol", "air"):
        parts.append(imm[0])
    return ", ".join(parts)
