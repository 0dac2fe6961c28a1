"""FocusQA inside pymmcore-plus MDA sequences: real useq MDASequences run by pymmcore-plus'
runner on a UniMMCore with the pure-Python z-stack camera/stage replaying a real stack."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pymmcore_plus")
useq = pytest.importorskip("useq")

from napari_focusqa.acquire.qc import read_frames  # noqa: E402
from napari_focusqa.acquire.session import build_sequence, run_acquisition  # noqa: E402
from napari_focusqa.acquire.sim import simulated_setup  # noqa: E402
from napari_focusqa.autofocus.calibrate import calibrate_microscope  # noqa: E402
from napari_focusqa.autofocus.safety import StageGuard  # noqa: E402
from napari_focusqa.autofocus.simulated import SimulatedMicroscope  # noqa: E402
from tests.conftest import require_shared  # noqa: E402

STACK = "deconwolf_dapi_widefield_zstack.tif"  # documented focus: plane 19 (0.3 µm steps)
FOCUS = 19


def _sim(seed=1, **kw):
    m = SimulatedMicroscope.from_file(require_shared(STACK), focus_index=FOCUS, seed=seed)
    return simulated_setup(m, **kw)


@pytest.fixture(scope="module")
def cal():
    m = SimulatedMicroscope.from_file(require_shared(STACK), focus_index=FOCUS, seed=99)
    lo, hi = m.travel
    s = simulated_setup(m)
    return calibrate_microscope(m, StageGuard(m, s.limits), z_from_um=lo, z_to_um=hi,
                                step_um=m.z_step_um, model="auto")


def _run(setup, seq, tmp_path, **kw):
    StageGuard(setup.microscope, setup.limits).travel_to(setup.base_focus_um)
    kw.setdefault("model", "fqa-levels")
    return run_acquisition(setup.microscope, seq, limits=setup.limits,
                           table=tmp_path / "frames.csv", truth=setup.truth,
                           before_event=[setup.sample.on_event], **kw)


def test_autofocus_holds_drift_per_position(cal, tmp_path):
    T, P, D = 6, 2, 0.5
    s = _sim(drift_um_per_t=D, timepoints=T, positions=P, tilt_um_per_100um=1.0)
    seq = build_sequence(timepoints=T, interval_s=0, positions=P, z_um=s.base_focus_um,
                         autofocus=True)
    res = _run(s, seq, tmp_path, method="fewshot", calibration=cal)
    assert res.finish == "completed" and not res.faults
    assert len(res.frames) == T * P and len(res.autofocus_events) == T * P
    errs = np.array([f["focus_error_um"] for f in res.frames])
    assert np.all(np.abs(errs) <= 1.0), errs
    # the correction follows each position's own focus (tilt: 1 µm between p0 and p1)
    last = {a.p: a.correction_um for a in res.autofocus_events if a.t == T - 1}
    assert last[1] - last[0] == pytest.approx(1.0, abs=0.8)
    assert last[0] == pytest.approx(D * (T - 1), abs=1.0)
    for f in res.frames:
        assert f["verdict"] in ("in_focus", "out_of_focus", "no_structure")
        assert f["autofocus"]["status"] == "ok" and 1 <= f["af_images"] <= 8
        assert f["expected_level"] is not None and 0 <= f["certainty"] <= 1
    # the incrementally written table holds the same rows
    rows = read_frames(tmp_path / "frames.csv")
    assert [r["frame"] for r in rows] == [f["frame"] for f in res.frames]


def test_without_autofocus_the_sample_drifts_out(tmp_path):
    T, D = 6, 0.5
    s = _sim(drift_um_per_t=D, timepoints=T)
    seq = build_sequence(timepoints=T, interval_s=0, positions=1, z_um=s.base_focus_um,
                         autofocus=False)
    res = _run(s, seq, tmp_path, method="none")
    errs = [abs(f["focus_error_um"]) for f in res.frames]
    assert errs == pytest.approx([D * t for t in range(T)], abs=1e-3)
    assert not res.autofocus_events


def test_z_stack_uses_the_position_correction(cal, tmp_path):
    s = _sim(drift_um_per_t=1.2, timepoints=2)
    seq = useq.MDASequence(
        stage_positions=[useq.Position(x=0, y=0, z=s.base_focus_um)],
        time_plan=useq.TIntervalLoops(interval=0, loops=2),
        z_plan=useq.ZRangeAround(range=1.2, step=0.6),
        autofocus_plan=useq.AxesBasedAF(axes=("t",)), axis_order="tpgcz")
    res = _run(s, seq, tmp_path, method="fewshot", calibration=cal)
    assert len(res.frames) == 6
    for f in res.frames:
        offset = (f["z"] - 1) * 0.6
        assert f["z_um"] == pytest.approx(s.base_focus_um + offset + f["z_correction_um"],
                                          abs=1e-6)
    t1 = [f for f in res.frames if f["t"] == 1]
    assert t1[0]["z_correction_um"] == pytest.approx(1.2, abs=0.8)
    assert abs(t1[1]["focus_error_um"]) < 1.0  # the middle plane is at the new focus


def test_failed_autofocus_goes_on_at_last_good_z(cal, tmp_path):
    T = 4
    s = _sim(drift_um_per_t=0.3, timepoints=T)
    seq = build_sequence(timepoints=T, interval_s=0, positions=1, z_um=s.base_focus_um,
                         autofocus=True)
    cam = s.microscope.camera_device
    seen: list[int] = []

    def fail_second_af(ev):  # camera fault at the first image of the autofocus at t = 2
        if isinstance(ev.action, useq.HardwareAutofocus) and ev.index.get("t") == 2:
            cam.fail_on_snap = cam.n_snaps + 1
            seen.append(cam.fail_on_snap)

    StageGuard(s.microscope, s.limits).travel_to(s.base_focus_um)
    res = run_acquisition(s.microscope, seq, limits=s.limits, method="fewshot",
                          calibration=cal, model="fqa-levels", table=tmp_path / "f.csv",
                          truth=s.truth, before_event=[s.sample.on_event, fail_second_af])
    assert seen and res.finish == "completed" and len(res.frames) == T
    af = {a.t: a for a in res.autofocus_events}
    assert af[2].status == "failed" and "snap" in af[2].stop_reason
    assert all(af[t].status == "ok" for t in (0, 1, 3))
    fr = {f["t"]: f for f in res.frames}
    # t = 2 stayed at the correction of t = 1 (last good z), t = 3 corrected again
    assert fr[2]["z_correction_um"] == pytest.approx(fr[1]["z_correction_um"])
    assert fr[2]["z_um"] == pytest.approx(fr[1]["z_um"])
    assert fr[2]["autofocus"]["status"] == "failed"
    assert abs(fr[3]["focus_error_um"]) < 1.0
    assert all(s.limits.contains(f["z_um"]) for f in res.frames)


def test_camera_fault_is_recorded_and_the_sequence_goes_on(tmp_path):
    T = 5
    s = _sim(timepoints=T)
    s.microscope.camera_device.fail_on_snap = 3
    seq = build_sequence(timepoints=T, interval_s=0, positions=1, z_um=s.base_focus_um,
                         autofocus=False)
    res = _run(s, seq, tmp_path, method="none")
    assert res.finish == "completed"
    assert len(res.frames) == T  # the faulted event has a row too: no row lost
    bad = [f for f in res.frames if f["fault"]]
    assert len(bad) == 1 and bad[0]["t"] == 2 and "camera" in bad[0]["fault"]
    assert bad[0]["verdict"] is None
    rows = read_frames(tmp_path / "frames.csv")
    assert len(rows) == T and sum(bool(r["fault"]) for r in rows) == 1


def test_stage_fault_stops_cleanly_at_the_start_z(cal, tmp_path):
    T = 6
    s = _sim(drift_um_per_t=0.3, timepoints=T)
    stage = s.microscope.stage_device
    seq = build_sequence(timepoints=T, interval_s=0, positions=1, z_um=s.base_focus_um,
                         autofocus=True)
    StageGuard(s.microscope, s.limits).travel_to(s.base_focus_um)
    start = stage.get_position_um()
    stage.fail_on_move = stage.n_moves + 12  # inside the sequence (AF moves included)
    res = run_acquisition(s.microscope, seq, limits=s.limits, method="fewshot",
                          calibration=cal, model="fqa-levels", table=tmp_path / "f.csv",
                          truth=s.truth, on_fault="stop", before_event=[s.sample.on_event])
    assert res.finish == "stopped after a fault"
    assert res.faults and res.faults[0]["kind"] == "stage"
    assert res.info["returned_to_start"] is True
    assert stage.get_position_um() == pytest.approx(start)
    assert 0 < len(res.frames) < T + 1
    rows = read_frames(tmp_path / "f.csv")
    assert len(rows) == len(res.frames)


def test_cancel_keeps_every_row_written(tmp_path):
    T = 30
    s = _sim(timepoints=T)
    seq = build_sequence(timepoints=T, interval_s=0.05, positions=1, z_um=s.base_focus_um,
                         autofocus=False)
    core = s.microscope.core

    def stop_after_3(row, res, img):
        if row["frame"] == 2:
            core.mda.cancel()

    res = _run(s, seq, tmp_path, method="none", on_frame=stop_after_3)
    assert res.finish == "cancelled"
    assert 3 <= len(res.frames) < T
    rows = read_frames(tmp_path / "frames.csv")
    assert [r["frame"] for r in rows] == list(range(len(res.frames)))


def test_own_autofocus_is_refused_while_a_sequence_runs(cal, tmp_path):
    from napari_focusqa.autofocus import run_autofocus
    from napari_focusqa.autofocus.microscope import MMCoreMicroscope
    from napari_focusqa.core.errors import FocusQAError

    T = 4
    s = _sim(timepoints=T)
    core = s.microscope.core
    other = MMCoreMicroscope(core, name=s.microscope.name)  # e.g. a widget's
    seen: dict[str, object] = {}

    def try_own_af(row, res, img):  # runs on the QC thread while the MDA thread acquires
        if row["frame"] == 0:
            z = other.get_z()
            run = run_autofocus(other, "fewshot", calibration=cal, limits=s.limits)
            seen.update(status=run.status, reason=run.stop_reason, moved=other.get_z() - z,
                        running=core.mda.is_running())
            try:
                run_acquisition(s.microscope, seq, limits=s.limits, method="none")
            except FocusQAError as exc:
                seen["second"] = str(exc)

    seq = build_sequence(timepoints=T, interval_s=0.2, positions=1, z_um=s.base_focus_um,
                         autofocus=False)
    res = _run(s, seq, tmp_path, method="none", on_frame=try_own_af)
    assert res.finish == "completed" and len(res.frames) == T
    assert seen["running"] is True
    assert seen["status"] != "ok" and "refused" in str(seen["reason"])
    assert seen["moved"] == 0
    assert "another MDA sequence is running" in str(seen["second"])
    # once the sequence is over, the same call works
    assert run_autofocus(other, "fewshot", calibration=cal, limits=s.limits).ok


def test_qc_flag_triggers_one_bounded_refocus(cal, tmp_path):
    T = 8
    s = _sim(drift_um_per_t=1.0, timepoints=T)
    seq = build_sequence(timepoints=T, interval_s=0.3, positions=1, z_um=s.base_focus_um,
                         autofocus=False)
    res = _run(s, seq, tmp_path, method="fewshot", calibration=cal, reacquire=True)
    again = [f for f in res.frames if f["reacquisition_of"]]
    assert 1 <= len(again) <= 5 and len(again) == res.info["reacquisitions"]
    assert len(res.frames) == T + len(again)
    assert all(a.refocus for a in res.autofocus_events)
    for f in again:
        assert abs(f["focus_error_um"]) < 1.0  # re-focused before re-acquiring
        assert f["autofocus"]["refocus"] is True
    keys = [f["reacquisition_of"] for f in again]
    assert len(set(keys)) == len(keys)  # at most once per frame


def test_a_failing_listener_never_stops_live_qc(tmp_path):
    T = 4
    s = _sim(timepoints=T)
    seq = build_sequence(timepoints=T, interval_s=0, positions=1, z_um=s.base_focus_um,
                         autofocus=False)

    def broken(row, res, img):
        raise RuntimeError("listener bug")

    res = _run(s, seq, tmp_path, method="none", on_frame=broken)
    assert res.finish == "completed" and len(res.frames) == T
    assert all(f["verdict"] is not None for f in res.frames)
    assert len(read_frames(tmp_path / "frames.csv")) == T
    assert len(res.info["qc_listener_errors"]) == T


def test_qc_verdict_uses_the_instruments_calibrated_threshold(cal, tmp_path):
    """deconwolf at NA 1.45 and 0.13 µm pixels: focus reads fqa-levels level ~2, so the
    card's rule (level <= 1) calls every in-focus frame out_of_focus. A calibration made
    with the QC model shifts the rule by the instrument's in-focus reading: in-focus
    frames become in_focus, frames 5 DoF away stay out_of_focus, and the JSON says which
    threshold was used."""
    from napari_focusqa.acquire.session import qc_thresholds
    from napari_focusqa.core.errors import FocusQAError
    from napari_focusqa.core.model import load_model

    model = load_model("fqa-levels")
    t_cal = cal.in_focus_max_level(model)
    assert t_cal is not None and model.in_focus_max_level < t_cal <= model.num_classes - 2
    # b0 = the fitted Moffat valley's bottom (the instrument's in-focus reading)
    b0 = cal.moffat["base"] - cal.moffat["amp"]
    assert t_cal == model.in_focus_max_level + round(b0)
    assert cal.in_focus_max_level(load_model("fqa-stain")) is None  # another model
    with pytest.raises(FocusQAError, match="qc_threshold"):
        qc_thresholds(model, cal, "loose")

    T = 4
    verdicts = {}
    # the simulated microscope knows deconwolf's optics (NA 1.45, 461 nm, 0.13 µm): their
    # threshold (level <= 2, the same as `focusqa assess` on the file) applies when no
    # calibration of the QC model is given
    for rule, c in (("instrument", cal), ("card", cal), ("instrument", None)):
        s = _sim(timepoints=T)
        seq = build_sequence(timepoints=T, interval_s=0, positions=1, z_um=s.base_focus_um,
                             autofocus=False)
        key = f"{rule}-{'cal' if c is not None else 'optics'}"
        res = _run(s, seq, tmp_path / key, method="none", calibration=c, model=model,
                   qc_threshold=rule)
        assert all(abs(f["focus_error_um"]) <= 0.468 for f in res.frames)  # optics DoF
        verdicts[key] = [f["verdict"] for f in res.frames]
        thr = res.info["qc_in_focus_max_level"]
        used = 1 if rule == "card" else t_cal if c is not None else 2
        assert thr == {"rule": rule, "card": 1, "calibration": None if c is None else t_cal,
                       "optics": 2, "used": used}
        assert [r["verdict"] for r in read_frames(tmp_path / key / "frames.csv")] == \
            verdicts[key]
    assert verdicts["instrument-cal"] == ["in_focus"] * T
    assert verdicts["instrument-optics"] == ["in_focus"] * T
    assert verdicts["card-cal"] == ["out_of_focus"] * T
    # 2.4 µm (5 optical DoF) from focus: still out of focus under the calibrated threshold
    s = _sim(timepoints=T)
    far = s.base_focus_um + 2.4
    seq = build_sequence(timepoints=T, interval_s=0, positions=1, z_um=far, autofocus=False)
    StageGuard(s.microscope, s.limits).travel_to(far)
    res = run_acquisition(s.microscope, seq, limits=s.limits, method="none", calibration=cal,
                          model=model, truth=s.truth)
    assert res.info["qc_in_focus_max_level"]["used"] == t_cal
    assert [f["verdict"] for f in res.frames] == ["out_of_focus"] * T
