"""Batch focus QC of folders and whole plates, serially or on dask.distributed.

``focusqa batch INPUT... --out results.csv|results.parquet`` assesses every image file
found in ``INPUT`` (files, folders searched recursively, glob patterns) and writes one row
per 2D plane (or, with ``--zstack``, one row per channel of each z-stack).

Design
------
* **Streaming.** Only the paths travel to the workers; each worker reads its file,
  assesses it and sends back a few small dicts. At most ``max_in_flight`` files are
  submitted at a time, so memory stays bounded whatever the number of files.
* **One ONNX session per worker.** Workers load the model through :func:`worker_model`
  (a per-process cache on top of :func:`napari_focusqa.core.model.load_model`); with
  dask it is also pre-loaded on every worker with ``client.run`` before the first task,
  so a bad model fails once, up front.
* **Incremental, atomic output.** CSV rows of one file are appended in one ``write``
  and flushed (``fsync`` at most once a second and at the end); the header is created
  by temp file + rename. Parquet is
  rewritten to a temp file and renamed every ``flush_rows`` rows / ``flush_seconds``.
  A run killed at any moment leaves a readable file; ``--resume`` re-assesses the last
  file of a CSV (the only one whose rows a kill can have cut short).
* **Errors are rows.** An unreadable or corrupt file becomes one row with its ``error``
  column set; the batch continues. Exit code 0 when every file was assessed,
  :data:`EXIT_SOME_FAILED` (3) when some failed, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_focusqa.core.assess import RECORD_COLUMNS
from napari_focusqa.core.errors import Cancelled, FocusQAError

#: exit code when the batch finished but at least one input file failed
EXIT_SOME_FAILED = 3

#: file name endings picked up when a folder is given
IMAGE_SUFFIXES = (".tif", ".tiff", ".btf", ".png")

#: columns parsed from plate file names (ImageXpress, Operetta/Opera, CellInsight)
PLATE_COLUMNS = ("plate", "well", "site", "name_channel", "plane")

#: output columns, one row per 2D plane
PLANE_COLUMNS = (
    *RECORD_COLUMNS,
    "channel_index",
    "t_index",
    *PLATE_COLUMNS,
    "error",
)

#: output columns with ``--zstack``, one row per channel of a stack
ZSTACK_COLUMNS = (
    "file",
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
    *PLATE_COLUMNS,
    "error",
)

#: dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in workers, which also switches off
#: glibc's dynamic mmap threshold: every multi-MB image array is then a fresh mmap
#: (page faults + zeroing) and batch throughput drops ~3x (measured: 19 vs 61 images/s
#: for 1024² SF-only). These values keep arrays < 64 MB on the heap and return free
#: memory above 128 MB to the OS. Use the same for workers of your own cluster (see
#: docs/batch.md).
WORKER_MALLOC_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 128 * 2**20,
    "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": 64 * 2**20,
}

_STR = {"file", "channel", "stain", "model", "probabilities", "error", "plate", "well", "name_channel", "verdict"}
_INT = {
    "site",
    "plane",
    "channel_index",
    "t_index",
    "z_index",
    "predicted_level",
    "n_slices",
    "best_z_index",
    "best_z_index_model",
    "predicted_level_at_best",
}
_BOOL = {"in_focus", "in_focus_at_best"}


class BatchError(FocusQAError):
    """Bad arguments to the batch command (nothing was run)."""


# --------------------------------------------------------------------------- names
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
    for suf in (".ome.tiff", ".ome.tif", *IMAGE_SUFFIXES):
        if low.endswith(suf):
            return name[: -len(suf)]
    return Path(name).stem


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

    def well(row: str, col: str | int) -> str:
        return f"{row.upper()}{int(col):02d}"

    m = _OPERETTA.match(stem)
    if m:
        r = int(m["row"])
        out.update(
            well=well(chr(64 + r), m["col"]) if 1 <= r <= 32 else None,
            site=int(m["site"]),
            plane=int(m["plane"]),
            name_channel=f"ch{int(m['ch'])}",
        )
        return out
    m = _CELLINSIGHT.match(stem)
    if m:
        out.update(plate=m["plate"], well=well(m["row"], m["col"]), site=int(m["site"]),
                   name_channel=f"d{int(m['ch'])}")
        return out
    m = _IXM.match(stem)
    if m and (m["site"] or m["ch"] or m["plate"] is not None):
        out.update(
            plate=m["plate"] or None,
            well=well(m["row"], m["col"]),
            site=None if m["site"] is None else int(m["site"]),
            name_channel=None if m["ch"] is None else f"w{int(m['ch'])}",
        )
        return out
    m = _GENERIC_WELL.search(stem)
    if m:
        out["well"] = well(m["row"], m["col"])
    return out


def is_thumbnail(path: str | os.PathLike[str]) -> bool:
    """ImageXpress writes ``*_thumb*`` previews next to the images; batch skips them."""
    m = _IXM.match(_stem(Path(path).name))
    return bool(m and m["thumb"])


# --------------------------------------------------------------------------- inputs
def _image_files(folder: Path) -> list[str]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if f.startswith(".") or not f.lower().endswith(IMAGE_SUFFIXES):
                continue
            p = os.path.join(root, f)
            if not is_thumbnail(p):
                found.append(p)
    return found


def expand_inputs(inputs: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Files, folders (recursive, image suffixes only) and glob patterns -> file list.

    Order is kept (folders sorted), duplicates dropped.

    Raises
    ------
    BatchError
        An input that does not exist or a pattern that matches nothing.
    """
    if not inputs:
        raise BatchError("INPUT: give at least one file, folder or glob pattern")
    files: list[str] = []
    for raw in inputs:
        s = os.fspath(raw)
        if os.path.isdir(s):
            files.extend(_image_files(Path(s)))
        elif os.path.isfile(s):
            files.append(s)
        elif glob.has_magic(s):
            matches = sorted(glob.glob(s, recursive=True))
            if not matches:
                raise BatchError(f"INPUT: pattern {s!r} matches no files")
            for mt in matches:
                if os.path.isdir(mt):
                    files.extend(_image_files(Path(mt)))
                elif not is_thumbnail(mt):
                    files.append(mt)
        else:
            raise BatchError(f"INPUT: {s} does not exist")
    seen: set[str] = set()
    out = []
    for f in files:
        key = os.path.abspath(f)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


