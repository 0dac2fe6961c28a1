"""napari_focusqa.pipeline: the one door from a file or layer to a result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_focusqa.cli import main
from napari_focusqa.core.errors import FocusQAError, ImageError, ModelCardError
from napari_focusqa.io.sample_data import make_sample_stack
from napari_focusqa.pipeline import (
    assess_file,
    iter_planes,
    layer_to_stack,
    resolve_model,
)


@pytest.fixture
def timelapse(tmp_path: Path) -> Path:
    """An ImageJ TZCYX hyperstack: t=0 has its focus at z=10, t=1 at z=13 (shifted)."""
    s = make_sample_stack().data[0]  # (Z, C, Y, X), focus 10 / 11
    z = s.shape[0]
    t1 = np.concatenate([s[:1]] * 3 + [s[: z - 3]])  # content moves 3 planes deeper
    data = np.stack([s, t1])
    path = tmp_path / "tl.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TZCYX", "spacing": 0.5,
                                                         "unit": "um"})
    return path


def test_resolve_model_refs(sharpness_model: Path) -> None:
    assert resolve_model("none") is None and resolve_model("NONE") is None
    fm = resolve_model(str(sharpness_model))
    assert fm is not None and resolve_model(fm) is fm
    default = resolve_model(None)
    assert default is not None and default.id == "fqa-levels"
    with pytest.raises(ModelCardError, match="unknown model id 'nope'"):
        resolve_model("nope")


def test_stack_mode_gives_every_time_point(timelapse: Path, sharpness_model: Path) -> None:
    res = assess_file(timelapse, str(sharpness_model), "stack")
    assert [r.source["t_index"] for r in res] == [0, 1]
    best0 = res[0].channels[0].best_z_index_sf
    best1 = res[1].channels[0].best_z_index_sf
    assert best1 - best0 == 3  # the second time point's focus really moved
    only = assess_file(timelapse, None, "stack", t=1)
    assert len(only) == 1 and only[0].source["t_index"] == 1
    assert only[0].channels[0].best_z_index_sf == best1
    with pytest.raises(ImageError, match="t: time index 2 out of range"):
        assess_file(timelapse, None, "stack", t=2)


def test_planes_mode_covers_t_z_c(timelapse: Path) -> None:
    planes = list(iter_planes(timelapse, None))
    z, c = make_sample_stack().data.shape[1:3]
    assert len(planes) == 2 * z * c
    assert {p[1].source["t_index"] for p in planes} == {0, 1}
    assert all(p[1].model_id is None and p[1].sf is not None for p in planes)


def test_cli_zstack_per_time_point(timelapse: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zstack", str(timelapse), "--model", "none", "--json", "-"]) == 0
    docs = json.loads(capsys.readouterr().out)
    assert isinstance(docs, list) and len(docs) == 2
    assert main(["zstack", str(timelapse), "--model", "none", "--t", "1", "--json", "-"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert isinstance(one, dict)
    assert one["channels"][0]["best_z_index"] == docs[1]["channels"][0]["best_z_index"]


def test_layer_to_stack_one_rule() -> None:
    data = np.arange(2 * 5 * 8 * 9, dtype=np.uint16).reshape(2, 5, 8, 9)  # (T, Z, Y, X)
    ls = layer_to_stack(data, scale=(1.0, 0.4, 0.1, 0.1), current_step=(1, 2, 0, 0))
    assert ls.leading_index == (1,) and ls.zcyx.shape == (5, 1, 8, 9)
    np.testing.assert_array_equal(ls.zcyx[:, 0], data[1])
    assert ls.z_step_um == pytest.approx(0.4)
    # the default scale 1.0 is "unknown", not 1 µm; metadata wins over the scale
    assert layer_to_stack(data[0]).z_step_um is None
    meta = {"focusqa": {"z_step_um": 0.25, "stain": "nucleus", "channel_name": "DAPI"}}
    ls2 = layer_to_stack(data[0], scale=(0.4, 1, 1), metadata=meta)
    assert ls2.z_step_um == 0.25 and ls2.stains == ["nucleus"] and ls2.channel_names == ["DAPI"]
    two = layer_to_stack(data[0, 0])
    assert two.two_d and two.zcyx.shape == (1, 1, 8, 9)
    with pytest.raises(ImageError, match="at least 2 dimensions"):
        layer_to_stack(np.zeros(5))
    with pytest.raises(FocusQAError, match="z_step_um must be a number"):
        layer_to_stack(data[0], metadata={"z_step_um": "abc"})


def test_layer_to_stack_real_napari_layer() -> None:
    layers = pytest.importorskip("napari.layers")
    data = np.random.default_rng(0).integers(0, 1000, (3, 4, 16, 16)).astype(np.uint16)
    layer = layers.Image(data, scale=(1, 0.3, 0.1, 0.1), name="cells")
    ls = layer_to_stack(layer, current_step=layer.world_to_data((2 * 1.0, 0, 0, 0)))
    assert ls.leading_index == (2,) and ls.z_step_um == pytest.approx(0.3)
    assert ls.source["layer"] == "cells"
    np.testing.assert_array_equal(np.asarray(ls.zcyx[:, 0]), data[2])
    rgb = layers.Image(np.zeros((16, 16, 3), np.uint8), rgb=True, name="photo")
    with pytest.raises(FocusQAError, match="RGB"):
        layer_to_stack(rgb)


def test_models_lists_invalid_cards_and_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    monkeypatch.setenv("FOCUSQA_MODELS_DIR", str(tmp_path))
    assert main(["models"]) == 1
    out = capsys.readouterr()
    assert "broken" in out.out and "INVALID" in out.out and "invalid model card" in out.err
    assert main(["models", "--json", "-"]) == 1
    rows = json.loads(capsys.readouterr().out)
    bad = [r for r in rows if r["id"] == "broken"]
    assert bad and bad[0]["valid"] is False and "cannot read JSON" in bad[0]["error"]
    assert any(r["id"] == "fqa-levels" and r["valid"] for r in rows)


def test_planes_of_a_stack_keep_the_stack_context(timelapse: Path) -> None:
    """Planes mode on a z-stack gives each plane its SF over its channel's best at the same
    t, and the verdicts then agree with stack mode plane for plane (the far planes of the
    sample stack are never ``in_focus`` in either)."""
    fm = resolve_model(None)
    planes = [r for _p, r in iter_planes(timelapse, fm)]
    stacks = assess_file(timelapse, fm, "stack")
    by_key = {(r.source["t_index"], r.source["channel_index"], r.source["z_index"]): r
              for r in planes}
    for st in stacks:
        ti = st.source["t_index"]
        for ch in st.channels:
            sf = ch.sf
            for z, s in enumerate(ch.slices):
                r = by_key[(ti, ch.channel, z)]
                assert r.stack_sf_ratio == pytest.approx(sf[z] / np.nanmax(sf), rel=1e-6)
                assert r.verdict == s.verdict
            assert max(r.stack_sf_ratio for (t_, c_, _z), r in by_key.items()
                       if t_ == ti and c_ == ch.channel) == pytest.approx(1.0)
    far = [r for r in planes if r.stack_sf_ratio is not None and r.stack_sf_ratio < 0.5]
    assert far and all(r.verdict != "in_focus" for r in far)
    rec = planes[0].to_record()
    assert "stack_sf_ratio" in rec


def test_single_plane_file_has_no_stack_context(tmp_path: Path) -> None:
    path = tmp_path / "one.tif"
    tifffile.imwrite(path, make_sample_stack().data[0, 10, 0])
    [(_p, r)] = list(iter_planes(path, None))
    assert r.stack_sf_ratio is None
