"""Guard restore on a quantised stage, calibration identity, non-finite predictions,
twoshot optics refusal, and corrupt distance models (issues 11 and 13)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import require_shared
from test_autofocus_safety import _stack  # the same textured Gaussian-blur stack

from napari_focusqa.autofocus.calibrate import (
    Calibration,
    CalibrationError,
    calibrate_microscope,
)
from napari_focusqa.autofocus.distance import find_distance_model
from napari_focusqa.autofocus.safety import StageGuard, StageLimits
from napari_focusqa.autofocus.search import default_limits, run_autofocus
from napari_focusqa.autofocus.simulated import SimulatedMicroscope
from napari_focusqa.cli import main
from napari_focusqa.core.errors import FocusQAError, ModelCardError


@pytest.fixture(scope="module")
def calibration() -> Calibration:
    m = SimulatedMicroscope(_stack(seed=5), 0.5, focus_index=15, photons=3000, seed=2)
    return calibrate_microscope(m, StageGuard(m, default_limits(m)), z_from_um=0, z_to_um=15,
                                step_um=0.5, model=None, distance_model=None)


def _joystick(m: SimulatedMicroscope, z: float) -> None:
    """Put the stage where a manual move left it: off the controller's step grid."""
    m.stage_device._z = z


def test_restore_on_a_quantised_stage_stops_within_its_precision():
    m = SimulatedMicroscope(_stack(), 0.5, z_quantum_um=0.1, seed=1)
    _joystick(m, 7.07)
    guard = StageGuard(m, StageLimits(0.0, 15.0, 1.0))
    assert guard.tolerance_um == pytest.approx(0.1)  # from the device
    guard.travel_to(10.0)
    moves_before = m.stage_device.n_moves
    assert guard.restore() is None
    assert m.stage_device.n_moves - moves_before <= 3 + 3
    assert guard.restore_residual_um == pytest.approx(0.03, abs=1e-9)
    assert m.core.getPosition() == pytest.approx(7.1)


def test_restore_is_bounded_and_reports_the_residual_when_it_cannot_get_there():
    m = SimulatedMicroscope(_stack(), 0.5, z_quantum_um=0.1, seed=1)
    _joystick(m, 7.07)
    guard = StageGuard(m, StageLimits(0.0, 15.0, 1.0), tolerance_um=0.001)
    guard.travel_to(12.0)
    n0 = m.stage_device.n_moves
    err = guard.restore()
    assert err is not None and "0.03 µm from the start" in err
    assert m.stage_device.n_moves - n0 <= 5 + 3  # ceil(4.93 / 1.0) + 3, not 100000
    assert guard.restore_residual_um == pytest.approx(0.03, abs=1e-9)


def test_faulted_run_on_quantised_stage_reports_restore_residual(calibration):
    m = SimulatedMicroscope(_stack(), 0.5, focus_index=15, z_quantum_um=0.1, seed=3,
                            photons=3000)
    _joystick(m, 11.04)
    m.camera_device.fail_on_snap = 2
    run = run_autofocus(m, "fewshot", calibration=calibration)
    assert run.status == "failed" and run.info["returned_to_start"]
    assert run.info["restore"]["residual_um"] == pytest.approx(0.04, abs=1e-9)
    assert run.info["restore"]["residual_um"] <= run.info["restore"]["tolerance_um"]


def test_calibration_from_another_instrument_or_channel_is_refused(calibration):
    other = SimulatedMicroscope(_stack(), 0.5, name="another rig", seed=1)
    with pytest.raises(CalibrationError, match="another instrument or channel.*name"):
        run_autofocus(other, "fewshot", calibration=calibration)
    same = SimulatedMicroscope(_stack(), 0.5, seed=1)
    same.channel = 2
    cal = Calibration.from_dict(dict(calibration.to_dict(),
                                     instrument=dict(calibration.instrument, channel=0)))
    with pytest.raises(CalibrationError, match="channel: 0 vs 2"):
        run_autofocus(same, "singleshot", calibration=cal)
    assert same.stage_device.n_moves == 0


def test_edited_single_shot_head_fails_its_sha256(calibration, tmp_path):
    d = json.loads(json.dumps(calibration.to_dict()))
    assert len(d["singleshot"]["sha256"]) == 64
    Calibration.from_dict(d)  # intact: loads
    d["singleshot"]["sign_coef"][1] += 0.5
    with pytest.raises(FocusQAError, match="sha256 mismatch"):
        Calibration.from_dict(d)


@pytest.mark.parametrize("method", ["singleshot", "twoshot"])
def test_non_finite_prediction_never_moves_the_stage(calibration, method):
    st = _stack().astype(np.float32)
    st[:, 10:20, 10:20] = np.nan  # a camera that returns NaNs
    m = SimulatedMicroscope(st, 0.5, focus_index=15, photons=None, seed=1, pixel_size_um=0.2)
    from napari_focusqa.autofocus.optics import Optics

    optics = Optics(na=0.8, wavelength_nm=520, immersion_n=1.0, pixel_size_um=0.2)
    start = m.get_z()
    run = run_autofocus(m, method, calibration=calibration, optics=optics)
    assert run.status == "failed"
    assert m.stage_device.n_moves == 0 and m.core.getPosition() == start


def test_twoshot_missing_optics_exit_2_naming_the_field(capsys):
    dfnn = str(require_shared("dfnn_lightsheet_mito_defocus_zstack.tif"))  # no NA recorded
    assert main(["autofocus", "--stack", dfnn, "--method", "twoshot"]) == 2
    assert "na:" in capsys.readouterr().err
    assert main(["autofocus", "--stack", dfnn, "--method", "twoshot", "--na", "1.0",
                 "--immersion-n", "1.33", "--pixel-size-um", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "wavelength_nm" in err and "--wavelength-nm" in err
    assert len(err.strip().splitlines()) == 1


def test_corrupt_distance_model_is_reported_not_missing(tmp_path, monkeypatch):
    from napari_focusqa.core.model import models_dirs

    src = next(d for d in models_dirs() if (d / "fqa-distance.json").is_file())
    shutil.copy(src / "fqa-distance.json", tmp_path / "fqa-distance.json")
    (tmp_path / "fqa-distance.onnx").write_bytes(b"not the model")
    monkeypatch.setenv("FOCUSQA_MODELS_DIR", str(tmp_path))
    with pytest.raises(ModelCardError, match="installed but unusable.*sha256 mismatch"):
        find_distance_model("auto")
    (tmp_path / "fqa-distance.json").write_text("{broken")
    with pytest.raises(ModelCardError, match="installed but unusable"):
        find_distance_model("auto")