# --------------------------------------------------------------------------- worker side
_WORKER_MODELS: dict[tuple[str, int | None], Any] = {}
_WORKER_STATS = {"model_loads": 0, "files": 0}


def worker_model(model_ref: Any, threads: int | None = None) -> Any:
    """The process-wide :class:`FocusModel` for ``model_ref`` (loaded once per process)."""
    from napari_focusqa.core.model import FocusModel, load_model

    if model_ref is None or isinstance(model_ref, FocusModel):
        return model_ref
    key = (str(model_ref), threads)
    fm = _WORKER_MODELS.get(key)
    if fm is None:
        fm = load_model(model_ref, threads=threads)
        _ = fm.session  # create the onnxruntime session now, once
        _WORKER_MODELS[key] = fm
        _WORKER_STATS["model_loads"] += 1
    return fm


def preload_model(model_ref: Any, threads: int | None = None) -> dict[str, Any]:
    """Load the model into this worker's cache (used with ``client.run``); returns stats."""
    worker_model(model_ref, threads)
    return worker_stats()


def worker_stats() -> dict[str, Any]:
    """Per-process counters (model loads, files) and the session ids; for tests/diagnosis."""
    return {
        "pid": os.getpid(),
        "model_loads": _WORKER_STATS["model_loads"],
        "files": _WORKER_STATS["files"],
        "sessions": [id(m.session) for m in _WORKER_MODELS.values()],
    }


def _error_text(exc: BaseException) -> str:
    msg = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {msg}"


