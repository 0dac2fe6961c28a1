"""Opening a batch output: new, ``--overwrite`` or ``--resume``, and the run record.

The **run record** (``results.csv.focusqa.json`` next to a CSV, ``_focusqa.json`` inside a
parquet folder) holds the mode (``planes``/``stack``), the model id and the sha256 of its
ONNX file, and the columns. ``--resume`` refuses (:class:`BatchError`, one line) when any
differs from this run's, so one table never mixes models, weights or modes.

``--resume`` never rewrites a finished row. It skips every file with complete rows and
re-assesses only:

* a file whose rows were cut short by a kill (fewer rows than its ``file_rows``, or a
  torn last CSV line);
* a file whose error is ``transient`` (out of memory, worker lost) and that has been tried
  fewer than ``max_attempts`` times;
* with ``retry_failed``, every failed file.

The error rows of those files are removed (the CSV is rewritten atomically keeping every
other line byte for byte; a parquet part holding them is rewritten without them).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_focusqa.batch.schema import TRANSIENT, BatchError, typed
from napari_focusqa.batch.sinks import (
    CsvSink,
    ParquetSink,
    atomic_bytes,
    part_files,
    read_csv_lines,
    write_part,
)

#: a transient failure is retried by ``--resume`` until a file has had this many attempts
MAX_ATTEMPTS = 3

_STATUS = ("file", "error", "error_kind", "attempts", "file_rows")


@dataclass(frozen=True)
class RunRecord:
    """What produced a batch table: ``--resume`` must match it."""

    mode: str
    model: str | None
    model_sha256: str | None
    columns: tuple[str, ...]
    #: the optics given to the run (``--na`` ...), sorted ``(field, value)`` pairs
    optics: tuple[tuple[str, float], ...] = ()

    def to_json(self) -> bytes:
        d: dict[str, Any] = {"focusqa_batch": 1, "mode": self.mode, "model": self.model,
                             "model_sha256": self.model_sha256,
                             "columns": list(self.columns)}
        if self.optics:
            d["optics"] = dict(self.optics)
        return (json.dumps(d, indent=1) + "\n").encode()

    @classmethod
    def read(cls, path: Path) -> RunRecord:
        d = json.loads(path.read_text(encoding="utf-8"))
        return cls(str(d["mode"]), d.get("model"), d.get("model_sha256"),
                   tuple(d["columns"]), _optics_items(d.get("optics")))


def _optics_items(optics: dict[str, Any] | None) -> tuple[tuple[str, float], ...]:
    return tuple(sorted((str(k), float(v)) for k, v in (optics or {}).items()))


def record_for(mode: str, model: Any, columns: Sequence[str],
               optics: dict[str, Any] | None = None) -> RunRecord:
    """The run record of a batch with ``model`` (a FocusModel or None) and the given
    ``optics`` (validated, None values dropped)."""
    if model is None:
        return RunRecord(mode, None, None, tuple(columns), _optics_items(optics))
    return RunRecord(mode, model.id, str(model.card.get("sha256")), tuple(columns),
                     _optics_items(optics))


def record_path(out: Path) -> Path:
    """Where the run record of ``out`` lives."""
    if out.suffix.lower() == ".parquet":
        return out / "_focusqa.json"
    return out.with_name(out.name + ".focusqa.json")


def _model_name(rec: RunRecord) -> str:
    return rec.model if rec.model else "none (SF only)"


def check_record(old: RunRecord, new: RunRecord, out: Path) -> None:
    """Refuse (:class:`BatchError`) to continue ``out`` with another mode, model or weights."""
    hint = "; use the same settings as that run, or write a new --out"
    if old.mode != new.mode:
        flag = {"stack": "with --zstack", "planes": "without --zstack"}
        raise BatchError(
            f"--resume: {out} was written in {old.mode} mode ({flag.get(old.mode, '?')}), "
            f"this run is in {new.mode} mode{hint}"
        )
    if old.model != new.model:
        raise BatchError(f"--resume: {out} was written with model {_model_name(old)}, "
                         f"this run uses model {_model_name(new)}{hint}")
    if old.model_sha256 != new.model_sha256:
        raise BatchError(
            f"--resume: {out} was written with model {old.model} sha256 "
            f"{str(old.model_sha256)[:12]}…, but that model now has sha256 "
            f"{str(new.model_sha256)[:12]}… (other weights){hint}"
        )
    if old.optics != new.optics:
        def said(o: tuple[tuple[str, float], ...]) -> str:
            return ", ".join(f"--{k.replace('_', '-')} {v:g}" for k, v in o) or "no optics"
        raise BatchError(f"--resume: {out} was written with {said(old.optics)}, this run "
                         f"uses {said(new.optics)}{hint}")
    if old.columns != new.columns:
        raise BatchError(f"--resume: {out} has other columns than this focusqa writes "
                         f"(another version){hint}")


@dataclass
class ResumePlan:
    """What an existing output already holds."""

    #: absolute paths of the files not to assess again
    done: set[str] = field(default_factory=set)
    #: absolute path -> attempts recorded so far, for files to assess again
    attempts: dict[str, int] = field(default_factory=dict)
    #: failed files left as they are (permanent, or out of attempts)
    failed_kept: int = 0
    #: rows kept
    rows: int = 0


def _plan(statuses: Iterable[dict[str, Any]], retry_failed: bool,
          max_attempts: int) -> tuple[ResumePlan, set[str]]:
    """Decide per file from its rows' status columns; returns (plan, files to drop)."""
    by_file: dict[str, list[dict[str, Any]]] = {}
    for r in statuses:
        if r.get("file"):
            by_file.setdefault(os.path.abspath(str(r["file"])), []).append(r)
    plan = ResumePlan()
    drop: set[str] = set()
    for f, rows in by_file.items():
        expected = rows[0].get("file_rows")
        tries = max(int(r.get("attempts") or 1) for r in rows)
        failed = next((r for r in rows if r.get("error")), None)
        if expected is not None and len(rows) < int(expected):
            redo = True  # cut short by a kill
        elif failed is None:
            redo = False
        elif retry_failed:
            redo = True
        else:
            redo = failed.get("error_kind") == TRANSIENT and tries < max_attempts
        if redo:
            drop.add(f)
            plan.attempts[f] = tries
        else:
            plan.done.add(f)
            plan.rows += len(rows)
            plan.failed_kept += failed is not None
    return plan, drop


