"""Batch focus QC of folders and whole plates, serially or on dask.distributed.

``focusqa batch INPUT... --out results.csv|results.parquet`` assesses every image file
found in ``INPUT`` (files, folders searched recursively, glob patterns) and writes one row
per 2D plane of every series and time point (or, with ``--zstack``, one row per channel
of each (series, t) stack). See ``docs/batch.md``.

Modules, one job each:

- :mod:`.naming` plate/well/site/channel from HCS file names
- :mod:`.inputs` files, folders and globs -> the file list
- :mod:`.schema` the table's columns and types, the batch errors
- :mod:`.worker` one file -> rows on a worker (one model session per process)
- :mod:`.sinks` the CSV file and the parquet folder of part files
- :mod:`.resume` new / ``--overwrite`` / ``--resume`` and the run record
- :mod:`.runner` serial and dask.distributed runs
- :mod:`.summary` the console summary
- :mod:`.plate` the well grid of a table (for plate views)
- :mod:`.cli` ``focusqa batch`` (argparse)
"""

from napari_focusqa.batch.inputs import expand_inputs
from napari_focusqa.batch.naming import (
    IMAGE_SUFFIXES,
    PLATE_COLUMNS,
    is_thumbnail,
    parse_plate_name,
)
from napari_focusqa.batch.plate import plate_grid
from napari_focusqa.batch.resume import MAX_ATTEMPTS, RunRecord, record_path
from napari_focusqa.batch.runner import WORKER_MALLOC_CONFIG, run_batch
from napari_focusqa.batch.schema import (
    EXIT_SOME_FAILED,
    PERMANENT,
    PLANE_COLUMNS,
    TRANSIENT,
    ZSTACK_COLUMNS,
    BatchError,
    OutputError,
    normalise_row,
)
from napari_focusqa.batch.sinks import CsvSink, ParquetSink, read_results
from napari_focusqa.batch.summary import BatchSummary
from napari_focusqa.batch.worker import (
    assess_one,
    error_kind,
    preload_model,
    worker_model,
    worker_stats,
)

__all__ = [
    "EXIT_SOME_FAILED",
    "IMAGE_SUFFIXES",
    "MAX_ATTEMPTS",
    "PERMANENT",
    "PLANE_COLUMNS",
    "PLATE_COLUMNS",
    "TRANSIENT",
    "WORKER_MALLOC_CONFIG",
    "ZSTACK_COLUMNS",
    "BatchError",
    "BatchSummary",
    "CsvSink",
    "OutputError",
    "ParquetSink",
    "RunRecord",
    "assess_one",
    "error_kind",
    "expand_inputs",
    "is_thumbnail",
    "normalise_row",
    "parse_plate_name",
    "plate_grid",
    "preload_model",
    "read_results",
    "record_path",
    "run_batch",
    "worker_model",
    "worker_stats",
]
