"""Model cards: loading, validation against the ONNX file, listing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from napari_focusqa.core.errors import ModelCardError
from napari_focusqa.core.model import list_models, load_model, normalise_patches


def _copy(card: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    c = json.loads(card.read_text())
    shutil.copy(card.parent / c["onnx"], dst / c["onnx"])
    shutil.copy(card, dst / card.name)
    return dst / card.name


def test_load_and_run(sharpness_model: Path) -> None:
    m = load_model(sharpness_model)
    assert m.id == "test-sharpness" and m.patch_size == 84 and m.num_classes == 11
    assert load_model(sharpness_model) is m  # one cached session
    rng = np.random.default_rng(0)
    p = rng.poisson(100, (300, 84, 84)).astype(np.uint16)
    probs = m.predict_proba(p, batch_size=128)
    assert probs.shape == (300, 11)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


def test_sha_mismatch(sharpness_model: Path, tmp_path: Path) -> None:
    card = _copy(sharpness_model, tmp_path / "m")
    onnx = card.with_suffix(".onnx")
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    with pytest.raises(ModelCardError, match="sha256 mismatch"):
        load_model(card)


def test_shape_mismatch(sharpness_model: Path, tmp_path: Path) -> None:
    from napari_focusqa.core.model import write_card

    card = _copy(sharpness_model, tmp_path / "m2")
    c = json.loads(card.read_text())
    c["patch_size"] = 64
    write_card(c, card)
    with pytest.raises(ModelCardError, match="patch_size 64 does not match"):
        load_model(card)


def test_corrupt_onnx_and_missing(sharpness_model: Path, tmp_path: Path) -> None:
    from napari_focusqa.core.model import write_card

    card = _copy(sharpness_model, tmp_path / "m3")
    card.with_suffix(".onnx").write_bytes(b"not an onnx file")
    write_card(json.loads(card.read_text()), card)
    with pytest.raises(ModelCardError, match="cannot load"):
        load_model(card)
    with pytest.raises(ModelCardError, match="unknown model id"):
        load_model("no-such-model")
    with pytest.raises(ModelCardError, match="no model card"):
        load_model(tmp_path / "nope.json")


def test_list_models_env(sharpness_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOCUSQA_MODELS_DIR", str(sharpness_model.parent))
    ids = [c["id"] for c in list_models()]
    assert ids[0] == "test-sharpness"
    assert load_model("test-sharpness").id == "test-sharpness"


def test_normalisations_constant_patch() -> None:
    x = np.full((2, 84, 84), 500.0)
    for method in ("zscore", "log-zscore"):
        y = normalise_patches(x, {"method": method})
        assert np.isfinite(y).all() and np.abs(y).max() == 0
    y = normalise_patches(x, {"method": "scale", "scale": 0.01, "offset": -1})
    assert y.max() == pytest.approx(4.0)
    with pytest.raises(ModelCardError, match="input_normalisation"):
        normalise_patches(x, {"method": "weird"})
