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


def optics_text(na: float | None, wavelengths_nm: list[float],
                immersion: str | None) -> str | None:
    """Optics in the form an ImageJ ``Info`` names them (``"NA 1.2, emission 517 nm,
    water"``: the shortest emission wavelength), for ``ImageData.metadata["optics"]``
    (read by :func:`napari_focusqa.pipeline.airy_px_of`); None without a positive NA."""
    if na is None or not na > 0:
        return None
    parts = [f"NA {na:g}"]
    wl = [w for w in wavelengths_nm if 200 <= w <= 2000]
    if wl:
        parts.append(f"emission {min(wl):g} nm")
    imm = (immersion or "").strip().lower()
    if imm in ("oil", "water", "glycerol", "air"):
        parts.append(imm)
    return ", ".join(parts)


def _positive_floats(values: Any) -> list[float]:
    out = []
    for v in values:
        try:
            f = float(str(v).strip())
        except (TypeError, ValueError):
            continue
        if f > 0:
            out.append(f)
    return out


def czi_optics(xml: Any) -> str | None:
    """:func:`optics_text` of a CZI's metadata (an ``ElementTree`` element): the
    objective's ``LensNA``, the channels' ``EmissionWavelength`` and ``Immersion``;
    None when the CZI names no NA."""
    if xml is None or not hasattr(xml, "iter"):
        return None
    na = _positive_floats(e.text for e in xml.iter("LensNA"))
    imm = [str(e.text) for e in xml.iter("Immersion") if e.text]
    return optics_text(na[0] if na else None,
                       _positive_floats(e.text for e in xml.iter("EmissionWavelength")),
                       imm[0] if imm else None)


_TO_NM = {"nm": 1.0, "µm": 1000.0, "um": 1000.0, "pm": 0.001}


def ome_optics(ome_xml: str | None) -> list[str | None]:
    """:func:`optics_text` of every OME ``Image`` (file order): the ``Objective`` its
    ``ObjectiveSettings`` names (else the file's only objective), its ``LensNA`` and
    ``Immersion``, and the image's channels' ``EmissionWavelength`` (in nm); [] when the
    XML is missing or unparsable."""
    import xml.etree.ElementTree as ET

    if not ome_xml:
        return []
    try:
        root = ET.fromstring(ome_xml)
    except ET.ParseError:
        return []

    def local(el: Any) -> str:
        return str(el.tag).rsplit("}", 1)[-1]

    objectives = {o.attrib.get("ID"): o for o in root.iter() if local(o) == "Objective"}
    out: list[str | None] = []
    for im in (e for e in root if local(e) == "Image"):
        ref = next((e.attrib.get("ID") for e in im if local(e) == "ObjectiveSettings"), None)
        obj = objectives.get(ref) if ref is not None else (
            next(iter(objectives.values())) if len(objectives) == 1 else None)
        na = _positive_floats([obj.attrib.get("LensNA")]) if obj is not None else []
        wl = []
        for ch in (e for e in im.iter() if local(e) == "Channel"):
            w = _positive_floats([ch.attrib.get("EmissionWavelength")])
            unit = ch.attrib.get("EmissionWavelengthUnit", "nm")
            if w and unit in _TO_NM:
                wl.append(w[0] * _TO_NM[unit])
        out.append(optics_text(na[0] if na else None, wl,
                               None if obj is None else obj.attrib.get("Immersion")))
    return out
