"""bioimage.io packages: every shipped model exports to a package that bioimageio.core's
test_model passes, and packages (ours, zipped, or a compatible third-party one) run as
``--model`` with the same numbers as FocusQA's own cards."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import component_required

pytest.importorskip("onnx")
pytest.importorskip("yaml")
pytest.importorskip("bioimageio.spec")

from napari_focusqa.bioimageio.export import SHIPPED, export_model, export_zip  # noqa: E402
from napari_focusqa.bioimageio.loader import load_package  # noqa: E402
from napari_focusqa.core.assess import assess_image  # noqa: E402
from napari_focusqa.core.errors import ModelCardError  # noqa: E402
from napari_focusqa.core.model import load_model  # noqa: E402
from napari_focusqa.io.sample_data import make_sample_stack  # noqa: E402

# bioimageio.spec 0.5.12 (pinned by bioimageio.core 0.11) cannot validate any model with
# pydantic >= 2.14 / pydantic-core >= 2.50: its serializer passes SerializationInfo where
# pydantic-core now expects an index key. The [bioimageio] extra pins pydantic < 2.14;
# bioimageio.spec >= 0.5.14 works with either.


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("bioimageio")
    return {mid: export_model(mid, out) for mid in SHIPPED}


def _spec_usable() -> None:
    import bioimageio.spec
    import pydantic

    spec = tuple(int(v) for v in bioimageio.spec.__version__.split(".")[:3])
    pyd = tuple(int(v) for v in pydantic.VERSION.split(".")[:2])
    if spec < (0, 5, 14) and pyd >= (2, 14):
        msg = (f"bioimageio.spec {bioimageio.spec.__version__} cannot validate models with "
               f"pydantic {pydantic.VERSION}; the [bioimageio] extra pins pydantic < 2.14")
        if component_required("BIOIMAGEIO"):
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.mark.parametrize("model_id", SHIPPED)
def test_test_model_passes(packages: dict[str, Path], model_id: str) -> None:
    _spec_usable()
    from bioimageio.core import test_model

    summary = test_model(packages[model_id])
    failures = [f"{d.name}: {e.msg}" for d in summary.details for e in d.errors]
    assert summary.status == "passed", failures
    names = [d.name for d in summary.details]
    assert any("Reproduce test outputs" in n for n in names), names  # the weights really ran


def test_package_contents(packages: dict[str, Path]) -> None:
    import yaml

    for mid, yaml_path in packages.items():
        rdf = yaml.safe_load(yaml_path.read_text())
        folder = yaml_path.parent
        assert rdf["type"] == "model" and rdf["license"] == "BSD-3-Clause"
        assert "onnx" in rdf["weights"] and (folder / rdf["weights"]["onnx"]["source"]).is_file()
        assert any(c.get("doi") == "10.1186/s12859-018-2087-4" for c in rdf["cite"])
        assert len(rdf["cite"]) == 4  # Yang et al. 2018 + the three other seed papers
        doc = (folder / rdf["documentation"]).read_text()
        assert "BBBC006" in doc and "log(1 + max(x, 0))" in doc
        assert all((folder / c).stat().st_size > 10_000 for c in rdf["covers"])
        assert rdf["config"]["focusqa"]["card"]["id"] == mid
        # test outputs are our pipeline's: the card model on the test input
        x = np.load(folder / "test_input_patches.npy")
        fm = load_model(mid)
        stain = np.load(folder / "test_input_stain.npy") if mid == "fqa-stain" else None
        for i in range(len(x)):
            ref = fm.run(x[i : i + 1, 0], stain=None if stain is None else int(stain[i]))
            for name, arr in ref.items():
                saved = np.load(folder / f"test_output_{name}.npy")[i : i + 1]
                np.testing.assert_allclose(saved, arr, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("model_id", ["fqa-levels", "fqa-stain"])
def test_package_as_model_matches_card(packages: dict[str, Path], model_id: str,
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # where zips unpack
    sample = make_sample_stack()
    card_model = load_model(model_id)
    zipped = export_zip(packages[model_id], tmp_path / f"{model_id}.zip")
    for ref in (packages[model_id].parent, packages[model_id], zipped):
        pkg = load_package(ref)
        assert pkg.task == card_model.task and pkg.stains == card_model.stains
        for z in (10, 16):
            plane = sample.data[0, z, 1]
            a = assess_image(plane, pkg, stain="actin")
            b = assess_image(plane, card_model, stain="actin")
            np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-4)
            assert a.predicted_level == b.predicted_level


def test_cli_export_and_assess_with_package(tmp_path: Path) -> None:
    import os

    import tifffile

    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))  # where zips unpack
    out = tmp_path / "pk"
    r = subprocess.run([sys.executable, "-m", "napari_focusqa", "export", "fqa-levels",
                        "--format", "bioimageio", "--out", str(out), "--zip"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    img = tmp_path / "plane.tif"
    tifffile.imwrite(img, make_sample_stack().data[0, 10, 0])
    recs = {}
    for ref in (str(out / "fqa-levels.bioimageio.zip"), "fqa-levels"):
        r = subprocess.run([sys.executable, "-m", "napari_focusqa", "assess", str(img),
                            "--model", ref, "--json", "-"], capture_output=True, text=True,
                           timeout=600, env=env)
        assert r.returncode == 0, r.stderr
        recs[ref] = json.loads(r.stdout)[0]
    a, b = recs.values()
    assert a["predicted_level"] == b["predicted_level"]
    assert a["expected_level"] == pytest.approx(b["expected_level"], abs=1e-4)


def test_broken_packages_refused(packages: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(packages["fqa-levels"].parent, bad)
    onnx_file = bad / "fqa-levels.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ModelCardError, match="sha256 mismatch"):
        load_package(bad)
    r = subprocess.run([sys.executable, "-m", "napari_focusqa", "assess", "x.tif", "--model",
                        str(bad / "bioimageio.yaml")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    text = (packages["fqa-levels"]).read_text().replace("  onnx:", "  torchscript:")
    (bad / "bioimageio.yaml").write_text(text)
    with pytest.raises(ModelCardError, match="no ONNX weights"):
        load_package(bad)


def test_third_party_package_with_spec_preprocessing(tmp_path: Path) -> None:
    """A compatible package that is not ours: zero_mean_unit_variance in the spec."""
    import yaml

    from napari_focusqa.core.model import normalise_patches, sha256_file
    from napari_focusqa.testing import build_sharpness_model

    card_path = build_sharpness_model(tmp_path / "m", "third-party")
    card = json.loads(card_path.read_text())
    folder = tmp_path / "pkg"
    folder.mkdir()
    shutil.copy(card_path.parent / card["onnx"], folder / "w.onnx")
    rdf = {
        "type": "model", "format_version": "0.5.4", "name": "third party levels",
        "description": "Laplacian-energy levels", "license": "MIT",
        "authors": [{"name": "someone"}], "cite": [{"text": "x", "url": "https://example.org"}],
        "inputs": [{"id": "patches", "axes": [
            {"type": "batch"}, {"type": "channel", "channel_names": ["raw"]},
            {"type": "space", "id": "y", "size": 84}, {"type": "space", "id": "x", "size": 84}],
            "preprocessing": [{"id": "zero_mean_unit_variance",
                               "kwargs": {"axes": ["y", "x"], "eps": 1e-6}}]}],
        "outputs": [{"id": "probabilities", "axes": [
            {"type": "batch"},
            {"type": "channel", "channel_names": [f"l{k}" for k in range(11)]}]}],
        "weights": {"onnx": {"source": "w.onnx", "sha256": sha256_file(folder / "w.onnx"),
                             "opset_version": 17}},
    }
    (folder / "rdf.yaml").write_text(yaml.safe_dump(rdf))
    pkg = load_package(folder)
    assert pkg.card["input_normalisation"] == {"method": "zscore", "eps": 1e-6}
    assert pkg.num_classes == 11 and pkg.in_focus_max_level == 2
    patches = make_sample_stack().data[0, [10, 18], 0, :84, :84].astype(np.float32)
    z = normalise_patches(patches, {"method": "zscore", "eps": 1e-6})[:, None]
    ref = pkg.session.run(None, {"patches": z})[0]
    np.testing.assert_allclose(pkg.predict_proba(patches), ref, atol=1e-6)
    rdf["inputs"][0]["preprocessing"] = [{"id": "sigmoid"}]
    (folder / "rdf.yaml").write_text(yaml.safe_dump(rdf))
    with pytest.raises(ModelCardError, match="pre-processing"):
        load_package(folder / "rdf.yaml")