def _plane_rows(path: str, fm: Any) -> list[dict[str, Any]]:
    from napari_focusqa.pipeline import assess_file as pipeline_assess_file

    return [res.to_record() for res in pipeline_assess_file(path, fm, "planes")]


def _stack_rows(path: str, fm: Any) -> list[dict[str, Any]]:
    from napari_focusqa.pipeline import assess_file as pipeline_assess_file

    rows = []
    for res in pipeline_assess_file(path, fm, "stack"):
        for c in res.channels:
            b = c.best_z_index
            best = c.slices[b]
            rows.append(
                {
                    "file": path,
                    **{k: res.source[k] for k in ("series", "t_index") if k in res.source},
                    "channel": c.name if c.name is not None else c.channel,
                    "channel_index": c.channel,
                    "stain": c.stain,
                    "model": res.model_id,
                    "n_slices": c.n_slices,
                    "z_step_um": c.z_step_um,
                    "best_z_index": b,
                    "best_z_um": c.best_z_um,
                    "best_z_index_model": c.best_z_index_model,
                    "best_sf": best.sf,
                    "predicted_level_at_best": best.predicted_level,
                    "expected_level_at_best": best.expected_level,
                    "in_focus_at_best": best.in_focus,
                }
            )
    return rows


def assess_file(
    path: str, model_ref: Any = None, threads: int | None = None, zstack: bool = False
) -> dict[str, Any]:
    """Assess one file (runs on a worker). Never raises for a bad file.

    Returns
    -------
    dict
        ``file``, ``rows`` (list of records; one error record when the file failed),
        ``error`` (``None`` or a one-line message) and ``seconds``.
    """
    import logging

    t0 = time.perf_counter()
    # a corrupt file is reported in its row; keep tifffile's warnings off the console
    logging.getLogger("tifffile").setLevel(logging.ERROR)
    plate = parse_plate_name(path)
    try:
        fm = worker_model(model_ref, threads)
        rows = _stack_rows(path, fm) if zstack else _plane_rows(path, fm)
        if not rows:
            raise FocusQAError(f"{path}: no planes to assess")
        err = None
    except Exception as exc:  # a bad file (even a MemoryError) must not stop the batch
        err = _error_text(exc)
        rows = [{"file": path, "error": err}]
    for r in rows:
        r["file"] = path
        for k, v in plate.items():
            r.setdefault(k, v)
    _WORKER_STATS["files"] += 1
    return {"file": path, "rows": rows, "error": err, "seconds": time.perf_counter() - t0}


# --------------------------------------------------------------------------- output
def _typed(col: str, v: Any) -> Any:
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
    return {c: _typed(c, row.get(c)) for c in columns}


def _csv_text(rows: Iterable[dict[str, Any]], columns: Sequence[str], header: bool) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(columns)
    for r in rows:
        w.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
    return buf.getvalue()


