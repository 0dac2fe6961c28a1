"""Batch output sinks: an append-only CSV file and a parquet folder of part files.

* **CSV.** The rows of one input file go to the OS in one unbuffered ``write`` (they
  survive a killed process); ``fsync`` at most once a second and at the end. A failed
  write (disk full) is cut back to the last whole file, so the table on disk always ends
  on a complete file's rows.
* **Parquet.** ``results.parquet`` is a folder of part files (``part-000000.parquet``,
  …), each written to a hidden temp file and renamed into place, every ``flush_rows``
  rows or ``flush_seconds``. Only the rows not yet flushed are held in memory and each
  row is written once: memory is bounded and I/O linear in the table size.
  ``pandas.read_parquet``, ``pyarrow.parquet.read_table``, polars and DuckDB read the
  folder as one table; :func:`read_results` here too.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from napari_focusqa.batch.schema import BatchError, OutputError, column_type, csv_text, typed

PART_GLOB = "part-*.parquet"


def _one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {msg}"


def atomic_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file + rename; on failure ``path`` is unchanged.

    Raises
    ------
    OutputError
        The write failed (disk full, no permission); the temp file is removed.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"--out: cannot write {path} ({_one_line(exc)}); "
                          "what was written before is intact") from exc


def _write_failed(path: Path, exc: Exception) -> OutputError:
    return OutputError(
        f"--out: cannot write {path} ({_one_line(exc)}); the rows written before are intact: "
        "free space and run again with --resume"
    )


class CsvSink:
    """Append rows to a CSV file, one ``write`` per input file.

    Parameters
    ----------
    keep : list of str, optional
        ``None``: start a new file (header only). A list: rewrite the file atomically as
        the header plus these raw lines (``--resume`` dropping error rows to retry).
    append : bool
        The file on disk is already what ``--resume`` keeps: append to it unchanged.
    """

    def __init__(
        self,
        path: Path,
        columns: Sequence[str],
        keep: list[str] | None = None,
        *,
        append: bool = False,
        fsync_seconds: float = 1.0,
    ):
        self.path = path
        self.columns = list(columns)
        if not append:
            head = csv_text([], self.columns, header=True)
            atomic_bytes(path, (head + "".join(keep or [])).encode("utf-8"))
        try:
            self.fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise _write_failed(path, exc) from exc
        self.fsync_seconds = fsync_seconds
        self.last_sync = time.monotonic()

    def write(self, rows: list[dict[str, Any]]) -> None:
        assert self.fd is not None
        data = memoryview(csv_text(rows, self.columns, header=False).encode("utf-8"))
        size = os.fstat(self.fd).st_size
        try:
            while data:
                data = data[os.write(self.fd, data):]
            if time.monotonic() - self.last_sync >= self.fsync_seconds:
                os.fsync(self.fd)
                self.last_sync = time.monotonic()
        except OSError as exc:
            try:  # no partial rows of this file on disk: cut back to the last whole file
                os.ftruncate(self.fd, size)
            except OSError:
                pass
            raise _write_failed(self.path, exc) from exc

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            try:
                os.fsync(fd)
            except OSError:
                pass
            finally:
                os.close(fd)


def arrow_schema(columns: Sequence[str]) -> Any:
    """The pyarrow schema of a batch table with ``columns``."""
    try:
        import pyarrow as pa
    except ImportError as exc:
        raise BatchError("--out: parquet output needs pyarrow (pip install pyarrow); "
                         "or write .csv") from exc
    types = {"string": pa.string(), "int64": pa.int64(), "bool": pa.bool_(),
             "float64": pa.float64()}
    return pa.schema([(c, types[column_type(c)]) for c in columns])


def part_files(folder: Path) -> list[Path]:
    """The part files of a parquet batch output, in write order."""
    return sorted(folder.glob(PART_GLOB))


def write_part(path: Path, rows: list[dict[str, Any]], schema: Any) -> None:
    """Write one part file atomically (hidden temp file, fsync, rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.tmp")
    try:
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except Exception as exc:  # OSError, or pyarrow's own I/O errors
        tmp.unlink(missing_ok=True)
        raise _write_failed(path.parent, exc) from exc


class ParquetSink:
    """Write rows as parquet part files in the folder ``path``; bounded memory."""

    def __init__(
        self,
        path: Path,
        columns: Sequence[str],
        *,
        flush_rows: int = 2000,
        flush_seconds: float = 10.0,
    ):
        self.path = path
        self.columns = list(columns)
        self.schema = arrow_schema(columns)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _write_failed(path, exc) from exc
        parts = part_files(path)
        self.seq = int(parts[-1].name.split("-")[1].split(".")[0]) + 1 if parts else 0
        self.pending: list[dict[str, Any]] = []
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.last = time.monotonic()
        self.failed = False

    def write(self, rows: list[dict[str, Any]]) -> None:
        # the rows of one input file always land in the same part
        self.pending.extend(rows)
        if (len(self.pending) >= self.flush_rows
                or time.monotonic() - self.last >= self.flush_seconds):
            self.flush()

    def flush(self) -> None:
        if self.pending and not self.failed:
            try:
                write_part(self.path / f"part-{self.seq:06d}.parquet", self.pending, self.schema)
            except OutputError:
                self.failed = True
                raise
            self.seq += 1
            self.pending = []
        self.last = time.monotonic()

    def close(self) -> None:
        self.flush()


def open_sink(path: Path, columns: Sequence[str], **kwargs: Any) -> CsvSink | ParquetSink:
    """A CSV or parquet sink for ``path`` by its suffix (``kwargs`` for :class:`CsvSink`)."""
    if path.suffix.lower() == ".parquet":
        return ParquetSink(path, columns)
    return CsvSink(path, columns, **kwargs)


def read_csv_lines(path: Path) -> tuple[list[str], list[str], bool]:
    """(header fields, complete data lines with their ``\\n``, whether a torn tail was cut).

    A batch CSV never has a newline inside a field (errors are one line), so a line is a row.
    """
    text = path.read_bytes().decode("utf-8")
    torn = bool(text) and not text.endswith("\n")
    if torn:
        text = text[: text.rfind("\n") + 1]
    lines = text.splitlines(keepends=True)
    header = next(csv.reader(lines[:1]), []) if lines else []
    return header, lines[1:], torn


def read_results(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a batch output (CSV, parquet folder or file), typed; a torn CSV tail ignored."""
    p = Path(path)
    if p.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        if p.is_dir():
            rows: list[dict[str, Any]] = []
            for part in part_files(p):
                rows.extend(pq.read_table(part).to_pylist())
            return rows
        return list(pq.read_table(p).to_pylist())
    header, lines, _torn = read_csv_lines(p)
    rdr = csv.DictReader(io.StringIO("".join(lines)), fieldnames=header)
    return [{k: typed(k, v) for k, v in r.items()} for r in rdr]
