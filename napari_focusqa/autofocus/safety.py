"""Stage safety: every move of an autofocus run goes through :class:`StageGuard`.

Rules (real hardware!):

- a target must be finite and inside the user's ``[z_min_um, z_max_um]``; otherwise the
  move is **refused** with :class:`UnsafeMoveError` naming the limit (never clamped);
- one move may not exceed ``max_step_um``; :meth:`StageGuard.move_to` refuses larger
  moves, :meth:`StageGuard.travel_to` splits them into explicit moves of at most
  ``max_step_um`` (each one checked);
- the cancel callback is checked before every move and every snap;
- :meth:`StageGuard.restore` brings the stage back to where the run started (in steps of
  at most ``max_step_um``) until it is within the stage's precision (``tolerance_um``:
  given to the guard, else the microscope's ``z_precision_um``, else 1 nm), in a bounded
  number of moves (the moves needed plus 3; it also stops when a move makes no
  progress, e.g. a quantised stage) and reports the residual (``restore_residual_um``);
  :func:`napari_focusqa.autofocus.search.run_autofocus` calls it on every fault
  (snap/move error, refused move) and on cancel.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_focusqa.core.errors import Cancelled, FocusQAError

#: restore tolerance when neither the guard nor the microscope gives one (1 nm)
DEFAULT_TOLERANCE_UM = 1e-3


class UnsafeMoveError(FocusQAError):
    """A stage move was refused by the safety limits (nothing moved)."""


class HardwareError(RuntimeError):
    """The microscope failed to snap or move (wraps the device's own exception)."""


@dataclass(frozen=True)
class StageLimits:
    """User-set focus-stage limits (µm).

    Parameters
    ----------
    z_min_um, z_max_um : float
        Allowed range of stage positions (inclusive).
    max_step_um : float
        Largest single move allowed.
    """

    z_min_um: float
    z_max_um: float
    max_step_um: float

    def __post_init__(self) -> None:
        for name in ("z_min_um", "z_max_um", "max_step_um"):
            v = getattr(self, name)
            if not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v):
                raise UnsafeMoveError(f"{name}: expected a finite number of µm, got {v!r}")
        if self.z_min_um >= self.z_max_um:
            raise UnsafeMoveError(
                f"z_min_um/z_max_um: z_min_um ({self.z_min_um}) must be below z_max_um "
                f"({self.z_max_um})"
            )
        if self.max_step_um <= 0:
            raise UnsafeMoveError(f"max_step_um: must be > 0, got {self.max_step_um}")

    def contains(self, z: float) -> bool:
        return self.z_min_um - 1e-9 <= z <= self.z_max_um + 1e-9

    def clip(self, z: float) -> float:
        """Clip a *proposal* into the limits (algorithms use this to plan; the guard
        itself never clips)."""
        return float(min(max(z, self.z_min_um), self.z_max_um))

    def to_dict(self) -> dict[str, float]:
        return {"z_min_um": float(self.z_min_um), "z_max_um": float(self.z_max_um),
                "max_step_um": float(self.max_step_um)}


