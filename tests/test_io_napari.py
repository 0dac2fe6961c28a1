"""The napari reader on vendor files: claims only what it can read, lazy layers, every
series; and a real viewer opening a CZI through the plugin (as drag and drop does)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import require_shared

pytest.importorskip("bioio_czi")  # the [formats] extra

from napari_focusqa.io.napari_reader import get_reader, read_layers  # noqa: E402

CELL_CZI = "czitools_CellDivision_T3_Z5_CH2_X240_Y170.czi"


def test_claims_czi_only_with_its_plugin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = str(require_shared(CELL_CZI))
    assert callable(get_reader(path))
    monkeypatch.setitem(sys.modules, "bioio_czi", None)  # as if not installed
    assert get_reader(path) is None
    other = tmp_path / "notes.txt"
    other.write_text("x")
    assert get_reader(str(other)) is None


def test_czi_layers_lazy_named_scaled() -> None:
    path = str(require_shared(CELL_CZI))
    layers = get_reader(path)(path)
    assert [k["name"] for _, k, _ in layers] == ["LED555", "LED470"]
    data, kw, kind = layers[0]
    assert kind == "image" and type(data).__module__.startswith("dask")
    assert data.shape == (3, 5, 170, 240)
    assert kw["scale"] == pytest.approx((1.0, 0.32, 0.0905767, 0.0905767), rel=1e-5)
    meta = kw["metadata"]["focusqa"]
    assert meta["format"] == "czi" and meta["n_series"] == 1 and meta["z_step_um"] == 0.32
    ref = tifffile.imread(require_shared("czitools_celldivision_2ch_zstack.tif"))
    np.testing.assert_array_equal(np.asarray(data[2, 3]), ref[2, 3, 0])


def test_every_series_becomes_layers(tmp_path: Path) -> None:
    p = tmp_path / "positions.ome.tif"
    with tifffile.TiffWriter(p, ome=True) as w:
        for i in range(3):
            w.write(np.full((2, 2, 30, 40), i, np.uint16),
                    metadata={"axes": "ZCYX", "Name": f"well{i}", "Channel": {"Name": ["DAPI", "GFP"]}})
    layers = read_layers(str(p))
    assert [k["name"] for _, k, _ in layers] == [
        f"well{i} {c}" for i in range(3) for c in ("DAPI", "GFP")]
    assert [int(np.asarray(d).max()) for d, _, _ in layers] == [0, 0, 1, 1, 2, 2]
    assert [k["metadata"]["focusqa"]["series"] for _, k, _ in layers] == [0, 0, 1, 1, 2, 2]


@pytest.mark.gui
def test_viewer_opens_czi_with_the_plugin(make_napari_viewer) -> None:  # type: ignore[no-untyped-def]
    viewer = make_napari_viewer(show=True)
    viewer.open(str(require_shared("czitools_DAPI_GFP.czi")), plugin="napari-focusqa")
    assert [ly.name for ly in viewer.layers] == ["DAPI", "GFP"]
    assert viewer.layers["DAPI"].data.shape == (640, 640)
    assert viewer.layers["DAPI"].metadata["focusqa"]["stain"] == "nucleus"
    viewer.open(str(require_shared(CELL_CZI)), plugin="napari-focusqa")
    assert viewer.layers["LED555"].data.shape == (3, 5, 170, 240)
    viewer.dims.set_point(0, 2)
    shot = viewer.screenshot(canvas_only=True)
    assert shot.shape[-1] == 4 and shot[..., :3].max() > 0
