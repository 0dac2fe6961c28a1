"""Plate, well, site and channel encoded in high-content-screening file names."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

#: file name endings picked up when a folder is given (CZI/ND2/LIF need the [formats]
#: extra; without it such a file becomes an error row naming the extra)
IMAGE_SUFFIXES = (".tif", ".tiff", ".btf", ".png", ".czi", ".nd2", ".lif")
#: folders that are one image (OME-Zarr): taken as an input, not searched
IMAGE_FOLDER_SUFFIXES = (".zarr",)

#: columns parsed from plate file names (ImageXpress, Operetta/Opera, CellInsight)
PLATE_COLUMNS = ("plate", "well", "site", "name_channel", "plane")

_UUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
_IXM = re.compile(
    r"^(?:(?P<plate>.*?)_)?(?P<row>[A-Pa-p])(?P<col>\d{2})"
    r"(?:_s(?P<site>\d+))?(?:_w(?P<ch>\d+))?(?P<thumb>_thumb)?(?:" + _UUID + r")?$"
)
_OPERETTA = re.compile(
    r"^r(?P<row>\d{1,2})c(?P<col>\d{1,2})f(?P<site>\d+)p(?P<plane>\d+)-ch(?P<ch>\d+)"
    r"(?:sk\d+)?(?:fk\d+)?(?:fl\d+)?$"
)
_CELLINSIGHT = re.compile(r"^(?P<plate>.+)_(?P<row>[A-Pa-p])(?P<col>\d{2})f(?P<site>\d+)d(?P<ch>\d+)$")
_GENERIC_WELL = re.compile(r"(?:^|[_\-\s.])(?P<row>[A-Pa-p])(?P<col>\d{1,2})(?=[_\-\s.]|$)")


def _stem(name: str) -> str:
    low = name.lower()
    for suf in (".ome.tiff", ".ome.tif", ".ome.zarr", *IMAGE_SUFFIXES, *IMAGE_FOLDER_SUFFIXES):
        if low.endswith(suf):
            return name[: -len(suf)]
    return Path(name).stem


def _well(row: str, col: str | int) -> str:
    return f"{row.upper()}{int(col):02d}"


def parse_plate_name(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Plate, well, site, channel and plane encoded in an HCS file name.

    Recognises ImageXpress (``Plate_B02_s3_w2[UUID].tif``), Operetta / Opera Phenix
    (``r02c03f01p01-ch1sk1fk1fl1.tiff``), CellInsight (``Plate_B02f00d1.TIF``) and, as a
    fallback, a lone well token such as ``_B2_``. Missing fields are ``None``.

    Returns
    -------
    dict
        Keys :data:`PLATE_COLUMNS`; ``well`` is normalised to a letter + 2 digits (``B02``).
    """
    stem = _stem(Path(path).name)
    out: dict[str, Any] = dict.fromkeys(PLATE_COLUMNS)
    m = _OPERETTA.match(stem)
    if m:
        r = int(m["row"])
        out.update(
            well=_well(chr(64 + r), m["col"]) if 1 <= r <= 32 else None,
            site=int(m["site"]),
            plane=int(m["plane"]),
            name_channel=f"ch{int(m['ch'])}",
        )
        return out
    m = _CELLINSIGHT.match(stem)
    if m:
        out.update(plate=m["plate"], well=_well(m["row"], m["col"]), site=int(m["site"]),
                   name_channel=f"d{int(m['ch'])}")
        return out
    m = _IXM.match(stem)
    if m and (m["site"] or m["ch"] or m["plate"] is not None):
        out.update(
            plate=m["plate"] or None,
            well=_well(m["row"], m["col"]),
            site=None if m["site"] is None else int(m["site"]),
            name_channel=None if m["ch"] is None else f"w{int(m['ch'])}",
        )
        return out
    m = _GENERIC_WELL.search(stem)
    if m:
        out["well"] = _well(m["row"], m["col"])
    return out


def is_thumbnail(path: str | os.PathLike[str]) -> bool:
    """ImageXpress writes ``*_thumb*`` previews next to the images; batch skips them."""
    m = _IXM.match(_stem(Path(path).name))
    return bool(m and m["thumb"])
