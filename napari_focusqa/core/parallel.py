"""Chunks of work spread over a few threads, each taking the next chunk when it is free.

Used to run model batches side by side on one-thread onnxruntime sessions: unlike one
session with an intra-op thread pool, whose threads meet at a barrier after every layer,
independent batches never wait for each other, so a thread that the OS deschedules (a
busy machine) delays only its own batch. Results are the same bit for bit: every patch
goes through the same network on one thread either way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def map_chunks(
    fn: Callable[[int, int], T], starts: Sequence[int], workers: int
) -> dict[int, T]:
    """``{start: fn(start, worker)}`` for every start, on ``workers`` threads.

    ``worker`` (0 … workers − 1) names the thread, so ``fn`` can use a per-thread resource
    (a session, a buffer). Chunks are handed out in order to whichever thread is free; after
    the first exception no new chunk starts and that exception is raised.
    """
    if workers < 2 or len(starts) < 2:
        return {s: fn(s, 0) for s in starts}
    it = iter(starts)
    lock = threading.Lock()
    failed = threading.Event()

    def loop(worker: int) -> dict[int, Any]:
        got: dict[int, Any] = {}
        while not failed.is_set():
            with lock:
                start = next(it, None)
            if start is None:
                break
            try:
                got[start] = fn(start, worker)
            except BaseException:
                failed.set()
                raise
        return got

    n = min(workers, len(starts))
    out: dict[int, T] = {}
    with ThreadPoolExecutor(max_workers=n) as pool:
        for part in pool.map(loop, range(n)):
            out.update(part)
    return out
