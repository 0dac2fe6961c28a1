"""``focusqa batch``: argparse and the command (``register(subparsers)``)."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from napari_focusqa._args import add_optics_args, optics_from_args
from napari_focusqa.batch.resume import MAX_ATTEMPTS
from napari_focusqa.batch.runner import SIGNAL_STATE, run_batch


def _sigterm_to_interrupt(signum: int, frame: Any) -> None:
    """SIGTERM -> KeyboardInterrupt (clean stop), deferred while the cluster starts."""
    if SIGNAL_STATE.get("starting"):
        SIGNAL_STATE["requested"] = True
        return
    raise KeyboardInterrupt


def cmd_batch(args: argparse.Namespace) -> int:
    from napari_focusqa.pipeline import resolve_model

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    summary = run_batch(
        args.inputs,
        args.out,
        model=resolve_model(args.model),  # default model / 'none' / id / card
        workers=args.workers,
        scheduler=args.scheduler,
        zstack=args.zstack,
        resume=args.resume,
        overwrite=args.overwrite,
        retry_failed=args.retry_failed,
        max_attempts=args.max_attempts,
        progress=not args.no_progress,
        optics=optics_from_args(args),
    )
    return summary.exit_code


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return n


def register(subparsers: Any) -> None:
    """Add ``focusqa batch`` to the CLI."""
    b = subparsers.add_parser(
        "batch",
        help="assess folders / plates of images into one CSV or parquet table (dask)",
        description=(
            "Assess every image in INPUT (files, folders, glob patterns) and write one row per "
            "plane (or per channel with --zstack). Exit code 0: all files assessed; 3: some "
            "files failed (rows with an 'error'); 2: bad arguments, an output that cannot be "
            "resumed, or an output that cannot be written."
        ),
    )
    b.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders or glob patterns")
    b.add_argument("--out", required=True, metavar="FILE",
                   help="results .csv, or .parquet (a folder of part files)")
    g = b.add_mutually_exclusive_group()
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local dask worker processes (0 = serial in this process; "
                        "default: one per CPU core)")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running dask scheduler, e.g. tcp://10.0.0.1:8786")
    b.add_argument("--model", default=None, help="model id or card path ('none' = SF only)")
    add_optics_args(b)
    b.add_argument("--zstack", action="store_true",
                   help="one row per channel of each z-stack (best-focus slice)")
    b.add_argument("--resume", action="store_true",
                   help="continue --out: skip finished files, retry transient failures; "
                        "refused if --out was written with another model or mode")
    b.add_argument("--retry-failed", action="store_true",
                   help="with --resume: re-run every failed file, permanent errors too")
    b.add_argument("--max-attempts", type=_positive, default=MAX_ATTEMPTS, metavar="N",
                   help=f"with --resume: retry a transient failure (out of memory, worker "
                        f"lost) until a file has had N attempts (default {MAX_ATTEMPTS})")
    b.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(func=cmd_batch)
