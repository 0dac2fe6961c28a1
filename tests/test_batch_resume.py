"""``focusqa batch --resume`` safety: never rewrite a finished row, never mix models or modes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from napari_focusqa import batch
from napari_focusqa.cli import main
from napari_focusqa.testing import blob_image


def _cells(rng: np.random.Generator, shape=None, sigma=0.0) -> np.ndarray:
    return blob_image(rng, shape or (168, 200), sigma)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(5)
    d = tmp_path / "imgs"
    d.mkdir()
    for i, s in enumerate((0.0, 4.0, 0.0, 7.0)):
        tifffile.imwrite(d / f"P1_A{i + 1:02d}_s1_w1.tif", _cells(rng, sigma=s))
    return d


def _digest(path: Path) -> str:
    """Content of a batch output (a CSV file or a parquet folder of part files)."""
    h = hashlib.sha256()
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    for f in files:
        if f.is_file() and not f.name.startswith("_"):
            h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_resume_with_another_model_is_refused_and_output_untouched(
    folder, tmp_path, sharpness_model, sharpness_stain_model, capsys, suffix
) -> None:
    out = tmp_path / f"o{suffix}"
    args = ["batch", str(folder), "--out", str(out), "--workers", "0", "--no-progress"]
    assert main([*args, "--model", str(sharpness_model)]) == 0
    before = _digest(out)
    capsys.readouterr()
    rc = main([*args, "--resume", "--model", str(sharpness_stain_model)])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and "--resume" in err and "test-stain" in err
    assert _digest(out) == before
    assert {r["model"] for r in batch.read_results(out)} == {"test-sharpness"}


def test_resume_with_same_id_but_other_weights_is_refused(folder, tmp_path, sharpness_model,
                                                          capsys) -> None:
    from napari_focusqa.testing import build_sharpness_model

    # same model id, different ONNX file (another sha256)
    other = build_sharpness_model(tmp_path / "m2", num_classes=9)
    out = tmp_path / "o.csv"
    args = ["batch", str(folder), "--out", str(out), "--workers", "0", "--no-progress"]
    assert main([*args, "--model", str(sharpness_model)]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert main([*args, "--resume", "--model", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sha256" in err
    assert out.read_bytes() == before


def test_resume_sf_only_output_with_a_model_is_refused(folder, tmp_path, sharpness_model,
                                                        capsys) -> None:
    out = tmp_path / "o.csv"
    args = ["batch", str(folder), "--out", str(out), "--workers", "0", "--no-progress"]
    assert main([*args, "--model", "none"]) == 0
    capsys.readouterr()
    assert main([*args, "--resume", "--model", str(sharpness_model)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--resume" in err


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_resume_of_a_finished_run_rewrites_nothing(folder, tmp_path, sharpness_model,
                                                   suffix) -> None:
    out = tmp_path / f"o{suffix}"
    s1 = batch.run_batch([folder], out, model=sharpness_model, workers=0, progress=False,
                         log=None)
    assert s1.exit_code == 0
    before = _digest(out)
    rows_before = batch.read_results(out)
    s2 = batch.run_batch([folder], out, model=sharpness_model, workers=0, resume=True,
                         progress=False, log=None)
    assert s2.files_done == 0 and s2.files_skipped == 4
    assert _digest(out) == before
    assert batch.read_results(out) == rows_before


def test_resume_refuses_other_mode(tmp_path, sharpness_model, capsys) -> None:
    rng = np.random.default_rng(2)
    sharp = _cells(rng, (168, 168)).astype(np.float32)
    stack = np.stack([ndimage.gaussian_filter(sharp, abs(z - 3) + 0.01) for z in range(7)])
    p = tmp_path / "stack_A01.tif"
    tifffile.imwrite(p, stack.astype(np.uint16), imagej=True, metadata={"axes": "ZYX"})
    out = tmp_path / "z.parquet"
    args = ["batch", str(p), "--out", str(out), "--workers", "0", "--no-progress",
            "--model", str(sharpness_model)]
    assert main([*args, "--zstack"]) == 0
    before = _digest(out)
    capsys.readouterr()
    assert main([*args, "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "mode" in err
    assert _digest(out) == before


def _two_channel(folder: Path) -> Path:
    rng = np.random.default_rng(9)
    p = folder / "P1_B01_s1.tif"
    tifffile.imwrite(p, np.stack([_cells(rng), _cells(rng, sigma=5.0)]), imagej=True,
                     metadata={"axes": "CYX"})
    return p


@pytest.mark.parametrize("cut", ["line", "torn"])
def test_resume_redoes_a_file_whose_rows_were_cut_short(folder, tmp_path, sharpness_model,
                                                        cut) -> None:
    """A kill inside the write of a multi-row file: that file (only) is assessed again."""
    two = _two_channel(folder)
    files = [*sorted(folder.glob("P1_A*.tif")), two]  # the 2-row file is written last
    out = tmp_path / "o.csv"
    batch.run_batch(files, out, model=sharpness_model, workers=0, progress=False, log=None)
    full = batch.read_results(out)
    assert len(full) == 6 and full[-1]["file_rows"] == 2
    data = out.read_bytes()
    last_line = data[data.rstrip(b"\n").rfind(b"\n") + 1:]
    # cut exactly after the first of the file's two rows, or in the middle of its second
    out.write_bytes(data[: -len(last_line)] if cut == "line" else data[: -len(last_line) // 2])
    s = batch.run_batch(files, out, model=sharpness_model, workers=0, resume=True,
                        progress=False, log=None)
    assert s.files_skipped == 4 and s.files_done == 1
    after = batch.read_results(out)
    assert after[:4] == full[:4]  # complete files untouched
    assert [r["file"] for r in after].count(str(two)) == 2
    redone = sorted(after[4:], key=lambda r: r["channel_index"])
    assert [r["attempts"] for r in redone] == [2, 2]  # the cut write was attempt 1

    def same(r: dict) -> dict:
        return {k: v for k, v in r.items() if k != "attempts"}

    assert [same(r) for r in redone] == [same(r) for r in full[4:]]  # same numbers again
