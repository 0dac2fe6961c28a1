"""A simulated sample for acquisitions: the simulated microscope's z-stack drifts axially
over time and sits at a different height at every XY position.

:func:`drifting_microscope` takes a
:class:`~napari_focusqa.autofocus.simulated.SimulatedMicroscope` (a ``UniMMCore`` whose
pure-Python camera replays a real z-stack at the focus stage's z) and adds

- a pure-Python XY stage (label ``"XY"``), so that ``MDASequence.stage_positions`` move it;
- a sample that moves ``drift_um`` along z every time point (from the time index of the
  event being set up) and is tilted by ``tilt_um_per_100um`` along x (each position has its
  own focus);
- a wider focus-stage travel (the stack's extent plus the total drift and tilt).

The camera then sees the stack plane at ``stage z - sample offset``; the true focus of a
frame is ``SimulatedMicroscope.true_focus_um + sample offset`` (evaluation only; never
read by autofocus or QC).
"""

from __future__ import annotations

from typing import Any

from pymmcore_plus.experimental.unicore import XYStageDevice


class SimXYStage(XYStageDevice):
    """Pure-Python XY stage without limits (positions in µm)."""

    def __init__(self) -> None:
        super().__init__()
        self._xy = (0.0, 0.0)

    def set_position_um(self, x: float, y: float) -> None:
        self._xy = (float(x), float(y))

    def get_position_um(self) -> tuple[float, float]:
        return self._xy

    def set_origin_x(self) -> None:
        raise RuntimeError("the simulated XY stage does not support set_origin")

    def set_origin_y(self) -> None:
        raise RuntimeError("the simulated XY stage does not support set_origin")

    def home(self) -> None:
        self._xy = (0.0, 0.0)

    def stop(self) -> None:
        pass


class DriftingSample:
    """Axial position of the simulated sample (µm above its position at t = 0, x = 0)."""

    def __init__(self, drift_um_per_t: float, tilt_um_per_100um: float, xy: SimXYStage,
                 stage: Any) -> None:
        self.drift_um_per_t = float(drift_um_per_t)
        self.tilt_um_per_100um = float(tilt_um_per_100um)
        self.xy = xy
        self.stage = stage
        self.t = 0

    def offset_um(self, t: int | None = None, x: float | None = None) -> float:
        t = self.t if t is None else t
        x = self.xy.get_position_um()[0] if x is None else x
        return self.drift_um_per_t * t + self.tilt_um_per_100um * x / 100.0

    def on_event(self, event: Any) -> None:
        """Engine hook: the sample has drifted to the event's time point."""
        self.t = int(event.index.get("t", 0))

    # the camera reads "the stage" through this: stage z in the sample's frame
    def get_position_um(self) -> float:
        return float(self.stage.get_position_um()) - self.offset_um()


def drifting_microscope(
    microscope: Any,
    *,
    drift_um_per_t: float = 0.0,
    timepoints: int = 1,
    tilt_um_per_100um: float = 0.0,
    positions_x_um: tuple[float, ...] = (0.0,),
) -> DriftingSample:
    """Make ``microscope`` (a SimulatedMicroscope) a drifting, tilted sample; returns the
    sample (pass ``sample.on_event`` to the engine's ``before_event`` hooks)."""
    core = microscope.core
    xy = SimXYStage()
    core.loadPyDevice("XY", xy)
    core.initializeDevice("XY")
    core.setXYStageDevice("XY")
    stage = microscope.stage_device
    sample = DriftingSample(drift_um_per_t, tilt_um_per_100um, xy, stage)
    microscope.camera_device.stage = sample
    offsets = [sample.offset_um(t, x) for t in (0, max(timepoints - 1, 0))
               for x in positions_x_um]
    lo, hi = stage.travel
    stage.travel = (lo + min(0.0, min(offsets)), hi + max(0.0, max(offsets)))
    return sample


class SimulatedSetup:
    """A drifting simulated microscope ready for :func:`run_acquisition`: the microscope,
    its sample, the stage limits (its travel), the positions' x and the truth."""

    def __init__(self, microscope: Any, sample: DriftingSample, limits: Any,
                 positions_x_um: tuple[float, ...]) -> None:
        self.microscope = microscope
        self.sample = sample
        self.limits = limits
        self.positions_x_um = positions_x_um
        self.base_focus_um = float(microscope.true_focus_um)

    def true_focus_um(self, t: int = 0, x: float = 0.0) -> float:
        return self.base_focus_um + self.sample.offset_um(t, x)

    def truth(self, event: Any) -> float:
        """True focus of an MDA event's frame (evaluation only)."""
        return self.true_focus_um(int(event.index.get("t", 0)), event.x_pos or 0.0)


def simulated_setup(
    microscope: Any,
    *,
    drift_um_per_t: float = 0.0,
    timepoints: int = 1,
    positions: int = 1,
    position_spacing_um: float = 100.0,
    tilt_um_per_100um: float = 0.5,
    max_step_um: float | None = None,
) -> SimulatedSetup:
    """Wrap a fresh SimulatedMicroscope (see :func:`drifting_microscope`)."""
    from napari_focusqa.autofocus.safety import StageLimits

    xs = tuple(float(i) * position_spacing_um for i in range(positions))
    sample = drifting_microscope(microscope, drift_um_per_t=drift_um_per_t,
                                 timepoints=timepoints, tilt_um_per_100um=tilt_um_per_100um,
                                 positions_x_um=xs)
    lo, hi = microscope.travel
    limits = StageLimits(lo, hi, max_step_um or (hi - lo))
    return SimulatedSetup(microscope, sample, limits, xs)
