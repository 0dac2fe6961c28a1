"""The `focusqa` CLI: records, best slices of real stacks, demo, bad input -> exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import require_shared

from napari_focusqa.cli import main


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "napari_focusqa", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_assess_json_stdout_real_stack(capsys: pytest.CaptureFixture[str], sharpness_model: Path) -> None:
    path = str(require_shared("deconwolf_dapi_widefield_zstack.tif"))
    assert main(["assess", path, "--model", str(sharpness_model), "--json", "-"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert len(recs) == 40
    assert [r["z_index"] for r in recs] == list(range(40))
    r = recs[19]
    for key in ("file", "channel", "stain", "z_index", "z_um", "predicted_level", "expected_level",
                "mean_certainty", "aggregate_certainty", "in_focus", "sf", "probabilities"):
        assert key in r
    assert r["stain"] == "nucleus" and r["z_um"] == pytest.approx(5.7)
    assert len(r["probabilities"]) == 11 and sum(r["probabilities"]) == pytest.approx(1, abs=1e-4)
    assert int(np.argmax([x["sf"] for x in recs])) == 19


@pytest.mark.parametrize("name, best", [("deconwolf_dapi_widefield_zstack.tif", 19),
                                        ("dfnn_lightsheet_mito_defocus_zstack.tif", 19)])
def test_zstack_best_slice_real(name: str, best: int, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    path = str(require_shared(name))
    plot = tmp_path / "curves.png"
    assert main(["zstack", path, "--model", "none", "--json", "-", "--plot", str(plot)]) == 0
    d = json.loads(capsys.readouterr().out)
    ch = d["channels"][0]
    assert abs(ch["best_z_index"] - best) <= 1
    assert len(ch["sf"]) == len(ch["z_um"])
    assert plot.stat().st_size > 10_000


def test_assess_csv_and_overlay(tmp_path: Path, sharpness_model: Path) -> None:
    img = np.random.default_rng(0).poisson(300, (2, 3, 100, 180)).astype(np.uint16)
    p = tmp_path / "s.tif"
    tifffile.imwrite(p, img, imagej=True, metadata={"axes": "ZCYX", "spacing": 0.5, "unit": "um"})
    out = tmp_path / "o"
    assert main(["assess", str(p), "--model", str(sharpness_model), "--csv", str(tmp_path / "r.csv"),
                 "--overlay", str(out)]) == 0
    rows = (tmp_path / "r.csv").read_text().splitlines()
    assert len(rows) == 1 + 6
    assert rows[0].startswith("file,channel,stain,z_index,z_um,model,predicted_level")
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 6
    from PIL import Image

    px = np.asarray(Image.open(pngs[0]).convert("RGB")).astype(int)
    colourful = (np.abs(px[..., 0] - px[..., 1]) > 80) | (np.abs(px[..., 1] - px[..., 2]) > 80)
    assert colourful.sum() > 500  # borders and legend are drawn in colour


def test_demo_writes_outputs(tmp_path: Path) -> None:
    r = run_cli("demo", "--out", str(tmp_path / "demo"))
    assert r.returncode == 0, r.stderr
    files = {p.name for p in (tmp_path / "demo").iterdir()}
    assert "sf_vs_z.png" in files and "focusqa_demo.csv" in files
    assert sum(f.startswith("overlay_") for f in files) == 4
    assert "best focus z index 10" in r.stdout and "best focus z index 11" in r.stdout


def test_models_lists_env(tmp_path: Path, sharpness_model: Path) -> None:
    env = dict(os.environ, FOCUSQA_MODELS_DIR=str(sharpness_model.parent))
    r = subprocess.run([sys.executable, "-m", "napari_focusqa", "models"], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 0 and "test-sharpness" in r.stdout and " ok " in r.stdout


def _bad_inputs(tmp: Path, sharpness_model: Path) -> dict[str, list[str]]:
    empty = tmp / "empty.tif"
    empty.write_bytes(b"")
    good = tmp / "good.tif"
    tifffile.imwrite(good, np.ones((100, 100), np.uint16))
    corrupt = tmp / "corrupt.tif"
    corrupt.write_bytes(good.read_bytes()[:60])
    tiny = tmp / "tiny.tif"
    tifffile.imwrite(tiny, np.ones((1, 1), np.uint16))
    nan = tmp / "nan.tif"
    tifffile.imwrite(nan, np.full((100, 100), np.nan, np.float32))
    rgb = tmp / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((100, 100, 3), np.uint8), photometric="rgb")
    card = json.loads(sharpness_model.read_text())
    bad_dir = tmp / "badmodel"
    bad_dir.mkdir()
    (bad_dir / card["onnx"]).write_bytes((sharpness_model.parent / card["onnx"]).read_bytes() + b"x")
    (bad_dir / sharpness_model.name).write_text(json.dumps(card))
    return {
        "empty file": ["assess", str(empty), "--model", "none"],
        "corrupt tiff": ["assess", str(corrupt), "--model", "none"],
        "1x1 image": ["assess", str(tiny), "--model", "none"],
        "NaN image": ["assess", str(nan), "--model", "none"],
        "RGB": ["assess", str(rgb), "--model", "none"],
        "wrong model path": ["assess", str(good), "--model", str(tmp / "nope.json")],
        "sha mismatch": ["assess", str(good), "--model", str(bad_dir / sharpness_model.name)],
        "missing file": ["assess", str(tmp / "missing.tif")],
        "zstack of 2D": ["zstack", str(good), "--model", "none"],
    }


def test_bad_inputs_exit_2(tmp_path: Path, sharpness_model: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    for label, argv in _bad_inputs(tmp_path, sharpness_model).items():
        code = main(argv)
        err = capsys.readouterr().err.strip()
        assert code == 2, label
        assert len(err.splitlines()) == 1, (label, err)
        assert "error:" in err, label


def test_bad_input_subprocess_one_line(tmp_path: Path) -> None:
    (tmp_path / "e.tif").write_bytes(b"")
    r = run_cli("assess", str(tmp_path / "e.tif"))
    assert r.returncode == 2
    assert r.stderr.strip() == f"focusqa assess: error: {tmp_path / 'e.tif'}: file is empty"
