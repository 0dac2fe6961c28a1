"""The batch table: its columns, their types, and the batch errors.

One row per 2D plane (:data:`PLANE_COLUMNS`) or, with ``--zstack``, one row per channel
of each (series, t) stack (:data:`ZSTACK_COLUMNS`). Both end with the bookkeeping columns
:data:`STATUS_COLUMNS` that ``--resume`` relies on.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from napari_focusqa.batch.naming import PLATE_COLUMNS
from napari_focusqa.core.assess import RECORD_COLUMNS
from napari_focusqa.core.errors import FocusQAError

#: exit code when the batch finished but at least one input file failed
EXIT_SOME_FAILED = 3

#: ``error_kind`` of a file that will fail again (unreadable, corrupt, not a z-stack...)
PERMANENT = "permanent"
#: ``error_kind`` of a failure of the machine, not the file (out of memory, worker lost)
TRANSIENT = "transient"

#: ``error`` (one line or empty), ``error_kind`` (:data:`PERMANENT`/:data:`TRANSIENT`),
#: ``attempts`` (how many runs have assessed this file, this one included) and
#: ``file_rows`` (rows the file produced: ``--resume`` redoes a file with fewer rows)
STATUS_COLUMNS = ("error", "error_kind", "attempts", "file_rows")

#: the per-plane verdict columns (in RECORD_COLUMNS once the core carries them)
VERDICT_COLUMNS = ("verdict", "structured_fraction")

#: output columns, one row per 2D plane
PLANE_COLUMNS = (
    *RECORD_COLUMNS,
    *(c for c in VERDICT_COLUMNS if c not in RECORD_COLUMNS),
    "channel_index",
    "t_index",
    "series",
    *PLATE_COLUMNS,
    *STATUS_COLUMNS,
)

#: output columns with ``--zstack``, one row per channel of each (series, t) stack
ZSTACK_COLUMNS = (
    "file",
    "series",
    "t_index",
    "channel",
    "channel_index",
    "stain",
    "model",
    "n_slices",
    "z_step_um",
    "best_z_index",
    "best_z_um",
    "best_z_index_model",
    "best_sf",
    "predicted_level_at_best",
    "expected_level_at_best",
    "in_focus_at_best",
    "verdict",
    "structured_fraction",
    *PLATE_COLUMNS,
    *STATUS_COLUMNS,
)

_STR = {"file", "channel", "stain", "model", "probabilities", "error", "error_kind", "plate",
        "well", "name_channel", "verdict"}
_INT = {
    "site", "plane", "channel_index", "t_index", "series", "z_index", "predicted_level",
    "n_slices", "best_z_index", "best_z_index_model", "predicted_level_at_best", "attempts",
    "file_rows",
}
_BOOL = {"in_focus", "in_focus_at_best"}


class BatchError(FocusQAError):
    """Bad arguments to the batch command, or an output that cannot be continued."""


class OutputError(BatchError):
    """The output could not be written (disk full, no permission); what was there is intact."""


def columns_for(mode: str) -> tuple[str, ...]:
    """The columns of a ``"planes"`` or ``"stack"`` batch table."""
    return ZSTACK_COLUMNS if mode == "stack" else PLANE_COLUMNS


def column_type(col: str) -> str:
    """``"string"``, ``"int64"``, ``"bool"`` or ``"float64"``: the type of an output column."""
    if col in _STR:
        return "string"
    if col in _INT:
        return "int64"
    if col in _BOOL:
        return "bool"
    return "float64"


def typed(col: str, v: Any) -> Any:
    """Normalise one value for the output column ``col`` (None stays None)."""
    if v is None or v == "":
        return None
    if col == "probabilities":
        return v if isinstance(v, str) else json.dumps([round(float(x), 6) for x in v])
    if col in _STR:
        return str(v)
    if col in _BOOL:
        if isinstance(v, str):
            return v.strip().lower() in ("true", "1", "yes")
        return bool(v)
    if col in _INT:
        return int(float(v))
    return float(v)


def normalise_row(row: dict[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    """``row`` restricted to ``columns`` (missing ones None), every value typed."""
    return {c: typed(c, row.get(c)) for c in columns}


def csv_text(rows: Iterable[dict[str, Any]], columns: Sequence[str], header: bool) -> str:
    """CSV lines (``\\n``-terminated) for ``rows``, with the header line first if asked."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(columns)
    for r in rows:
        w.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
    return buf.getvalue()
