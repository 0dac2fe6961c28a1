"""The worker side of a batch: one file -> rows, with one model session per process.

Runs in this process (``--workers 0``) or on dask workers. Never raises for a bad file:
the failure becomes one error row with an ``error_kind`` (see :func:`error_kind`).
"""

from __future__ import annotations

import errno
import os
import time
from typing import Any

from napari_focusqa.batch.naming import parse_plate_name
from napari_focusqa.batch.schema import PERMANENT, TRANSIENT
from napari_focusqa.core.errors import FocusQAError

_WORKER_MODELS: dict[tuple[str, int | None], Any] = {}
_WORKER_STATS = {"model_loads": 0, "files": 0}

#: OS errors that say "not now" rather than "never" (memory, busy, stale network mounts)
_TRANSIENT_ERRNOS = {errno.ENOMEM, errno.EAGAIN, errno.EBUSY, errno.ETIMEDOUT, errno.ESTALE,
                     errno.EMFILE, errno.ENFILE, errno.EINTR}
#: exception types (by name: no dask import needed) raised when a worker is lost
_TRANSIENT_TYPES = {"KilledWorker", "CommClosedError", "FutureCancelledError",
                    "CancelledError", "TimeoutError", "StreamClosedError"}
#: onnxruntime reports an allocation failure as a RuntimeException with these words
_ALLOC_WORDS = ("bad_alloc", "failed to allocate memory")


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


def error_text(exc: BaseException) -> str:
    """``Type: message`` on one line."""
    msg = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {msg}"


def error_kind(exc: BaseException) -> str:
    """:data:`TRANSIENT` for a failure of the machine (memory, a lost worker, a busy or
    stale file system) anywhere in the exception's cause chain, else :data:`PERMANENT`."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, MemoryError) or type(e).__name__ in _TRANSIENT_TYPES:
            return TRANSIENT
        if isinstance(e, OSError) and e.errno in _TRANSIENT_ERRNOS:
            return TRANSIENT
        if type(e).__name__ == "RuntimeException" and any(
            w in str(e).lower() for w in _ALLOC_WORDS
        ):
            return TRANSIENT
        e = e.__cause__ or e.__context__
    return PERMANENT


def error_rows(path: str, exc: BaseException) -> dict[str, Any]:
    """The result of a file that failed: one error row with the plate columns."""
    err = error_text(exc)
    kind = error_kind(exc)
    row = {"file": path, "error": err, "error_kind": kind, **parse_plate_name(path)}
    return {"file": path, "rows": [row], "error": err, "error_kind": kind, "seconds": 0.0}


def _plane_rows(path: str, fm: Any, optics: Any = None) -> list[dict[str, Any]]:
    from napari_focusqa.pipeline import assess_file

    return [res.to_record() for res in assess_file(path, fm, mode="planes", optics=optics)]


def _stack_rows(path: str, fm: Any, optics: Any = None) -> list[dict[str, Any]]:
    from napari_focusqa.pipeline import assess_file

    rows = []
    for res in assess_file(path, fm, mode="stack", optics=optics):
        src = res.source
        for c in res.channels:
            b = c.best_z_index
            best = c.slices[b]
            rows.append({
                "file": path,
                "series": src.get("series"),
                "t_index": src.get("t_index"),
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
                "verdict": getattr(best, "verdict", None),
                "structured_fraction": getattr(best, "structured_fraction", None),
            })
    return rows


def assess_one(
    path: str, model_ref: Any = None, threads: int | None = None, zstack: bool = False,
    optics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assess one file (runs on a worker). Never raises for a bad file. ``optics``: the
    instrument's (``na``, ``wavelength_nm``, ``pixel_size_um``) where the files do not
    record them (:func:`napari_focusqa.pipeline.image_airy_px`).

    Returns
    -------
    dict
        ``file``, ``rows`` (records; one error record when the file failed), ``error``
        (``None`` or a one-line message), ``error_kind`` and ``seconds``.
    """
    import logging

    t0 = time.perf_counter()
    # a corrupt file is reported in its row; keep tifffile's warnings off the console
    logging.getLogger("tifffile").setLevel(logging.ERROR)
    try:
        fm = worker_model(model_ref, threads)
        rows = _stack_rows(path, fm, optics) if zstack else _plane_rows(path, fm, optics)
        if not rows:
            raise FocusQAError(f"{path}: no planes to assess")
    except Exception as exc:  # a bad file (even a MemoryError) must not stop the batch
        res = error_rows(path, exc)
    else:
        plate = parse_plate_name(path)
        for r in rows:
            r["file"] = path
            for k, v in plate.items():
                r.setdefault(k, v)
        res = {"file": path, "rows": rows, "error": None, "error_kind": None}
    _WORKER_STATS["files"] += 1
    res["seconds"] = time.perf_counter() - t0
    return res


def assess_many(
    paths: list[str], model_ref: Any = None, threads: int | None = None, zstack: bool = False,
    optics: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """:func:`assess_one` for a few small files in one task (less per-task overhead)."""
    return [assess_one(p, model_ref, threads, zstack, optics) for p in paths]
