"""Stage safety on the real pymmcore-plus core API (UniMMCore + pure-Python devices).

Failures are injected in the simulated devices (camera raising on the k-th snap, stage
raising on a move, user cancel, moves outside the limits) and every test checks where
the stage really is afterwards through ``core.getPosition()``.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymmcore_plus.experimental.unicore import UniMMCore

from napari_focusqa.autofocus.calibrate import calibration_from_scores
from napari_focusqa.autofocus.safety import StageGuard, StageLimits, UnsafeMoveError
from napari_focusqa.autofocus.search import run_autofocus
from napari_focusqa.autofocus.simulated import SimulatedMicroscope
from napari_focusqa.core.errors import FocusQAError


def _stack(nz: int = 31, dz: float = 0.5, focus: int = 15, seed: int = 0) -> np.ndarray:
    """Textured object blurred by a Gaussian whose width grows with |z - focus|."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    obj = gaussian_filter(rng.random((96, 96)), 1.0)
    obj = (obj - obj.min()) / np.ptp(obj)
    planes = [gaussian_filter(obj, 0.3 + 0.9 * abs(k - focus) * dz) for k in range(nz)]
    return (np.stack(planes) * 3000 + 200).astype(np.uint16)


@pytest.fixture
def scope() -> SimulatedMicroscope:
    return SimulatedMicroscope(_stack(), 0.5, focus_index=15, offset_um=10.0, start_um=12.0,
                               photons=3000, seed=1)


@pytest.fixture(scope="module")
def calibration():
    m = SimulatedMicroscope(_stack(seed=5), 0.5, focus_index=15, photons=3000, seed=2)
    from napari_focusqa.autofocus.calibrate import calibrate_microscope
    from napari_focusqa.autofocus.search import default_limits

    return calibrate_microscope(m, StageGuard(m, default_limits(m)), z_from_um=0, z_to_um=15,
                                step_um=0.5, model=None)


def test_simulated_microscope_is_a_real_unimmcore(scope):
    core = scope.core
    assert isinstance(core, UniMMCore)
    assert core.getFocusDevice() == "Z" and core.getCameraDevice() == "Camera"
    core.setPosition(17.5)
    core.snapImage()
    img = core.getImage()
    assert img.shape == (96, 96) and img.dtype == np.uint16
    assert core.getPosition() == pytest.approx(17.5)
    # the in-focus plane (z = 10 + 15 * 0.5) is sharper than a defocused one
    from napari_focusqa.core.metrics import spatial_frequency

    sharp = float(spatial_frequency(scope.camera_device.plane_at(17.5)))
    blurry = float(spatial_frequency(scope.camera_device.plane_at(12.0)))
    assert sharp > 2 * blurry
    # the stage device itself refuses targets outside its travel, like a controller
    with pytest.raises(RuntimeError, match="outside its travel"):
        core.setPosition(40.0)


def test_limits_validate_their_parameters():
    with pytest.raises(UnsafeMoveError, match="z_min_um"):
        StageLimits(5, 1, 1)
    with pytest.raises(UnsafeMoveError, match="max_step_um"):
        StageLimits(0, 1, 0)
    with pytest.raises(UnsafeMoveError, match="z_max_um"):
        StageLimits(0, float("nan"), 1)


def test_guard_refuses_out_of_range_and_big_steps_without_moving(scope):
    guard = StageGuard(scope, StageLimits(11.0, 20.0, 2.0))
    with pytest.raises(UnsafeMoveError, match="outside the z limits"):
        guard.move_to(25.0)
    with pytest.raises(UnsafeMoveError, match="outside the z limits"):
        guard.travel_to(10.5)
    with pytest.raises(UnsafeMoveError, match="non-finite"):
        guard.move_to(float("nan"))
    with pytest.raises(UnsafeMoveError, match="max_step_um"):
        guard.move_to(16.0)
    assert scope.core.getPosition() == pytest.approx(12.0)
    assert guard.moves == 0
    guard.travel_to(17.0)  # 5 µm in moves of <= 2 µm
    assert scope.core.getPosition() == pytest.approx(17.0)
    assert guard.moves == 3 and guard.max_step_taken <= 2.0 + 1e-9
    assert guard.restore() is None
    assert scope.core.getPosition() == pytest.approx(12.0)


def test_run_refuses_to_start_outside_limits(scope, calibration):
    with pytest.raises(FocusQAError, match="start position"):
        run_autofocus(scope, "fewshot", calibration=calibration,
                      limits=StageLimits(13.0, 20.0, 5.0))
    assert scope.core.getPosition() == pytest.approx(12.0)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_camera_fault_on_kth_snap_returns_to_start(scope, calibration, k):
    scope.camera_device.fail_on_snap = k
    run = run_autofocus(scope, "fewshot", calibration=calibration)
    assert run.status == "failed"
    assert "simulated camera fault" in run.stop_reason
    assert run.images_used == k - 1
    assert run.info["returned_to_start"] is True
    assert scope.core.getPosition() == pytest.approx(12.0)
    assert run.final_z_um == pytest.approx(12.0)


def test_stage_fault_returns_to_start(scope, calibration):
    scope.stage_device.fail_on_move = 2
    run = run_autofocus(scope, "classic", calibration=calibration)
    assert run.status == "failed" and "simulated stage fault" in run.stop_reason
    assert scope.core.getPosition() == pytest.approx(12.0)


def test_cancel_mid_run_returns_to_start(scope, calibration):
    seen = []
    run = run_autofocus(scope, "classic", calibration=calibration,
                        cancel=lambda: len(seen) >= 2,
                        on_acquisition=lambda acq, img: seen.append(acq.z_um))
    assert run.status == "cancelled"
    assert run.images_used == 2
    assert any(abs(z - 12.0) > 0.1 for z in seen)  # it had moved away
    assert scope.core.getPosition() == pytest.approx(12.0)


def test_max_step_is_respected_during_a_run(scope, calibration):
    run = run_autofocus(scope, "fewshot", calibration=calibration,
                        limits=StageLimits(10.0, 25.0, 0.75))
    assert run.ok
    assert run.limits["max_step_taken_um"] <= 0.75 + 1e-9
    assert run.limits["moves"] >= 4
    assert abs(run.final_z_um - scope.true_focus_um) <= calibration.dof_um


def test_refused_planned_move_stops_and_returns(scope):
    # a calibration whose curve is centred far away makes the fit ask for a target the
    # user limits allow, but a stage fault afterwards must still bring it back; and an
    # explicit out-of-range final target is refused by the guard, not clamped
    z = np.linspace(-5, 5, 21)
    cal = calibration_from_scores(z, {"blur:sf": 1.0 - 0.5 / (1 + (z / 1.5) ** 2)})
    guard = StageGuard(scope, StageLimits(11.0, 14.0, 5.0))
    with pytest.raises(UnsafeMoveError):
        guard.travel_to(scope.true_focus_um)  # 17.5 is outside [11, 14]
    run = run_autofocus(scope, "fewshot", calibration=cal, limits=StageLimits(11.0, 14.0, 5.0))
    # the focus is outside the user's limits: the search stays inside them
    assert run.ok
    assert 11.0 <= run.final_z_um <= 14.0
    assert all(11.0 - 1e-9 <= a.z_um <= 14.0 + 1e-9 for a in run.acquisitions)
