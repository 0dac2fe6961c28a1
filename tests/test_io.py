"""TIFF/OME/ImageJ/PNG reading keeps axes, channel names, z-step and pixel size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import require_shared
from PIL import Image

from napari_focusqa.io import read_image
from napari_focusqa.io.writer import write_csv, write_json


def test_imagej_hyperstack_real() -> None:
    img = read_image(require_shared("czitools_celldivision_2ch_zstack.tif"))
    assert img.data.shape == (3, 5, 2, 170, 240)
    assert img.original_axes == "TZCYX"
    assert img.z_step_um == pytest.approx(0.32)
    assert img.pixel_size_um == pytest.approx(0.0905767, rel=1e-4)


def test_imagej_channel_labels_real() -> None:
    img = read_image(require_shared("bian_bpae_3ch_infocus.tif"))
    assert img.channel_names == ["nuclei", "actin", "mitochondria"]
    assert img.stains == ["nucleus", "actin", "mitochondria"]
    assert img.n_slices == 1 and img.pixel_size_um == pytest.approx(0.108333, rel=1e-4)


def test_single_channel_stain_from_info() -> None:
    img = read_image(require_shared("deconwolf_dapi_widefield_zstack.tif"))
    assert img.data.shape == (1, 40, 1, 201, 101)
    assert img.stains == ["nucleus"]
    assert img.z_step_um == pytest.approx(0.3)


def test_ome_tiff(tmp_path: Path) -> None:
    data = np.random.default_rng(0).integers(0, 4000, (4, 2, 90, 100), dtype=np.uint16)
    p = tmp_path / "x.ome.tif"
    tifffile.imwrite(
        p, data, ome=True,
        metadata={"axes": "ZCYX", "PhysicalSizeX": 0.2, "PhysicalSizeZ": 0.75,
                  "Channel": {"Name": ["DAPI", "Phalloidin 568"]}},
    )
    img = read_image(p)
    assert img.data.shape == (1, 4, 2, 90, 100)
    np.testing.assert_array_equal(img.zcyx(0), data)
    assert img.channel_names == ["DAPI", "Phalloidin 568"]
    assert img.stains == ["nucleus", "actin"]
    assert img.z_step_um == pytest.approx(0.75) and img.pixel_size_um == pytest.approx(0.2)


def test_plain_tiff_and_png(tmp_path: Path) -> None:
    a = np.arange(120 * 130, dtype=np.uint16).reshape(120, 130)
    tifffile.imwrite(tmp_path / "a.tif", a)
    tifffile.imwrite(tmp_path / "s.tif", np.stack([a, a, a, a]))
    Image.fromarray((a % 256).astype(np.uint8)).save(tmp_path / "a.png")
    assert read_image(tmp_path / "a.tif").data.shape == (1, 1, 1, 120, 130)
    assert read_image(tmp_path / "s.tif").data.shape == (1, 1, 4, 120, 130)  # planar samples
    tifffile.imwrite(tmp_path / "z.tif", np.stack([a] * 6))
    assert read_image(tmp_path / "z.tif").data.shape == (1, 6, 1, 120, 130)
    assert read_image(tmp_path / "a.png").data.shape == (1, 1, 1, 120, 130)


@pytest.mark.parametrize("kind", ["empty", "corrupt", "missing", "rgb_tif", "rgb_png", "folder"])
def test_bad_files(tmp_path: Path, kind: str) -> None:
    p = tmp_path / "bad.tif"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "corrupt":
        good = tmp_path / "g.tif"
        tifffile.imwrite(good, np.ones((100, 100), np.uint16))
        p.write_bytes(good.read_bytes()[:50])
    elif kind == "rgb_tif":
        tifffile.imwrite(p, np.zeros((50, 60, 3), np.uint8), photometric="rgb")
    elif kind == "rgb_png":
        p = tmp_path / "bad.png"
        rgb = np.zeros((50, 60, 3), np.uint8)
        rgb[..., 0] = 200
        Image.fromarray(rgb).save(p)
    elif kind == "folder":
        p = tmp_path
    with pytest.raises(ValueError, match=str(p.name) if kind != "folder" else "folder"):
        read_image(p)


def test_writers_atomic_and_jsonable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recs = [{"a": 1, "p": np.array([0.5, 0.5]), "x": float("nan")}, {"a": 2, "b": None}]
    write_csv(recs, tmp_path / "r.csv", ["a"])
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines[0] == "a,p,x,b" and lines[1].startswith('1,"[0.5, 0.5]"')
    write_json(recs, "-")
    assert '"x": null' in capsys.readouterr().out
    assert not list(tmp_path.glob("*.tmp"))