def _csv_status(lines: list[str], header: list[str]) -> list[dict[str, Any]]:
    import csv

    idx = {c: header.index(c) for c in _STATUS if c in header}
    out = []
    for fields in csv.reader(lines):
        out.append({c: typed(c, fields[i]) if i < len(fields) else None
                    for c, i in idx.items()})
    return out


def _resume_csv(out: Path, columns: Sequence[str], retry_failed: bool,
                max_attempts: int) -> tuple[CsvSink, ResumePlan]:
    header, lines, torn = read_csv_lines(out)
    if header != list(columns):
        raise BatchError(f"--resume: {out} has columns {header[:4]}…, not this run's; "
                         "was it written with another --zstack setting or focusqa version?")
    statuses = _csv_status(lines, header)
    plan, drop = _plan(statuses, retry_failed, max_attempts)
    if not drop and not torn:
        return CsvSink(out, columns, append=True), plan
    keep = [ln for ln, st in zip(lines, statuses)
            if os.path.abspath(str(st.get("file"))) not in drop]
    return CsvSink(out, columns, keep=keep), plan


def _resume_parquet(out: Path, retry_failed: bool,
                    max_attempts: int) -> tuple[list[Path], ResumePlan, set[str]]:
    import pyarrow.parquet as pq

    for tmp in out.glob(".part-*.tmp"):  # a part being written when the run was killed
        tmp.unlink(missing_ok=True)
    parts = part_files(out)
    statuses: list[dict[str, Any]] = []
    owners: dict[Path, set[str]] = {}
    for part in parts:
        rows = pq.read_table(part, columns=list(_STATUS)).to_pylist()
        statuses.extend(rows)
        owners[part] = {os.path.abspath(str(r["file"])) for r in rows if r.get("file")}
    plan, drop = _plan(statuses, retry_failed, max_attempts)
    return [p for p in parts if owners[p] & drop], plan, drop


