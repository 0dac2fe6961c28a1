"""Shared state of one autofocus run (:class:`RunContext`): the guarded stage, the run
record and the per-image callback. Every search algorithm acquires through it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from napari_focusqa.autofocus.run import Acquisition, AutofocusRun
from napari_focusqa.autofocus.safety import StageGuard

AcquisitionCallback = Callable[[Acquisition, np.ndarray], None]
ImageScorer = Callable[[np.ndarray], tuple[float, dict[str, Any]]]


class RunContext:
    """Guard, run record and callback of one run; :meth:`acquire` = move, snap, score."""

    def __init__(self, guard: StageGuard, run: AutofocusRun,
                 on_acquisition: AcquisitionCallback | None) -> None:
        self.guard = guard
        self.run = run
        self.on_acquisition = on_acquisition
        self.t0 = time.perf_counter()

    def acquire(self, z: float | None, scorer: ImageScorer) -> tuple[Acquisition, np.ndarray]:
        """Travel to ``z`` (None: stay), snap, score; records the acquisition."""
        if z is not None:
            self.guard.travel_to(z)
        img = self.guard.snap()
        zr = self.guard.z
        score, stats = scorer(img)
        acq = Acquisition(index=len(self.run.acquisitions), z_um=zr, score=float(score),
                          stats=stats, t_s=time.perf_counter() - self.t0)
        self.run.acquisitions.append(acq)
        if self.on_acquisition is not None:
            self.on_acquisition(acq, img)
        return acq, img