class StageGuard:
    """The one guarded path to the focus stage and camera during a run.

    Parameters
    ----------
    microscope : Microscope
        Anything with ``get_z()``, ``set_z(z)`` and ``snap()``.
    limits : StageLimits
    cancel : callable, optional
        Returns True when the run should stop; checked before every move and snap.
    on_event : callable, optional
        ``on_event(kind, payload)`` for progress ("move", "snap").
    tolerance_um : float, optional
        How close :meth:`restore` must get to the start; default: the microscope's
        ``z_precision_um`` when it has one, else :data:`DEFAULT_TOLERANCE_UM`.

    Raises
    ------
    UnsafeMoveError
        When the stage is already outside the limits at the start.
    """

    def __init__(
        self,
        microscope: Any,
        limits: StageLimits,
        *,
        cancel: Callable[[], bool] | None = None,
        on_event: Callable[[str, Any], None] | None = None,
        tolerance_um: float | None = None,
    ) -> None:
        self.microscope = microscope
        tol = tolerance_um if tolerance_um is not None else getattr(
            microscope, "z_precision_um", None)
        tol = DEFAULT_TOLERANCE_UM if tol is None else float(tol)
        if not math.isfinite(tol) or tol < 0:
            raise UnsafeMoveError(f"tolerance_um: expected a finite number >= 0, got {tol}")
        self.tolerance_um = max(tol, 1e-9)
        self.restore_residual_um: float | None = None
        self.restore_moves = 0
        self.limits = limits
        self.cancel = cancel
        self.on_event = on_event
        self.start_z = float(self._read_z())
        if not limits.contains(self.start_z):
            raise UnsafeMoveError(
                f"start position: stage is at {self.start_z:.3f} µm, outside the z limits "
                f"[{limits.z_min_um}, {limits.z_max_um}] µm; move it inside first"
            )
        self.moves = 0
        self.max_step_taken = 0.0
        self.t0 = time.perf_counter()

    # --- reads -----------------------------------------------------------------------
    def _read_z(self) -> float:
        try:
            return float(self.microscope.get_z())
        except Exception as exc:
            raise HardwareError(f"reading the focus position failed: {exc}") from exc

    @property
    def z(self) -> float:
        return self._read_z()

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("autofocus cancelled")

    # --- moves -----------------------------------------------------------------------
    def check_target(self, z: float) -> float:
        """Validate a target position; returns it as float or raises UnsafeMoveError."""
        try:
            zf = float(z)
        except (TypeError, ValueError):
            raise UnsafeMoveError(f"target z: expected a number of µm, got {z!r}") from None
        if not math.isfinite(zf):
            raise UnsafeMoveError(f"target z: refusing a non-finite position ({zf})")
        lim = self.limits
        if not lim.contains(zf):
            raise UnsafeMoveError(
                f"target z: {zf:.3f} µm is outside the z limits [{lim.z_min_um}, "
                f"{lim.z_max_um}] µm; refused (the stage did not move)"
            )
        return zf

    def move_to(self, z: float) -> float:
        """One guarded move; refuses targets outside the limits or steps > max_step_um."""
        zf = self.check_target(z)
        cur = self._read_z()
        step = abs(zf - cur)
        if step > self.limits.max_step_um + 1e-9:
            raise UnsafeMoveError(
                f"max_step_um: move {cur:.3f} -> {zf:.3f} µm is {step:.3f} µm, above the "
                f"maximum step of {self.limits.max_step_um} µm; refused"
            )
        self._check_cancel()
        self._set(zf)
        self.max_step_taken = max(self.max_step_taken, step)
        return zf

    def travel_to(self, z: float) -> float:
        """Move to ``z`` in explicit guarded moves of at most ``max_step_um`` each."""
        zf = self.check_target(z)
        while True:
            cur = self._read_z()
            d = zf - cur
            if abs(d) <= self.limits.max_step_um + 1e-9:
                if abs(d) > 0:
                    self.move_to(zf)
                return zf
            self.move_to(cur + math.copysign(self.limits.max_step_um, d))

    def _set(self, z: float) -> None:
        try:
            self.microscope.set_z(z)
        except Exception as exc:
            raise HardwareError(f"moving the focus stage to {z:.3f} µm failed: {exc}") from exc
        self.moves += 1
        if self.on_event is not None:
            self.on_event("move", z)

    # --- snaps -----------------------------------------------------------------------
    def snap(self) -> np.ndarray:
        self._check_cancel()
        try:
            img = np.asarray(self.microscope.snap())
        except Exception as exc:
            raise HardwareError(f"snapping an image failed: {exc}") from exc
        if img.ndim != 2 or img.size == 0:
            raise HardwareError(f"camera returned an image of shape {img.shape}, expected 2D")
        return img

    # --- recovery ----------------------------------------------------------------------
    def restore(self) -> str | None:
        """Return to the start position (no cancel check) within ``tolerance_um``.

        At most ``ceil(distance / max_step) + 3`` moves; stops early when a move makes no
        progress. Sets ``restore_residual_um`` (final ``|z - start|``) and
        ``restore_moves``. Returns an error text (naming the residual) or None.
        """
        zf = self.start_z
        self.restore_moves = 0
        try:
            cur = self._read_z()
            budget = int(math.ceil(abs(zf - cur) / self.limits.max_step_um)) + 3
            while abs(zf - cur) > self.tolerance_um and self.restore_moves < budget:
                d = zf - cur
                step = d if abs(d) <= self.limits.max_step_um else math.copysign(
                    self.limits.max_step_um, d)
                # a restore target is always inside the limits (the start was checked)
                self._set(self.limits.clip(cur + step))
                self.restore_moves += 1
                new = self._read_z()
                if abs(zf - new) >= abs(zf - cur) - 1e-12:  # no progress (quantised stage)
                    cur = new
                    break
                cur = new
            self.restore_residual_um = abs(zf - cur)
            if self.restore_residual_um > self.tolerance_um:
                return (f"restore: stopped {self.restore_residual_um:.4g} µm from the start "
                        f"(tolerance {self.tolerance_um:.4g} µm) after "
                        f"{self.restore_moves} moves")
            return None
        except Exception as exc:  # report, never raise from recovery
            return f"returning to the start position failed: {exc}"

    def summary(self) -> dict[str, Any]:
        d: dict[str, Any] = self.limits.to_dict()
        d.update(moves=self.moves, max_step_taken_um=round(self.max_step_taken, 6))
        return d
