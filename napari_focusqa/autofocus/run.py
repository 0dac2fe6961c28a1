"""The result of one autofocus run (:class:`AutofocusRun`) and its acquisitions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: values of :attr:`AutofocusRun.status`
STATUSES = ("ok", "cancelled", "refused", "failed")


@dataclass
class Acquisition:
    """One image taken during a run.

    Attributes
    ----------
    index : int
        0-based order of the image within the run.
    z_um : float
        Stage position at which the image was snapped (as read back from the stage).
    score : float
        The value the algorithm used (see :attr:`AutofocusRun.score_name`).
    stats : dict
        Image statistics (``mean``, ``max``, ``sf``) and algorithm extras (e.g. the
        distance model's ``distance_dof`` and ``confidence``).
    t_s : float
        Seconds since the start of the run.
    """

    index: int
    z_um: float
    score: float
    stats: dict[str, Any] = field(default_factory=dict)
    t_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "z_um": round(float(self.z_um), 6),
            "score": None if not np.isfinite(self.score) else round(float(self.score), 6),
            "t_s": round(float(self.t_s), 4),
            **{k: _plain(v) for k, v in self.stats.items()},
        }


def _plain(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        return round(float(v), 6) if np.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


@dataclass
class AutofocusRun:
    """Everything about one autofocus run.

    Attributes
    ----------
    method : str
        ``"fewshot"``, ``"singleshot"`` or ``"classic"`` (``method_used`` says what
        actually ran, e.g. ``"fewshot"`` after a single-shot fallback).
    start_z_um : float
        Stage position before the run (where the stage returns on a fault or cancel).
    chosen_z_um : float or None
        The in-focus position the algorithm chose (None when it did not finish).
    final_z_um : float or None
        Where the stage actually is after the run.
    acquisitions : list of Acquisition
        Every image taken, in order.
    status : str
        One of :data:`STATUSES`.
    stop_reason : str
        Human-readable reason the run ended ("converged", "max_images", the error, ...).
    score_name : str
        What ``Acquisition.score`` means ("sf": higher is sharper; "blur:sf" or
        "blur:<model id>": lower is sharper; "distance:<model id>": signed DoF).
    dof_um : float or None
        The depth of field used for tolerances, and its source in ``info``.
    limits : dict
        The safety limits in force (``z_min_um``, ``z_max_um``, ``max_step_um``) and
        ``moves``: the number of guarded moves, ``max_step_taken_um``.
    info : dict
        Algorithm details (fit results, fallbacks, calibration summary, simulation truth).
    """

    method: str
    start_z_um: float
    chosen_z_um: float | None = None
    final_z_um: float | None = None
    acquisitions: list[Acquisition] = field(default_factory=list)
    status: str = "ok"
    stop_reason: str = ""
    score_name: str = ""
    method_used: str = ""
    dof_um: float | None = None
    elapsed_s: float = 0.0
    limits: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def images_used(self) -> int:
        return len(self.acquisitions)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def z_values(self) -> np.ndarray:
        return np.array([a.z_um for a in self.acquisitions], dtype=np.float64)

    @property
    def scores(self) -> np.ndarray:
        return np.array([a.score for a in self.acquisitions], dtype=np.float64)

    def wrong_direction_moves(self, true_focus_um: float) -> int:
        """Number of moves between acquisitions that went *away* from ``true_focus_um``
        by more than 1 % of the distance (evaluation helper for simulations/benchmarks)."""
        zs = [self.start_z_um] + [a.z_um for a in self.acquisitions]
        if self.final_z_um is not None:
            zs.append(self.final_z_um)
        n = 0
        for a, b in zip(zs[:-1], zs[1:]):
            da, db = abs(a - true_focus_um), abs(b - true_focus_um)
            if db > da + 0.01 * max(da, 1e-9) and abs(b - a) > 1e-9 and da > 0:
                n += 1
        return n

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (the CLI's ``--json`` output)."""
        return {
            "method": self.method,
            "method_used": self.method_used or self.method,
            "status": self.status,
            "stop_reason": self.stop_reason,
            "start_z_um": round(float(self.start_z_um), 6),
            "chosen_z_um": None if self.chosen_z_um is None else round(float(self.chosen_z_um), 6),
            "final_z_um": None if self.final_z_um is None else round(float(self.final_z_um), 6),
            "images_used": self.images_used,
            "elapsed_s": round(float(self.elapsed_s), 4),
            "score_name": self.score_name,
            "dof_um": None if self.dof_um is None else round(float(self.dof_um), 6),
            "limits": _plain(self.limits),
            "acquisitions": [a.to_dict() for a in self.acquisitions],
            "info": _plain(self.info),
        }

    def summary(self) -> str:
        """One line for logs and the widget's status label."""
        chosen = "-" if self.chosen_z_um is None else f"{self.chosen_z_um:.3f} µm"
        return (f"{self.method_used or self.method}: {self.status} ({self.stop_reason}); "
                f"chosen z {chosen}, {self.images_used} images, {self.elapsed_s:.2f} s")
