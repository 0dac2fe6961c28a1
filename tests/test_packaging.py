"""A plain (non-editable) `pip install .` in a fresh venv: napari finds the plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_install_in_fresh_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(dist)], check=True, timeout=600)
    wheel = next(dist.glob("napari_focusqa-*.whl"))
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "napari_focusqa/napari.yaml" in names
    assert "fiji_bridge/__init__.py" in names
    shipped = {Path(n).name for n in names if n.startswith("napari_focusqa/_models/")}
    for f in (REPO / "models").iterdir():
        if f.suffix in (".json", ".onnx"):
            assert f.name in shipped  # every model and card travels in the wheel

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FOCUSQA_MODELS_DIR")}
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel), "npe2"], check=True,
                   timeout=900, env=env)
    listed = subprocess.run([str(env_dir / "bin" / "npe2"), "list"], capture_output=True,
                            text=True, timeout=300, env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "napari-focusqa" in listed.stdout
    val = subprocess.run([str(env_dir / "bin" / "npe2"), "validate", "napari-focusqa"],
                         capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert val.returncode == 0, val.stdout + val.stderr
    # the installed package is the wheel, not the source tree, and the CLI runs
    where = subprocess.run([str(py), "-c", "import napari_focusqa; print(napari_focusqa.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
    assert str(env_dir) in where.stdout
    demo = subprocess.run([str(env_dir / "bin" / "focusqa"), "demo", "--out", str(tmp_path / "d")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert demo.returncode == 0, demo.stderr
    assert (tmp_path / "d" / "sf_vs_z.png").exists()
    # features whose extras are not installed say what to install (exit 2), no traceback
    acq = subprocess.run([str(env_dir / "bin" / "focusqa"), "acquire", "--stack", "s.tif"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert acq.returncode == 2 and "napari-focusqa[microscope]" in acq.stderr, acq.stderr
    models = subprocess.run([str(env_dir / "bin" / "focusqa"), "models"], capture_output=True,
                            text=True, env=env, cwd=tmp_path, timeout=300)
    assert models.returncode == 0
    for card in sorted((REPO / "models").glob("*.json")):
        assert card.stem in models.stdout and "INVALID" not in models.stdout
