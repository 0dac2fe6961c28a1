"""napari writer: a FocusQA patch-border Points layer as a CSV or JSON patch table.

One row per rectangle with its ``features`` (z, row, col, level, certainty,
expected_level, p0..pK) and its box in pixels (y0, x0, y1, x1, exclusive ends as in
:meth:`PatchGrid.boxes`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from napari_focusqa.core.errors import FocusQAError
from napari_focusqa.io.writer import write_csv, write_json


def patch_records(data: Any, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the patch table of a Shapes layer's ``data`` and ``meta`` (layer state)."""
    feats = meta.get("features")
    if feats is None or len(feats) == 0 or "level" not in getattr(feats, "columns", []):
        raise FocusQAError(
            "layer: not a FocusQA patch layer (its features have no 'level' column); "
            "run Assess focus with a model first"
        )
    if len(data) != len(feats):
        raise FocusQAError(f"layer: {len(data)} shapes but {len(feats)} feature rows")
    fq = (meta.get("metadata") or {}).get("focusqa", {})
    out = []
    for row in feats.to_dict("records"):
        rec: dict[str, Any] = {"image_layer": fq.get("image_layer"), "model": fq.get("model")}
        rec.update({k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()})
        out.append(rec)
    return out


def write_patches(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """npe2 single-layer writer: ``.csv`` or ``.json`` patch table; returns the path."""
    p = Path(path)
    recs = patch_records(data, meta)
    suffix = p.suffix.lower()
    if suffix == ".json":
        write_json({"patches": recs}, p)
    elif suffix == ".csv":
        write_csv(recs, p)
    else:
        raise FocusQAError(f"path: expected a .csv or .json file name, got {p.name!r}")
    return [str(p)]
