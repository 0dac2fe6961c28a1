"""A plate map from a batch table: one value per well, no Qt (the napari plate view draws it)."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from napari_focusqa.batch.schema import BatchError

#: screening plate formats (rows, columns), smallest first: 96, 384 and 1536 wells
PLATE_FORMATS = ((8, 12), (16, 24), (32, 48))

#: verdicts from worst to best: a tie between sites goes to the worse one
VERDICT_ORDER = ("out_of_focus", "no_structure", "in_focus")

_WELL = re.compile(r"^([A-Za-z]{1,2})(\d{1,3})$")


def row_label(i: int) -> str:
    """Row letters of a plate: 0 -> A, 25 -> Z, 26 -> AA (1536-well plates)."""
    return chr(65 + i) if i < 26 else "A" + chr(65 + i - 26)


def _row_index(letters: str) -> int:
    s = letters.upper()
    return ord(s) - 65 if len(s) == 1 else 26 + ord(s[1]) - 65


def _missing(v: Any) -> bool:
    """None, NaN (pandas' missing value) or an empty string."""
    return v is None or v == "" or (isinstance(v, float) and bool(np.isnan(v)))


def _rows_of(table: Any) -> Iterable[dict[str, Any]]:
    if isinstance(table, str | os.PathLike):
        from napari_focusqa.batch.sinks import read_results

        return read_results(table)
    if hasattr(table, "to_dict"):  # a pandas DataFrame
        return list(table.to_dict("records"))
    return list(table)


def plate_grid(
    table: Any, value: str = "predicted_level", *, shape: tuple[int, int] | None = None
) -> tuple[list[str], list[int], np.ndarray]:
    """One value per well of a batch table, laid out as the plate.

    Parameters
    ----------
    table : list of row dicts, pandas DataFrame, or the path of a batch output
        Rows need a ``well`` column (``B03``); rows without a well or with an ``error``
        are ignored.
    value : str
        ``"predicted_level"`` (``"level"`` for short) or any other numeric column: the
        mean over the well's rows (sites, planes, channels); ``"verdict"``: the most
        common verdict of the well's rows, a tie going to the worse one
        (:data:`VERDICT_ORDER`).
    shape : (rows, columns), optional
        The plate format (e.g. ``(4, 6)`` for 24 wells); default: the smallest of 96, 384
        and 1536 wells that holds every well in the table.

    Returns
    -------
    rows : list of str
        Row labels (``A``, ``B``, …).
    cols : list of int
        Column numbers, from 1.
    values : ndarray, shape (len(rows), len(cols))
        float with NaN for wells without data, or (``verdict``) object with None.

    Raises
    ------
    BatchError
        No row has a well name, or a well lies outside the plate.
    """
    col_name = "predicted_level" if value == "level" else value
    per_well: dict[tuple[int, int], list[Any]] = {}
    for r in _rows_of(table):
        m = _WELL.match(str(r.get("well") or ""))
        v = r.get(col_name)
        if m is None or not _missing(r.get("error")) or _missing(v):
            continue
        per_well.setdefault((_row_index(m[1]), int(m[2]) - 1), []).append(v)
    if not per_well:
        raise BatchError(f"plate: no rows with a well name and a {col_name!r} value")
    n_r = max(k[0] for k in per_well) + 1
    n_c = max(k[1] for k in per_well) + 1
    if shape is not None:
        fmt: tuple[int, int] | None = (int(shape[0]), int(shape[1]))
        outside = next((k for k in per_well if k[0] >= shape[0] or k[1] >= shape[1]), None)
        if outside is not None:
            raise BatchError(f"plate: well {row_label(outside[0])}{outside[1] + 1:02d} lies "
                             f"outside the {shape[0]} x {shape[1]} plate (shape=)")
    else:
        fmt = next(((r, c) for r, c in PLATE_FORMATS if n_r <= r and n_c <= c), None)
    if fmt is None:
        raise BatchError(f"plate: wells up to row {row_label(n_r - 1)} column {n_c} do not fit "
                         "a 1536-well plate")
    if col_name == "verdict":
        values: np.ndarray = np.full(fmt, None, dtype=object)
        rank = {v: i for i, v in enumerate(VERDICT_ORDER)}
        for (i, j), vs in per_well.items():
            counts = Counter(str(v) for v in vs)
            values[i, j] = max(counts, key=lambda v: (counts[v], -rank.get(v, len(rank))))
    else:
        values = np.full(fmt, np.nan)
        for (i, j), vs in per_well.items():
            values[i, j] = float(np.mean([float(v) for v in vs]))
    return [row_label(i) for i in range(fmt[0])], list(range(1, fmt[1] + 1)), values
