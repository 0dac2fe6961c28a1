"""``focusqa calibrate`` / ``focusqa autofocus`` on a simulated microscope from a file."""

from __future__ import annotations

import json

import pytest
from conftest import require_shared

from napari_focusqa.cli import main


def test_calibrate_then_autofocus_json(tmp_path, capsys):
    stack = str(require_shared("deconwolf_dapi_widefield_zstack.tif"))
    cal = tmp_path / "cal.json"
    assert main(["calibrate", "--stack", stack, "--model", "none", "--out", str(cal)]) == 0
    c = json.loads(cal.read_text())
    assert c["kind"] == "focusqa-autofocus-calibration" and c["dof_source"] == "optics"
    out = tmp_path / "run.json"
    rc = main(["autofocus", "--stack", stack, "--start-um", "9.0", "--method", "fewshot",
               "--calibration", str(cal), "--seed", "3", "--focus-offset-um", "0.4",
               "--focus-index", "19", "--json", str(out)])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["status"] == "ok" and d["method"] == "fewshot"
    assert d["start_z_um"] == pytest.approx(9.0)
    assert d["images_used"] == len(d["acquisitions"]) <= 4
    assert abs(d["final_z_um"] - (0.4 + 19 * 0.3)) <= d["dof_um"]
    assert d["info"]["simulation"]["true_focus_um"] == pytest.approx(0.4 + 19 * 0.3)
    assert d["limits"]["max_step_taken_um"] <= d["limits"]["max_step_um"]


def test_classic_to_stdout_and_bad_input(capsys):
    stack = str(require_shared("deconwolf_dapi_widefield_zstack.tif"))
    assert main(["autofocus", "--stack", stack, "--start-um", "3", "--method", "classic",
                 "--json", "-"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["method"] == "classic" and d["score_name"] == "sf" and d["images_used"] >= 5
    # start outside the stage travel: exit 2 with a message naming the problem
    assert main(["autofocus", "--stack", stack, "--start-um", "50", "--method", "classic"]) == 2
    assert "start position" in capsys.readouterr().err
    assert main(["autofocus", "--stack", stack, "--start-um", "3", "--calibration",
                 "/nonexistent/cal.json"]) == 2
    assert "calibration" in capsys.readouterr().err
    assert main(["autofocus", "--stack", stack, "--channel", "3", "--start-um", "3"]) == 2
    assert "channel" in capsys.readouterr().err


def test_real_hardware_path_errors(tmp_path, capsys):
    # --config: a missing file, and a config without limits, fail with exit 2 and a message
    assert main(["autofocus", "--config", str(tmp_path / "none.cfg"), "--method",
                 "classic"]) == 2
    assert "config file not found" in capsys.readouterr().err
    assert main(["calibrate", "--config", str(tmp_path / "none.cfg"), "--out", "-"]) == 2
    assert "config" in capsys.readouterr().err