def _atomic_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_results(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a batch output (CSV or parquet), values typed; a torn last CSV line ignored."""
    p = Path(path)
    if p.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(p).to_pylist()
    text = p.read_bytes().decode("utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rdr = csv.DictReader(io.StringIO(text))
    return [{k: _typed(k, v) for k, v in r.items()} for r in rdr]


class _CsvSink:
    def __init__(
        self,
        path: Path,
        columns: Sequence[str],
        existing: list[dict[str, Any]] | None,
        fsync_seconds: float = 1.0,
    ):
        self.path = path
        self.columns = list(columns)
        if existing is None:
            _atomic_bytes(path, _csv_text([], self.columns, header=True).encode())
        else:
            # rewrite what is kept (drops a torn last line / retried error rows) atomically
            _atomic_bytes(path, _csv_text(existing, self.columns, header=True).encode())
        self.fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND)
        self.fsync_seconds = fsync_seconds
        self.last_sync = time.monotonic()

    def write(self, rows: list[dict[str, Any]]) -> None:
        # the rows of one file go to the OS in one unbuffered write: they survive a killed
        # process; fsync (what survives a power cut) at most every ``fsync_seconds``
        assert self.fd is not None
        data = memoryview(_csv_text(rows, self.columns, header=False).encode("utf-8"))
        while data:
            data = data[os.write(self.fd, data):]
        if time.monotonic() - self.last_sync >= self.fsync_seconds:
            os.fsync(self.fd)
            self.last_sync = time.monotonic()

    def close(self) -> None:
        if self.fd is not None:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = None


class _ParquetSink:
    def __init__(
        self,
        path: Path,
        columns: Sequence[str],
        existing: list[dict[str, Any]] | None,
        flush_rows: int = 500,
        flush_seconds: float = 10.0,
    ):
        self.path = path
        self.columns = list(columns)
        self.rows: list[dict[str, Any]] = list(existing or [])
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.pending = 0
        self.last = time.monotonic()
        self.flush()

    def _schema(self) -> Any:
        import pyarrow as pa

        def typ(c: str) -> Any:
            if c in _STR:
                return pa.string()
            if c in _INT:
                return pa.int64()
            if c in _BOOL:
                return pa.bool_()
            return pa.float64()

        return pa.schema([(c, typ(c)) for c in self.columns])

    def write(self, rows: list[dict[str, Any]]) -> None:
        self.rows.extend(rows)
        self.pending += len(rows)
        if self.pending >= self.flush_rows or time.monotonic() - self.last >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise BatchError("--out: parquet output needs pyarrow (pip install pyarrow); "
                             "or write .csv") from exc

        table = pa.Table.from_pylist(self.rows, schema=self._schema())
        buf = pa.BufferOutputStream()
        pq.write_table(table, buf)
        _atomic_bytes(self.path, buf.getvalue().to_pybytes())
        self.pending = 0
        self.last = time.monotonic()

    def close(self) -> None:
        if self.pending:
            self.flush()


def _open_sink(
    out: Path, columns: Sequence[str], *, resume: bool, overwrite: bool, retry_failed: bool
) -> tuple[Any, set[str], int]:
    """Open the output; returns (sink, files already done (abspath), rows kept)."""
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise BatchError(f"--out: expected a .csv or .parquet file name, got {out.name!r}")
    existing: list[dict[str, Any]] | None = None
    done: set[str] = set()
    if out.exists() and out.stat().st_size > 0:
        if resume:
            try:
                if suffix == ".csv":
                    with open(out, encoding="utf-8") as fh:
                        header = next(csv.reader([fh.readline()]), [])
                    if header != list(columns):
                        raise BatchError(
                            f"--resume: {out} has columns {header[:4]}…, not this mode's; "
                            "was it written with a different --zstack setting?"
                        )
                existing = read_results(out)
            except BatchError:
                raise
            except Exception as exc:
                raise BatchError(f"--resume: cannot read {out} ({_error_text(exc)})") from exc
            if suffix == ".parquet" and existing and set(existing[0]) != set(columns):
                raise BatchError(f"--resume: {out} was written in the other (--zstack) mode")
            if retry_failed:
                existing = [r for r in existing if not r.get("error")]
            if suffix == ".csv" and existing:
                # only the last file appended can be incomplete (a kill inside its write):
                # drop its rows so that it is assessed again
                last = existing[-1].get("file")
                existing = [r for r in existing if r.get("file") != last]
            existing = [normalise_row(r, columns) for r in existing]
            done = {os.path.abspath(str(r["file"])) for r in existing if r.get("file")}
        elif not overwrite:
            raise BatchError(
                f"--out: {out} exists; pass --resume to continue it or --overwrite to replace it"
            )
    kept = len(existing or [])
    sink = (
        _CsvSink(out, columns, existing)
        if suffix == ".csv"
        else _ParquetSink(out, columns, existing)
    )
    return sink, done, kept


# --------------------------------------------------------------------------- summary
@dataclass
class BatchSummary:
    """What a batch run did (``format()`` gives the console summary)."""

    out: str
    files_total: int = 0
    files_skipped: int = 0
    files_done: int = 0
    files_failed: int = 0
    rows: int = 0
    seconds: float = 0.0
    workers: str = "serial"
    failures: list[tuple[str, str]] = field(default_factory=list)
    #: channel key -> [out-of-focus planes, planes with a model verdict]
    out_of_focus: dict[str, list[int]] = field(default_factory=dict)

    @property
    def files_per_s(self) -> float:
        return self.files_done / self.seconds if self.seconds > 0 else 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_SOME_FAILED if self.files_failed else 0

    def add(self, result: dict[str, Any], zstack: bool) -> None:
        self.files_done += 1
        self.rows += len(result["rows"])
        if result["error"]:
            self.files_failed += 1
            self.failures.append((result["file"], result["error"]))
            return
        key_in = "in_focus_at_best" if zstack else "in_focus"
        for r in result["rows"]:
            ch = r.get("name_channel") or r.get("channel")
            key = str(ch if ch is not None else 0)
            cnt = self.out_of_focus.setdefault(key, [0, 0])
            if r.get(key_in) is not None:
                cnt[1] += 1
                cnt[0] += int(not r[key_in])

    def format(self) -> str:
        lines = [
            f"focusqa batch: {self.files_done} files assessed ({self.files_skipped} already in "
            f"the output skipped) in {self.seconds:.1f} s on {self.workers}: "
            f"{self.files_per_s:.2f} files/s, {self.rows} rows -> {self.out}",
            f"  failures: {self.files_failed}",
        ]
        for f, e in self.failures[:10]:
            lines.append(f"    {f}: {e}")
        if len(self.failures) > 10:
            lines.append(f"    … and {len(self.failures) - 10} more (see the error column)")
        if self.out_of_focus:
            lines.append("  out of focus per channel:")
            for k in sorted(self.out_of_focus):
                n_out, n = self.out_of_focus[k]
                lines.append(f"    {k}: {n_out} / {n}" if n else f"    {k}: n/a (no model)")
        return "\n".join(lines)


# --------------------------------------------------------------------------- running
def _model_ref_for_workers(model: Any) -> Any:
    """A picklable reference: absolute card path for paths, the id otherwise."""
    from napari_focusqa.core.model import FocusModel

    if model is None:
        return None
    if isinstance(model, FocusModel):
        card = model.card.get("_card_path") or model.onnx_path.with_suffix(".json")
        return str(Path(card).resolve())
    s = os.fspath(model)
    if s.endswith((".json", ".onnx")) or os.sep in s:
        return str(Path(s).resolve())
    return s


def _iter_serial(
    files: Sequence[str], model: Any, zstack: bool
) -> Iterator[dict[str, Any]]:
    for f in files:
        yield assess_file(f, model, None, zstack)


def _iter_dask(
    files: Sequence[str],
    client: Any,
    model_ref: Any,
    threads: int | None,
    zstack: bool,
    max_in_flight: int,
) -> Iterator[dict[str, Any]]:
    from distributed import as_completed

    if model_ref is not None:
        client.run(preload_model, model_ref, threads)  # once per worker, fail fast
    it = iter(files)
    pending: dict[Any, str] = {}

    def submit(path: str) -> Any:
        fut = client.submit(assess_file, path, model_ref, threads, zstack, pure=False)
        pending[fut] = path
        return fut

    first = [submit(f) for _, f in zip(range(max_in_flight), it)]
    ac = as_completed(first)
    for fut in ac:
        path = pending.pop(fut)
        try:
            res = fut.result()
        except Exception as exc:  # worker died (KilledWorker), cancelled, ...
            res = {"file": path, "rows": [{"file": path, "error": _error_text(exc),
                                           **parse_plate_name(path)}],
                   "error": _error_text(exc), "seconds": 0.0}
        fut.release()
        nxt = next(it, None)
        if nxt is not None:
            ac.add(submit(nxt))
        yield res


def run_batch(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    model: Any = None,
    workers: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
    zstack: bool = False,
    resume: bool = False,
    overwrite: bool = False,
    retry_failed: bool = False,
    progress: bool = True,
    max_in_flight: int | None = None,
    worker_threads: int | None = None,
    on_result: Callable[[dict[str, Any], BatchSummary], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    log: Callable[[str], None] | None = print,
) -> BatchSummary:
    """Assess many files and write a results table incrementally.

    Parameters
    ----------
    inputs : sequence of str
        Files, folders (searched recursively for .tif/.tiff/.btf/.png) or glob patterns.
    out : path
        ``.csv`` (appended per file, fsync-ed) or ``.parquet`` (rewritten atomically).
    model : model id, card path, FocusModel or None
        ``None`` computes SF only.
    workers : int, optional
        ``0`` runs serially in this process; ``N`` starts a dask ``LocalCluster`` of N
        single-threaded worker processes; default: one worker per CPU core.
    scheduler : str, optional
        Address of a running dask scheduler (``tcp://host:8786``); the workers there must
        have napari-focusqa installed and see the same file paths.
    client : distributed.Client, optional
        Use this client (overrides ``workers`` and ``scheduler``).
    zstack : bool
        One row per channel of each stack (best-focus slice) instead of one per plane.
    resume : bool
        Skip files already present in ``out`` (``retry_failed`` re-runs files whose rows
        were errors).
    overwrite : bool
        Replace an existing ``out`` (otherwise an existing ``out`` without ``resume`` is
        refused so that results are never lost by accident).
    max_in_flight : int, optional
        Files submitted at once (default 4 per worker): bounds memory.
    worker_threads : int, optional
        onnxruntime threads per worker (default: CPU cores // workers for the local
        cluster; onnxruntime's own default on an external scheduler/client).

    Raises
    ------
    BatchError
        Bad inputs/out/workers (before anything runs); ``ModelCardError`` for a bad model.
    """
    from napari_focusqa.core.model import FocusModel, load_model

    if workers is not None and (isinstance(workers, bool) or int(workers) < 0):
        raise BatchError(f"--workers: expected 0 (serial) or a positive number, got {workers!r}")
    if workers is not None and scheduler is not None:
        raise BatchError("--workers and --scheduler: give one of them, not both")
    files = expand_inputs(inputs)
    out_p = Path(out)
    columns = ZSTACK_COLUMNS if zstack else PLANE_COLUMNS
    fm = load_model(model) if model is not None else None  # bad model: fail before starting
    say = log or (lambda s: None)

    sink, done, _kept = _open_sink(
        out_p, columns, resume=resume, overwrite=overwrite, retry_failed=retry_failed
    )
    todo = [f for f in files if os.path.abspath(f) not in done]
    summary = BatchSummary(out=str(out_p), files_total=len(files),
                           files_skipped=len(files) - len(todo))
    cluster = own_client = None
    bar = None
    t0 = time.perf_counter()
    try:
        if not todo:
            results: Iterable[dict[str, Any]] = ()
        elif client is None and scheduler is None and workers == 0:
            summary.workers = "serial (1 process)"
            results = _iter_serial(todo, fm, zstack)
        else:
            try:
                import dask
                from distributed import Client, LocalCluster
            except ImportError as exc:
                raise BatchError(
                    "--workers/--scheduler: dask.distributed is not installed "
                    "(pip install 'napari-focusqa[dask]'), or use --workers 0"
                ) from exc

            threads = worker_threads
            if client is None and scheduler is None:
                n = workers or (os.cpu_count() or 1)
                _SIGNAL_STATE["starting"] = True  # a SIGTERM now waits until it is up
                try:
                    with dask.config.set(WORKER_MALLOC_CONFIG):
                        cluster = LocalCluster(
                            n_workers=n, threads_per_worker=1, processes=True,
                            dashboard_address=":0", silence_logs=50,
                        )
                    own_client = client = Client(cluster)
                finally:
                    _SIGNAL_STATE["starting"] = False
                if _SIGNAL_STATE.pop("requested", False):
                    raise KeyboardInterrupt
                threads = threads or max(1, (os.cpu_count() or 1) // n)
                summary.workers = f"dask LocalCluster ({n} worker processes)"
            else:
                if client is None:
                    own_client = client = Client(scheduler, timeout="20s")
                n = len(client.scheduler_info().get("workers", {}))
                summary.workers = f"dask scheduler {client.scheduler.address} ({n} workers)"
            ref = _model_ref_for_workers(fm if isinstance(model, FocusModel) else model)
            results = _iter_dask(todo, client, ref, threads, zstack,
                                 max_in_flight or 4 * max(n, 1))
        tqdm: Any = None
        if progress and todo:
            try:
                from tqdm import tqdm
            except ImportError:  # the progress bar is optional
                tqdm = None
        if tqdm is not None:
            bar = tqdm(total=len(todo), unit="file", file=sys.stderr, dynamic_ncols=True,
                       desc="focusqa batch")
        for res in results:
            res["rows"] = [normalise_row(r, columns) for r in res["rows"]]
            sink.write(res["rows"])
            summary.add(res, zstack)
            if on_result is not None:
                on_result(res, summary)
            if cancel is not None and cancel():
                raise Cancelled(f"batch cancelled after {summary.files_done} files")
            if bar is not None:
                bar.update(1)
                if summary.files_failed:
                    bar.set_postfix(failed=summary.files_failed, refresh=False)
    except (KeyboardInterrupt, Cancelled):
        if bar is not None:
            bar.close()
            bar = None
        say(f"focusqa batch: stopped after {summary.files_done} files "
            f"({summary.files_failed} failed); their rows are in {out_p}; "
            "run again with --resume to continue")
        raise
    finally:
        summary.seconds = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        sink.close()
        if own_client is not None:
            own_client.close()
        if cluster is not None:
            cluster.close()
    say(summary.format())
    return summary


# --------------------------------------------------------------------------- CLI
_SIGNAL_STATE: dict[str, bool] = {"starting": False}


def _sigterm_to_interrupt(signum: int, frame: Any) -> None:
    """SIGTERM -> KeyboardInterrupt (clean stop), deferred while the cluster starts."""
    if _SIGNAL_STATE.get("starting"):
        _SIGNAL_STATE["requested"] = True
        return
    raise KeyboardInterrupt


def cmd_batch(args: argparse.Namespace) -> int:
    from napari_focusqa.core.model import default_model_id

    def _model_arg(value: str | None) -> str | None:
        if value in (None, ""):
            return default_model_id()
        return None if value.lower() == "none" else value

    if threading_is_main():
        signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    summary = run_batch(
        args.inputs,
        args.out,
        model=_model_arg(args.model),
        workers=args.workers,
        scheduler=args.scheduler,
        zstack=args.zstack,
        resume=args.resume,
        overwrite=args.overwrite,
        retry_failed=args.retry_failed,
        progress=not args.no_progress,
    )
    return summary.exit_code


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def register(subparsers: Any) -> None:
    """Add ``focusqa batch`` to the CLI."""
    b = subparsers.add_parser(
        "batch",
        help="assess folders / plates of images into one CSV or parquet table (dask)",
        description=(
            "Assess every image in INPUT (files, folders, glob patterns) and write one row per "
            "plane (or per channel with --zstack). Exit code 0: all files assessed; 3: some "
            "files failed (rows with an 'error'); 2: bad arguments."
        ),
    )
    b.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders or glob patterns")
    b.add_argument("--out", required=True, metavar="FILE", help="results .csv or .parquet")
    g = b.add_mutually_exclusive_group()
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local dask worker processes (0 = serial in this process; "
                        "default: one per CPU core)")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running dask scheduler, e.g. tcp://10.0.0.1:8786")
    b.add_argument("--model", default=None, help="model id or card path ('none' = SF only)")
    b.add_argument("--zstack", action="store_true",
                   help="one row per channel of each z-stack (best-focus slice)")
    b.add_argument("--resume", action="store_true", help="skip files already in --out")
    b.add_argument("--retry-failed", action="store_true",
                   help="with --resume: re-run files whose rows are errors")
    b.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(func=cmd_batch)
