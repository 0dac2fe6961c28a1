"""Focus results as ImageJ ``ResultsTable`` s, with the CLI CSV's columns and cells.

:func:`results_table` has one row per image plane and the columns of
:data:`napari_focusqa.core.assess.RECORD_COLUMNS` (then any other record keys, as
``focusqa assess --csv``); :func:`patch_results_table` one row per patch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from fiji_bridge.jvm import FijiError, jimport
from fiji_bridge.overlay import patch_rois, slices_of
from napari_focusqa.core.assess import PATCH_COLUMNS, RECORD_COLUMNS, FocusResult
from napari_focusqa.core.zstack import StackResult


# --------------------------------------------------------------------------------------
def csv_cell(value: Any) -> str | float:
    """A record value as the CLI CSV writes it: numbers stay numbers, the rest text.

    ``None`` -> ``""``, ``True``/``False`` -> ``"True"``/``"False"``, lists -> JSON.
    """
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return json.dumps(np.asarray(value).tolist() if isinstance(value, np.ndarray) else list(value))
    return str(value)


def record_columns(records: Sequence[dict[str, Any]],
                   columns: Sequence[str] = RECORD_COLUMNS) -> list[str]:
    """Column order of the CLI CSV: ``columns`` first, then other keys as they appear."""
    cols = list(columns)
    for r in records:
        for k in r:
            if k not in cols:
                cols.append(k)
    return cols


def _as_records(result: Any) -> list[dict[str, Any]]:
    if isinstance(result, (FocusResult, StackResult)) or (
        isinstance(result, (list, tuple)) and result and isinstance(result[0], FocusResult)
    ):
        return [r.to_record() for r in slices_of(result)]
    if isinstance(result, (list, tuple)) and all(isinstance(r, dict) for r in result):
        return list(result)
    raise FijiError("result: expected a FocusResult, StackResult or a list of records")


def results_table(
    result: Any,
    *,
    columns: Sequence[str] = RECORD_COLUMNS,
    table: Any = None,
) -> Any:
    """One row per image plane with the CLI CSV's columns, as an ImageJ ``ResultsTable``.

    Parameters
    ----------
    result : FocusResult, StackResult, list of FocusResult or list of record dicts
    columns : column names placed first (then any other record keys, as the CLI does)
    table : ij.measure.ResultsTable, optional
        Append to this table (e.g. ``ResultsTable.getResultsTable()``) instead of a new one.
    """
    records = _as_records(result)
    return _fill_table(records, record_columns(records, columns), table)


def _fill_table(records: Sequence[dict[str, Any]], cols: Sequence[str], table: Any) -> Any:
    ResultsTable = jimport("ij.measure.ResultsTable")
    from jpype import JString

    rt = ResultsTable() if table is None else table
    for rec in records:
        rt.incrementCounter()
        for col in cols:
            v = csv_cell(rec.get(col))
            if isinstance(v, float):
                rt.addValue(col, v)
            else:
                rt.addValue(col, JString(v))
    return rt


def patch_records(result: FocusResult | StackResult | Sequence[FocusResult]) -> list[dict[str, Any]]:
    """One record per patch: plane identity, ``PATCH_COLUMNS``, probabilities and colour."""
    rows: list[dict[str, Any]] = []
    for res in slices_of(result):
        s = res.source
        ident = {k: s.get(k) for k in ("file", "channel", "channel_index", "stain", "z_index", "z_um")}
        for p, prow in zip(patch_rois(res), res.patch_table()):
            rows.append({**ident, **prow, "color": p["hex"]})
    return rows


def patch_results_table(result: Any, *, table: Any = None) -> Any:
    """Per-patch ``ResultsTable`` (see :func:`patch_records`)."""
    recs = patch_records(result)
    first = ("file", "channel", "channel_index", "stain", "z_index", "z_um", *PATCH_COLUMNS)
    return _fill_table(recs, record_columns(recs, first), table)


def table_to_records(rt: Any) -> list[dict[str, Any]]:
    """Read a ``ResultsTable`` back: numbers as float, text cells as str."""
    heads = [str(h) for h in rt.getHeadings() if str(h) not in (" ", "Label")]
    out = []
    for i in range(int(rt.size())):
        row: dict[str, Any] = {}
        for h in heads:
            col = rt.getColumnIndex(h)
            num = float(rt.getValueAsDouble(col, i))
            if np.isnan(num):
                row[h] = str(rt.getStringValue(h, i))
            else:
                row[h] = num
        out.append(row)
    return out


def records_equal(a: Iterable[dict[str, Any]], b: Iterable[dict[str, Any]], rtol: float = 1e-9) -> bool:
    """Compare two record lists cell by cell as CSV cells (numbers with ``rtol``)."""
    la, lb = list(a), list(b)
    if len(la) != len(lb):
        return False
    for ra, rb in zip(la, lb):
        for key in set(ra) | set(rb):
            va, vb = csv_cell(ra.get(key)), csv_cell(rb.get(key))
            if isinstance(va, float) and isinstance(vb, float):
                if not np.isclose(va, vb, rtol=rtol, atol=0):
                    return False
            elif va != vb:
                return False
    return True
