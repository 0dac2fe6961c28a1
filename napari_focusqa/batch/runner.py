"""Running a batch: serially in this process or on dask.distributed, writing as it goes.

* **Streaming.** Only the paths travel to the workers; each worker reads its files,
  assesses them and sends back a few small dicts. At most ``max_in_flight`` tasks (a
  task: one big file or a group of small ones, :func:`task_groups`) are submitted at a
  time, so memory stays bounded whatever the number of files.
* **One ONNX session per worker.** Workers load the model once per process
  (:func:`~napari_focusqa.batch.worker.worker_model`); with dask it is pre-loaded on every
  worker with ``client.run`` before the first task, so a bad model fails once, up front.
* **A lost worker loses no row.** dask re-runs the tasks of a dead worker elsewhere; a
  task that still fails (``KilledWorker``) becomes a ``transient`` error row, which
  ``--resume`` retries.
* **Clean stop.** SIGTERM/Ctrl-C (and the widget's cancel) stop after the current file;
  everything written stays, ``--resume`` continues.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from napari_focusqa.batch.inputs import expand_inputs
from napari_focusqa.batch.resume import MAX_ATTEMPTS, open_output, record_for
from napari_focusqa.batch.schema import BatchError, columns_for, normalise_row
from napari_focusqa.batch.summary import BatchSummary
from napari_focusqa.batch.worker import assess_many, assess_one, error_rows, preload_model
from napari_focusqa.core.errors import Cancelled, FocusQAError

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

#: set while the local cluster starts: a SIGTERM then waits until it is up (cli.py)
SIGNAL_STATE: dict[str, bool] = {"starting": False}


def model_ref_for_workers(model: Any) -> Any:
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


def _iter_serial(files: Sequence[str], model: Any, zstack: bool,
                 optics: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    for f in files:
        yield assess_one(f, model, None, zstack, optics)


#: one dask task takes up to this many files, and this many bytes of files: small images
#: are assessed in groups (the per-task overhead of dask is ~ms), big ones one per task
TASK_MAX_FILES = 32
TASK_MAX_BYTES = 4 * 2**20


def task_groups(files: Sequence[str], max_files: int = TASK_MAX_FILES,
                max_bytes: int = TASK_MAX_BYTES) -> Iterator[list[str]]:
    """Consecutive groups of ``files`` for one task each (order kept)."""
    group: list[str] = []
    size = 0
    for f in files:
        try:
            b = os.path.getsize(f)
        except OSError:
            b = 0
        if group and (len(group) >= max_files or size + b > max_bytes):
            yield group
            group, size = [], 0
        group.append(f)
        size += b
    if group:
        yield group


def _iter_dask(
    files: Sequence[str],
    client: Any,
    model_ref: Any,
    threads: int | None,
    zstack: bool,
    max_in_flight: int,
    files_per_task: int = TASK_MAX_FILES,
    optics: dict[str, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    from distributed import as_completed

    if model_ref is not None:
        client.run(preload_model, model_ref, threads)  # once per worker, fail fast
    it = task_groups(files, max_files=files_per_task)
    pending: dict[Any, list[str]] = {}

    def submit(paths: list[str]) -> Any:
        fut = client.submit(assess_many, paths, model_ref, threads, zstack, optics,
                            pure=False)
        pending[fut] = paths
        return fut

    ac = as_completed([submit(g) for _, g in zip(range(max_in_flight), it)])
    for fut in ac:
        paths = pending.pop(fut)
        try:
            results = fut.result()
        except Exception as exc:  # the task raised outside assess_one: KilledWorker, ...
            results = [error_rows(p, exc) for p in paths]
        fut.release()
        nxt = next(it, None)
        if nxt is not None:
            ac.add(submit(nxt))
        yield from results


def _start_dask(
    summary: BatchSummary, workers: int | None, scheduler: str | None, client: Any,
    threads: int | None,
) -> tuple[Any, Any, Any, int, int | None]:
    """(client, client we own, cluster we own, n workers, onnxruntime threads per worker)."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise BatchError(
            "--workers/--scheduler: dask.distributed is not installed "
            "(pip install 'napari-focusqa[dask]'), or use --workers 0"
        ) from exc
    cluster = own_client = None
    if client is None and scheduler is None:
        n = workers or (os.cpu_count() or 1)
        SIGNAL_STATE["starting"] = True  # a SIGTERM now waits until it is up
        try:
            with dask.config.set(WORKER_MALLOC_CONFIG):
                cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=50)
            own_client = client = Client(cluster)
        except BaseException:
            if cluster is not None:
                cluster.close()
            raise
        finally:
            SIGNAL_STATE["starting"] = False
        threads = threads or max(1, (os.cpu_count() or 1) // n)
        summary.workers = f"dask LocalCluster ({n} worker processes)"
        if SIGNAL_STATE.pop("requested", False):
            own_client.close()
            cluster.close()
            raise KeyboardInterrupt
    else:
        if client is None:
            own_client = client = Client(scheduler, timeout="20s")
        n = len(client.scheduler_info().get("workers", {}))
        summary.workers = f"dask scheduler {client.scheduler.address} ({n} workers)"
    return client, own_client, cluster, n, threads


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
    max_attempts: int = MAX_ATTEMPTS,
    progress: bool = True,
    max_in_flight: int | None = None,
    files_per_task: int = TASK_MAX_FILES,
    worker_threads: int | None = None,
    on_result: Callable[[dict[str, Any], BatchSummary], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    log: Callable[[str], None] | None = print,
    optics: dict[str, Any] | None = None,
) -> BatchSummary:
    """Assess many files and write a results table incrementally.

    Parameters
    ----------
    inputs : sequence of str
        Files, folders (searched recursively for .tif/.tiff/.btf/.png) or glob patterns.
    out : path
        ``.csv`` (appended per file, fsync-ed) or ``.parquet`` (a folder of part files).
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
        One row per channel of each (series, t) stack (best-focus slice) instead of one
        per plane.
    resume : bool
        Continue ``out``: skip files with complete rows, retry transient failures (fewer
        than ``max_attempts`` tries); refused when ``out`` was written with another mode,
        model or model sha256. ``retry_failed`` re-runs every failed file.
    overwrite : bool
        Replace an existing ``out`` (otherwise an existing ``out`` without ``resume`` is
        refused so that results are never lost by accident).
    max_in_flight : int, optional
        Tasks submitted at once (default 4 per worker): bounds memory. A task takes up to
        :data:`TASK_MAX_FILES` files and :data:`TASK_MAX_BYTES` of them (small images are
        grouped, big ones go one per task).
    files_per_task : int
        At most this many files in one dask task (1: every file its own task).
    worker_threads : int, optional
        onnxruntime threads per worker (default: CPU cores // workers for the local
        cluster; onnxruntime's own default on an external scheduler/client).
    optics : dict, optional
        The instrument's ``na``, ``wavelength_nm``, ``pixel_size_um`` for files that do
        not record them (they set the verdict threshold; docs/verdicts.md). Recorded in
        the run record: ``resume`` refuses other optics.

    Raises
    ------
    BatchError
        Bad inputs/out/workers or an output that cannot be resumed (before anything runs);
        :class:`~napari_focusqa.batch.schema.OutputError` when the output cannot be
        written (rows already written stay intact); ``ModelCardError`` for a bad model.
    """
    from napari_focusqa.pipeline import check_optics, resolve_model

    try:
        given = check_optics(optics) or None
    except FocusQAError as exc:  # one line naming the field, before anything runs
        raise BatchError(str(exc)) from None
    if workers is not None and (isinstance(workers, bool) or int(workers) < 0):
        raise BatchError(f"--workers: expected 0 (serial) or a positive number, got {workers!r}")
    if workers is not None and scheduler is not None:
        raise BatchError("--workers and --scheduler: give one of them, not both")
    files = expand_inputs(inputs)
    out_p = Path(out)
    mode = "stack" if zstack else "planes"
    columns = columns_for(mode)
    fm = resolve_model(model) if model is not None else None  # bad model: fail before starting
    say = log or (lambda s: None)

    sink, plan = open_output(out_p, record_for(mode, fm, columns, given), resume=resume,
                             overwrite=overwrite, retry_failed=retry_failed,
                             max_attempts=max_attempts)
    todo = [f for f in files if os.path.abspath(f) not in plan.done]
    summary = BatchSummary(out=str(out_p), files_total=len(files),
                           files_skipped=len(files) - len(todo), failed_kept=plan.failed_kept)
    cluster = own_client = None
    bar = None
    t0 = time.perf_counter()
    try:
        if not todo:
            results: Iterable[dict[str, Any]] = ()
        elif client is None and scheduler is None and workers == 0:
            summary.workers = "serial (1 process)"
            results = _iter_serial(todo, fm, zstack, given)
        else:
            client, own_client, cluster, n, threads = _start_dask(
                summary, workers, scheduler, client, worker_threads)
            ref = model_ref_for_workers(fm)
            results = _iter_dask(todo, client, ref, threads, zstack,
                                 max_in_flight or 4 * max(n, 1), max(int(files_per_task), 1),
                                 given)
        bar = _progress_bar(len(todo)) if progress and todo else None
        for res in results:
            attempt = plan.attempts.get(os.path.abspath(res["file"]), 0) + 1
            for r in res["rows"]:
                r["attempts"] = attempt
                r["file_rows"] = len(res["rows"])
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
        try:
            sink.close()
        finally:
            if own_client is not None:
                own_client.close()
            if cluster is not None:
                cluster.close()
    say(summary.format())
    return summary


def _progress_bar(total: int) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # the progress bar is optional
        return None
    return tqdm(total=total, unit="file", file=sys.stderr, dynamic_ncols=True,
                desc="focusqa batch")
