"""Logging helpers shared by the front ends."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_logger(name: str, level: int = logging.CRITICAL) -> Iterator[None]:
    """Raise logger ``name``'s level for the duration of the block, then restore it.

    Used where a library logs warnings for conditions FocusQA reports itself (tifffile on
    damaged files, pymmcore-plus when no Micro-Manager installation exists).
    """
    log = logging.getLogger(name)
    old = log.level
    log.setLevel(level)
    try:
        yield
    finally:
        log.setLevel(old)
