"""Vendor formats through bioio (CZI, OME-Zarr), every series of multi-series files, and
bad vendor input. Real CZIs from ../shared/data are compared with TIFF conversions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import require_shared

from napari_focusqa.core.errors import ImageError
from napari_focusqa.core.zstack import assess_stack
from napari_focusqa.io import read_image, read_series

pytest.importorskip("bioio_czi")  # the [formats] extra

CELL_CZI = "czitools_CellDivision_T3_Z5_CH2_X240_Y170.czi"
CELL_TIF = "czitools_celldivision_2ch_zstack.tif"


def _best_slices(img, model: str | None) -> list[list[int]]:  # type: ignore[no-untyped-def]
    out = []
    for t in range(img.n_times):
        res = assess_stack(img.zcyx(t), model, z_step_um=img.z_step_um,
                           channel_names=img.channel_names, stains=img.stains)
        out.append([c.best_z_index for c in res.channels])
    return out


def test_czi_zstack_matches_its_tiff_conversion() -> None:
    czi = read_image(require_shared(CELL_CZI))
    tif = read_image(require_shared(CELL_TIF))
    assert czi.format == "czi" and tif.format == "imagej-tiff"
    assert czi.data.shape == tif.data.shape == (3, 5, 2, 170, 240)
    np.testing.assert_array_equal(czi.data, tif.data)
    # the CZI names its channels (the TIFF conversion lost them); calibration agrees
    assert czi.channel_names == ["LED555", "LED470"]
    assert czi.z_step_um == pytest.approx(tif.z_step_um)
    assert czi.pixel_size_um == pytest.approx(tif.pixel_size_um, rel=1e-5)
    # same best slice per time point and channel, with SF and with the shipped model
    for model in (None, "fqa-levels"):
        assert _best_slices(czi, model) == _best_slices(tif, model)


@pytest.mark.parametrize("name, names, shape", [
    ("czitools_DAPI_GFP.czi", ["DAPI", "GFP"], (1, 1, 2, 640, 640)),
    ("czitools_WellD6_S1.czi", ["AF488"], (1, 1, 1, 440, 544)),
])
def test_single_plane_czis_match_an_independent_decoder(
        name: str, names: list[str], shape: tuple[int, ...], tmp_path: Path) -> None:
    from pylibCZIrw import czi as pyczi

    path = require_shared(name)
    img = read_image(path)
    assert img.data.shape == shape and img.channel_names == names
    with pyczi.open_czi(str(path)) as doc:
        ref = np.stack([doc.read(plane={"C": c})[..., 0] for c in range(shape[2])])
    np.testing.assert_array_equal(img.data[0, 0], ref)
    # a TIFF conversion carrying the same names reads back the same, plane for plane
    conv = tmp_path / "conv.tif"
    tifffile.imwrite(conv, ref[None] if shape[2] > 1 else ref, imagej=True,
                     metadata={"axes": "ZCYX" if shape[2] > 1 else "ZYX", "Labels": names})
    back = read_image(conv)
    np.testing.assert_array_equal(back.data, img.data)
    if shape[2] > 1:
        assert back.channel_names == img.channel_names


def test_well_scene_metadata() -> None:
    img = read_image(require_shared("czitools_WellD6_S1.czi"))
    assert img.series_name == "D6-D6" and img.metadata["well"] == "D6"
    assert img.pixel_size_um == pytest.approx(0.1) and img.z_step_um is None
    assert img.source()["well"] == "D6"


def _multi_scene_czi(path: Path) -> np.ndarray:
    """A 3-scene CZI written with pylibCZIrw (its XML lists no scenes)."""
    from pylibCZIrw import czi as pyczi

    data = np.random.default_rng(1).integers(0, 4000, (3, 4, 2, 60, 70), dtype=np.uint16)
    with pyczi.create_czi(str(path), exist_ok=True) as doc:
        for s in range(3):
            for z in range(4):
                for c in range(2):
                    doc.write(data=data[s, z, c], plane={"Z": z, "C": c}, scene=s,
                              location=(s * 100, 0))
        doc.write_metadata(channel_names={0: "DAPI", 1: "Alexa 488"},
                           scale_x=0.2e-6, scale_y=0.2e-6, scale_z=0.5e-6)
    return data


def test_multi_scene_czi_gives_every_scene(tmp_path: Path) -> None:
    p = tmp_path / "scenes.czi"
    data = _multi_scene_czi(p)
    imgs = read_series(p)
    assert [im.series for im in imgs] == [0, 1, 2] and {im.n_series for im in imgs} == {3}
    for s, im in enumerate(imgs):
        np.testing.assert_array_equal(im.data[0], data[s])
        assert im.channel_names == ["DAPI", "Alexa 488"]
        assert im.z_step_um == pytest.approx(0.5) and im.pixel_size_um == pytest.approx(0.2)
    with pytest.raises(ImageError, match="holds 3 series"):
        read_image(p)
    np.testing.assert_array_equal(read_image(p, series=2).data[0], data[2])
    with pytest.raises(ImageError, match="series 3 out of range"):
        read_image(p, series=3)


def test_multi_series_ome_tiff_every_series(tmp_path: Path) -> None:
    p = tmp_path / "positions.ome.tif"
    rng = np.random.default_rng(0)
    stacks = [rng.integers(0, 4000, (3, 2, 40, 50), dtype=np.uint16) for _ in range(3)]
    with tifffile.TiffWriter(p, ome=True) as w:
        for i, d in enumerate(stacks):
            w.write(d, metadata={"axes": "ZCYX", "PhysicalSizeX": 0.2, "PhysicalSizeZ": 0.5,
                                 "Name": f"pos{i}", "Channel": {"Name": ["DAPI", "GFP"]}})
    imgs = read_series(p)
    assert [im.series_name for im in imgs] == ["pos0", "pos1", "pos2"]
    for d, im in zip(stacks, imgs):
        np.testing.assert_array_equal(im.zcyx(0), d)
        assert im.channel_names == ["DAPI", "GFP"] and im.z_step_um == pytest.approx(0.5)
        assert im.source() == {"file": str(p), "series": im.series, "series_name": im.series_name}
    with pytest.raises(ImageError, match=r"positions\.ome\.tif: holds 3 series \(pos0"):
        read_image(p)


def test_ome_zarr_roundtrip(tmp_path: Path) -> None:
    from bioio_ome_zarr.writers import Channel, OMEZarrWriter

    d = np.random.default_rng(2).integers(0, 4000, (1, 2, 6, 64, 80), dtype=np.uint16)
    p = tmp_path / "x.ome.zarr"
    w = OMEZarrWriter(str(p), level_shapes=d.shape, dtype=d.dtype,
                      axes_names=["t", "c", "z", "y", "x"],
                      axes_types=["time", "channel", "space", "space", "space"],
                      axes_units=[None, None, "micrometer", "micrometer", "micrometer"],
                      physical_pixel_size=[1, 1, 0.5, 0.2, 0.2],
                      channels=[Channel(label="Hoechst", color="0000FF"),
                                Channel(label="Phalloidin", color="00FF00")])
    w.write_full_volume(d)
    img = read_image(p)
    np.testing.assert_array_equal(img.data, d.transpose(0, 2, 1, 3, 4))
    assert img.channel_names == ["Hoechst", "Phalloidin"] and img.stains == ["nucleus", "actin"]
    assert img.z_step_um == pytest.approx(0.5) and img.pixel_size_um == pytest.approx(0.2)


@pytest.mark.parametrize("name", [CELL_CZI, CELL_TIF])
def test_lazy_reads_equal_eager(name: str) -> None:
    lazy = read_series(require_shared(name), lazy=True)[0]
    eager = read_image(require_shared(name))
    assert lazy.is_lazy and not eager.is_lazy
    np.testing.assert_array_equal(np.asarray(lazy.data[1, :, 0]), eager.data[1, :, 0])
    np.testing.assert_array_equal(lazy.loaded().data, eager.data)


def _one_line_exit_2(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "napari_focusqa", *args], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_cli_zstack_on_czi() -> None:
    r = subprocess.run([sys.executable, "-m", "napari_focusqa", "zstack",
                        str(require_shared(CELL_CZI)), "--model", "none"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "LED555" in r.stdout and "LED470" in r.stdout


def test_bad_vendor_input_one_line(tmp_path: Path) -> None:
    corrupt = tmp_path / "broken.czi"
    corrupt.write_bytes(require_shared(CELL_CZI).read_bytes()[:4096])
    assert "broken.czi" in _one_line_exit_2("zstack", str(corrupt), "--model", "none")
    junk = tmp_path / "junk.czi"
    junk.write_bytes(b"not a czi at all" * 100)
    assert "junk.czi" in _one_line_exit_2("assess", str(junk), "--model", "none")
    odd = tmp_path / "image.xyz"
    odd.write_bytes(b"\0" * 100)
    line = _one_line_exit_2("assess", str(odd), "--model", "none")
    assert "image.xyz" in line and "unsupported format" in line


def test_czi_without_its_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    # an import of a module set to None in sys.modules raises ImportError, exactly as
    # when the package is not installed
    monkeypatch.setitem(sys.modules, "bioio_czi", None)
    with pytest.raises(ImageError, match=r"CellDivision.*needs the bioio-czi plugin"):
        read_image(require_shared(CELL_CZI))
    monkeypatch.setitem(sys.modules, "bioio", None)
    with pytest.raises(ImageError, match=r"needs bioio and bioio-czi"):
        read_image(require_shared(CELL_CZI))


def test_pipeline_assesses_every_series(tmp_path: Path) -> None:
    from napari_focusqa.pipeline import assess_file

    p = tmp_path / "positions.ome.tif"
    rng = np.random.default_rng(3)
    with tifffile.TiffWriter(p, ome=True) as w:
        for i in range(3):
            w.write(rng.poisson(200 + 100 * i, (4, 2, 90, 90)).astype(np.uint16),
                    metadata={"axes": "ZCYX", "Name": f"pos{i}", "PhysicalSizeZ": 0.5})
    stacks = assess_file(p, None, mode="stack")
    assert [s.source["series"] for s in stacks] == [0, 1, 2]
    planes = assess_file(p, None, mode="planes")
    assert len(planes) == 3 * 4 * 2
    assert sorted({r.source["series"] for r in planes}) == [0, 1, 2]
