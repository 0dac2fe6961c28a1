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

from fiji_bridge import MACRO_PROTOCOL
from fiji_bridge.jvm import FijiError
from fiji_bridge.overlay import empty_legend_entry, legend_entries, patch_rois, roi_name
from fiji_bridge.tables import patch_records, record_columns
from napari_focusqa.core.assess import PATCH_COLUMNS, RECORD_COLUMNS, FocusResult
from napari_focusqa.core.zstack import StackResult
from napari_focusqa.io.writer import write_csv
from napari_focusqa.pipeline import assess_file, resolve_model


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


def _planes(image: str, model: Any, mode: str, frame: int | None,
            stains: list[str | None] | None) -> tuple[list[FocusResult], StackResult | None]:
    """The plane results (z outer, channel inner) and, for a stack, its StackResult."""
    if mode == "planes":
        return assess_file(image, model, "planes", t=frame, stains=stains), None
    stacks = assess_file(image, model, "stack", t=frame, stains=stains)
    if len(stacks) != 1:
        raise FijiError(f"--frame: {image} has {len(stacks)} time points or series; pick one")
    return stacks[0].planes(), stacks[0]


def check_protocol(protocol: int | None) -> None:
    """Refuse macros that speak another exchange protocol (an old or newer install)."""
    if protocol is not None and protocol != MACRO_PROTOCOL:
        from napari_focusqa import __version__

        raise FijiError(
            f"--protocol: the FocusQA macros in ImageJ use exchange protocol {protocol}, "
            f"this FocusQA {__version__} uses {MACRO_PROTOCOL}; update the macros (Fiji: "
            "Help > Update..., or run `focusqa fiji install` for this ImageJ again)"
        )


def assess_for_macro(
    image: str,
    out: str | os.PathLike[str],
    *,
    model: str | None = "default",
    label: str | None = None,
    frame: int | None = None,
    mode: str = "stack",
    stains: list[str | None] | None = None,
    patches: bool = True,
) -> dict[str, Any]:
    """Assess ``image`` through :mod:`napari_focusqa.pipeline` and write the exchange
    files into ``out`` (see module docs).

    ``model``: ``"default"``/``""`` (default installed model), ``"none"`` or an id/card;
    ``mode``: ``"stack"`` (z-stack: best slice and curves per channel) or ``"planes"``
    (a single plane or unrelated planes); ``stains``: one per channel, ``"auto"`` = from
    the channel name.
    """
    outdir = Path(out)
    if not outdir.is_dir():
        raise FijiError(f"--out: {outdir} is not a directory")
    if mode not in ("stack", "planes"):
        raise FijiError(f"--mode: expected 'stack' or 'planes', got {mode!r}")
    fm = resolve_model(None if model in (None, "", "default") else model)
    ordered, stack = _planes(image, fm, mode, frame, stains)
    for s in ordered:
        s.source["file"] = label or image
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
            ti = int(s.source.get("t_index") or 0) + 1
            for p in patch_rois(s):
                overlay_rows.append({
                    "c": ci, "z": zi, "t": ti, "x": p["draw"][0], "y": p["draw"][1],
                    "w": p["draw"][2], "h": p["draw"][3], "level": p["level"],
                    "certainty": p["certainty"], "empty": p["empty"], "color": p["hex"],
                    "name": roi_name(ci, zi, ti, p),
                })
    _write_tsv(outdir / "patches.tsv", overlay_rows,
               ["c", "z", "t", "x", "y", "w", "h", "level", "certainty", "empty", "color", "name"])
    prec = patch_records(ordered) if patches else []
    write_csv(prec, outdir / "patches.csv",
              ["file", "channel", "channel_index", "stain", "z_index", "z_um", *PATCH_COLUMNS])
    legend = [*legend_entries(k), empty_legend_entry()] if overlay_rows else []
    _write_tsv(outdir / "legend.tsv",  # level "" = the grey of patches without structure
               [{"level": e["level"], "color": e["hex"]} for e in legend], ["level", "color"])
    best = _write_best_and_curves(outdir, stack)
    return {"model": None if fm is None else fm.id, "planes": len(records),
            "patches": len(overlay_rows), "best": best}


def _write_best_and_curves(outdir: Path, stack: StackResult | None) -> list[dict[str, Any]]:
    """``best.tsv`` (best slice per channel) and ``curves.tsv``/``.csv`` (SF vs z)."""
    chans = [] if stack is None else stack.channels
    bcols = ["channel_index", "channel", "best_z_index", "best_z_um", "best_z_index_model",
             "best_z_index_sf", "best_z_confidence", "best_z_disagreement"]
    best = [{**{k: v for k, v in c.to_dict().items() if k in bcols},
             "channel_index": c.channel, "channel": c.name if c.name is not None else c.channel}
            for c in chans]
    _write_tsv(outdir / "best.tsv", best, bcols)
    curves = []
    for c in chans:
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
                "predicted_level": s.predicted_level, "verdict": s.verdict,
                "structured_fraction": (None if s.structured_fraction is None
                                        else round(s.structured_fraction, 6)),
            })
    ccols = ["channel_index", "channel", "stain", "z_index", "z_um", "sf", "sf_norm",
             "expected_level", "predicted_level", "verdict", "structured_fraction"]
    _write_tsv(outdir / "curves.tsv", curves, ccols)
    write_csv(curves, outdir / "curves.csv", ccols)
    return best


def write_status(out: str | os.PathLike[str], text: str) -> None:
    d = Path(out)
    if d.is_dir():
        tmp = d / "status.txt.tmp"
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, d / "status.txt")
