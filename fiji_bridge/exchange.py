"""The data exchange between the ImageJ macros and Python.

``focusqa fiji assess-for-macro IMAGE --out DIR`` (what "Assess Focus" and "Focus Curves"
call) assesses the image and writes tab-separated tables the macro language can read
(``results.tsv``, ``patches.tsv``, ``legend.tsv``, ``best.tsv``, ``curves.tsv``), CSV
copies for users, and ``status.txt`` last (``ok<TAB>model`` or ``error<TAB>message``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fiji_bridge.jvm import FijiError
from fiji_bridge.overlay import legend_entries, patch_rois
from fiji_bridge.tables import patch_records, record_columns
from napari_focusqa.core.assess import PATCH_COLUMNS, RECORD_COLUMNS
from napari_focusqa.core.model import load_model
from napari_focusqa.core.zstack import assess_stack
from napari_focusqa.io import read_image
from napari_focusqa.io.writer import write_csv


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (list, tuple)):
        return json.dumps(list(v))
    return str(v).replace("\t", " ").replace("\n", " ")


def _write_tsv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    lines = ["\t".join(columns)]
    lines += ["\t".join(_cell(r.get(c)) for c in columns) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _model(value: str | None) -> str | None:
    from napari_focusqa.core.model import default_model_id

    if value in (None, "", "default"):
        return default_model_id()
    if value.lower() == "none":
        return None
    return value


def assess_for_macro(
    image: str,
    out: str | os.PathLike[str],
    *,
    model: str | None = "default",
    label: str | None = None,
    frame: int = 0,
    patches: bool = True,
) -> dict[str, Any]:
    """Assess ``image`` and write the exchange files into ``out`` (see module docs)."""
    outdir = Path(out)
    if not outdir.is_dir():
        raise FijiError(f"--out: {outdir} is not a directory")
    img = read_image(image)
    nt = img.data.shape[0]
    if not 0 <= frame < nt:
        raise FijiError(f"--frame: index {frame} out of range (0..{nt - 1})")
    mid = _model(model)
    fm = load_model(mid) if mid else None
    src = {"file": label or image}
    res = assess_stack(img.zcyx(frame), fm, z_step_um=img.z_step_um,
                       channel_names=img.channel_names, stains=img.stains, source=src)
    ordered = res.planes()
    if nt > 1:
        for s in ordered:
            s.source["t_index"] = frame
    records = [s.to_record() for s in ordered]
    cols = record_columns(records, RECORD_COLUMNS)
    _write_tsv(outdir / "results.tsv", records, cols)
    write_csv(records, outdir / "results.csv", RECORD_COLUMNS)

    k = 11
    overlay_rows: list[dict[str, Any]] = []
    if patches:
        for s in ordered:
            if s.num_classes:
                k = s.num_classes
            ci = int(s.source.get("channel_index") or 0) + 1
            zi = int(s.source.get("z_index") or 0) + 1
            for p in patch_rois(s):
                overlay_rows.append({
                    "c": ci, "z": zi, "t": frame + 1, "x": p["draw"][0], "y": p["draw"][1],
                    "w": p["draw"][2], "h": p["draw"][3], "level": p["level"],
                    "certainty": p["certainty"],
                    "color": p["hex"],
                    "name": f"focusqa patch c{ci} z{zi} t{frame + 1} r{p['row']} c{p['col']} "
                            f"level {p['level']} certainty {p['certainty']:.3f}",
                })
    _write_tsv(outdir / "patches.tsv", overlay_rows,
               ["c", "z", "t", "x", "y", "w", "h", "level", "certainty", "color", "name"])
    prec = patch_records(ordered) if patches else []
    write_csv(prec, outdir / "patches.csv",
              ["file", "channel", "channel_index", "stain", "z_index", "z_um", *PATCH_COLUMNS])
    legend = legend_entries(k) if overlay_rows else []
    _write_tsv(outdir / "legend.tsv", [{"level": e["level"], "color": e["hex"]} for e in legend],
               ["level", "color"])

    best = [{"channel_index": c.channel, "channel": c.name if c.name is not None else c.channel,
             "best_z_index": c.best_z_index, "best_z_um": c.best_z_um,
             "best_z_index_model": c.best_z_index_model} for c in res.channels]
    _write_tsv(outdir / "best.tsv", best,
               ["channel_index", "channel", "best_z_index", "best_z_um", "best_z_index_model"])
    curves = []
    for c in res.channels:
        sf = c.sf
        span = float(sf.max() - sf.min()) or 1.0
        lv = c.expected_level
        for z, s in enumerate(c.slices):
            curves.append({
                "channel_index": c.channel, "channel": c.name if c.name is not None else c.channel,
                "stain": c.stain, "z_index": z,
                "z_um": None if c.z_um is None else c.z_um[z],
                "sf": round(float(sf[z]), 6), "sf_norm": round(float((sf[z] - sf.min()) / span), 6),
                "expected_level": None if lv is None else round(float(lv[z]), 6),
                "predicted_level": s.predicted_level,
            })
    ccols = ["channel_index", "channel", "stain", "z_index", "z_um", "sf", "sf_norm",
             "expected_level", "predicted_level"]
    _write_tsv(outdir / "curves.tsv", curves, ccols)
    write_csv(curves, outdir / "curves.csv", ccols)
    return {"model": res.model_id, "planes": len(records), "patches": len(overlay_rows),
            "best": best}


def write_status(out: str | os.PathLike[str], text: str) -> None:
    d = Path(out)
    if d.is_dir():
        tmp = d / "status.txt.tmp"
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, d / "status.txt")
