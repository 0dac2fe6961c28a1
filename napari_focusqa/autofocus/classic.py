"""Classic baseline (Micro-Manager OughtaFocus-like): Brent's bounded minimisation of
``-SF`` (or another core metric) over ``start ± search range``."""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_focusqa.autofocus.context import RunContext
from napari_focusqa.autofocus.scoring import Scorer
from napari_focusqa.core.errors import FocusQAError


def classic(ctx: RunContext, *, dof: float | None, search_range_um: float | None,
             tolerance_um: float | None, max_images: int, metric: str) -> float:
    from scipy.optimize import minimize_scalar

    guard, run = ctx.guard, ctx.run
    lim = guard.limits
    scorer = Scorer("sf") if metric == "sf" else _MetricScorer(metric)
    run.score_name = scorer.name
    z0 = guard.start_z
    full = lim.z_max_um - lim.z_min_um
    if search_range_um is None:
        search_range_um = 12.0 * dof if dof else full
    lo, hi = lim.clip(z0 - search_range_um), lim.clip(z0 + search_range_um)
    if tolerance_um is None:
        tolerance_um = dof / 4.0 if dof else (hi - lo) / 100.0
    cache: dict[float, float] = {}

    def f(z: float) -> float:
        key = round(float(z), 9)
        if key not in cache:
            if len(run.acquisitions) >= max_images:
                raise _Budget()
            acq, _ = ctx.acquire(float(z), scorer)
            cache[key] = -acq.score
        return cache[key]

    try:
        res = minimize_scalar(f, bounds=(lo, hi), method="bounded",
                              options={"xatol": tolerance_um, "maxiter": max_images})
        best = float(res.x)
        run.stop_reason = "converged" if res.success else f"brent: {res.message}"
    except _Budget:
        run.stop_reason = "max_images"
        best = run.acquisitions[int(np.argmax(run.scores))].z_um
    run.info["search"] = {"lo_um": lo, "hi_um": hi, "tolerance_um": tolerance_um,
                          "metric": metric}
    return best


class _Budget(Exception):
    pass


class _MetricScorer:
    """Any core metric as a sharpness score (higher is sharper)."""

    def __init__(self, metric: str) -> None:
        from napari_focusqa.core.metrics import METRICS

        if metric not in METRICS:
            raise FocusQAError(f"metric: unknown metric {metric!r}; choose from {sorted(METRICS)}")
        self.metric = metric
        self.name = metric

    def __call__(self, img: np.ndarray) -> tuple[float, dict[str, Any]]:
        from napari_focusqa.autofocus.scoring import image_stats
        from napari_focusqa.core.metrics import compute

        st = image_stats(img)
        return float(compute(self.metric, np.asarray(img, dtype=np.float32))), st


