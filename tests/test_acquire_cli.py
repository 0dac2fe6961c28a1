"""``focusqa acquire``: flags, JSON fields, and one clear line for bad calibration input."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pymmcore_plus")

from napari_focusqa.cli import main  # noqa: E402
from tests.conftest import require_shared  # noqa: E402

STACK = "deconwolf_dapi_widefield_zstack.tif"


@pytest.fixture(scope="module")
def cal_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("cal") / "cal.json"
    assert main(["calibrate", "--stack", str(require_shared(STACK)), "--focus-index", "19",
                 "--seed", "5", "--out", str(out)]) == 0
    return out


def test_acquire_json_has_one_entry_per_frame(cal_file, tmp_path, capsys):
    out = tmp_path / "run.json"
    rc = main(["acquire", "--stack", str(require_shared(STACK)), "--channel", "0",
               "--timepoints", "3", "--interval-s", "0", "--positions", "2",
               "--drift-um", "0.4", "--autofocus", "fewshot", "--calibration", str(cal_file),
               "--seed", "3", "--json", str(out), "--focus-index", "19"])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["engine"] == "pymmcore-plus MDA" and d["finish"] == "completed"
    assert len(d["frames"]) == 6 and len(d["autofocus_events"]) == 6
    for f in d["frames"]:
        for k in ("t", "p", "z_um", "verdict", "expected_level", "certainty", "autofocus",
                  "true_focus_um", "focus_error_um"):
            assert k in f
        assert f["verdict"] is not None
        assert f["autofocus"]["images_used"] == len(f["autofocus"]["z_um"]) >= 1
        assert f["focus_error_um"] == pytest.approx(f["z_um"] - f["true_focus_um"], abs=1e-3)
    # true focus: documented plane 19 × 0.3 µm, + 0.4 µm per time point, + tilt per position
    f = {(x["t"], x["p"]): x for x in d["frames"]}
    assert f[(2, 0)]["true_focus_um"] == pytest.approx(19 * 0.3 + 0.8, abs=1e-3)
    assert f[(2, 1)]["true_focus_um"] == pytest.approx(19 * 0.3 + 0.8 + 0.5, abs=1e-3)
    table = tmp_path / "run.frames.csv"
    assert len(table.read_text().strip().splitlines()) == 1 + 6
    out_text = capsys.readouterr().out
    assert "6 frame rows" in out_text
    # the verdicts use the calibration's threshold (made with the QC model), and say so
    thr = d["qc_in_focus_max_level"]
    assert thr["rule"] == "instrument" and thr["used"] == thr["calibration"] > thr["card"]
    assert f"level <= {thr['used']}, calibrated" in out_text
    rc = main(["acquire", "--stack", str(require_shared(STACK)), "--timepoints", "1",
               "--autofocus", "none", "--calibration", str(cal_file), "--qc-threshold",
               "card", "--json", str(tmp_path / "card.json"), "--focus-index", "19"])
    d2 = json.loads((tmp_path / "card.json").read_text())
    assert rc == 0 and d2["qc_in_focus_max_level"]["used"] == thr["card"]
    assert "model card" in capsys.readouterr().out


def _err_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_missing_calibration_is_one_clear_line(capsys):
    rc = main(["acquire", "--stack", str(require_shared(STACK)), "--autofocus", "fewshot",
               "--timepoints", "2"])
    assert rc == 2
    assert "--calibration" in _err_line(capsys)


def test_mismatched_calibration_is_one_clear_line(cal_file, tmp_path, capsys):
    d = json.loads(cal_file.read_text())
    d["source"]["file"] = "some_other_stack.tif"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(d))
    rc = main(["acquire", "--stack", str(require_shared(STACK)), "--autofocus", "fewshot",
               "--calibration", str(other)])
    assert rc == 2
    line = _err_line(capsys)
    assert "calibration" in line and "some_other_stack.tif" in line
    d = json.loads(cal_file.read_text())
    d["instrument"]["name"] = "another microscope"
    other.write_text(json.dumps(d))
    assert main(["acquire", "--stack", str(require_shared(STACK)), "--autofocus", "fewshot",
                 "--calibration", str(other)]) == 2
    assert "another instrument" in _err_line(capsys)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["acquire", "--stack", str(require_shared(STACK)), "--autofocus", "fewshot",
                 "--calibration", str(bad)]) == 2
    assert "not valid JSON" in _err_line(capsys)


def test_hardware_needs_limits(tmp_path, capsys):
    rc = main(["acquire", "--config", str(tmp_path / "MMConfig.cfg"), "--autofocus", "classic"])
    assert rc == 2
    assert "--z-min/--z-max/--max-step" in _err_line(capsys)