def _drop_from_parts(parts: list[Path], drop: set[str], schema: Any) -> None:
    import pyarrow.parquet as pq

    for part in parts:  # one part in memory at a time
        rows = [r for r in pq.read_table(part).to_pylist()
                if os.path.abspath(str(r["file"])) not in drop]
        if rows:
            write_part(part, rows, schema)
        else:
            part.unlink()


def _has_rows(out: Path) -> bool:
    if out.suffix.lower() == ".parquet":
        return out.is_file() or (out.is_dir() and bool(part_files(out)))
    if not out.is_file():
        return False
    _header, lines, _torn = read_csv_lines(out)
    return bool(lines)


def _exists(out: Path) -> bool:
    if out.is_dir():
        return any(out.iterdir())
    return out.exists() and out.stat().st_size > 0


def _clear(out: Path) -> None:
    """Remove an old output before ``--overwrite`` (refuse a folder that is not ours)."""
    if out.is_dir():
        foreign = [p.name for p in out.iterdir()
                   if not (p.name == "_focusqa.json" or p.match("part-*.parquet")
                           or p.match(".part-*.tmp"))]
        if foreign:
            raise BatchError(f"--out: {out} is a folder holding other files ({foreign[0]}…), "
                             "not a focusqa parquet output; choose another --out")
        shutil.rmtree(out)
    elif out.suffix.lower() == ".parquet" and out.exists():
        out.unlink()  # a single-file parquet of an older focusqa


def open_output(
    out: Path,
    record: RunRecord,
    *,
    resume: bool,
    overwrite: bool,
    retry_failed: bool = False,
    max_attempts: int = MAX_ATTEMPTS,
) -> tuple[CsvSink | ParquetSink, ResumePlan]:
    """Open the sink for ``out`` and say what is already done.

    Raises
    ------
    BatchError
        Wrong suffix; ``out`` exists without ``resume``/``overwrite``; ``resume`` of an
        output written with another mode, model or weights, or without a run record.
    """
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise BatchError(f"--out: expected a .csv or .parquet file name, got {out.name!r}")
    rec_path = record_path(out)
    if resume and _has_rows(out):
        if not rec_path.is_file():
            raise BatchError(f"--resume: {out} has no run record ({rec_path.name}: written by "
                             "an older focusqa?); pass --overwrite or write a new --out")
        try:
            old = RunRecord.read(rec_path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BatchError(f"--resume: cannot read the run record {rec_path} ({exc})") from exc
        check_record(old, record, out)
        try:
            if suffix == ".csv":
                return _resume_csv(out, record.columns, retry_failed, max_attempts)
            if out.is_file():
                raise BatchError(f"--resume: {out} is a single parquet file of an older "
                                 "focusqa; pass --overwrite or write a new --out")
            psink = ParquetSink(out, record.columns)
            parts, plan, drop = _resume_parquet(out, retry_failed, max_attempts)
            _drop_from_parts(parts, drop, psink.schema)
            return psink, plan
        except (BatchError, OSError):
            raise
        except Exception as exc:
            raise BatchError(f"--resume: cannot read {out} ({type(exc).__name__}: {exc})") from exc
    if _exists(out) and not resume:
        if not overwrite:
            raise BatchError(
                f"--out: {out} exists; pass --resume to continue it or --overwrite to replace it"
            )
        _clear(out)
    if suffix == ".parquet":
        _clear(out)  # an empty folder or a stale record
        sink: CsvSink | ParquetSink = ParquetSink(out, record.columns)
        atomic_bytes(rec_path, record.to_json())
    else:
        sink = CsvSink(out, record.columns)  # the table first: a stale record cannot
        atomic_bytes(rec_path, record.to_json())  # describe rows it did not write
    return sink, ResumePlan()
