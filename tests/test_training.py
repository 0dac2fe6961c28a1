"""Model factory: losses, procedural source, smoke training, ONNX export, cards, shipped models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from napari_focusqa.core.model import load_model, normalise_patches  # noqa: E402
from napari_focusqa.training import data as D  # noqa: E402
from napari_focusqa.training import procedural  # noqa: E402
from napari_focusqa.training.export import export_onnx, onnx_outputs, torch_outputs  # noqa: E402
from napari_focusqa.training.nets import (  # noqa: E402
    DistanceNet,
    LeanLevels,
    StainLevels,
    YangNet,
    count_macs,
    ordinal_probs,
    rps_loss,
)
from napari_focusqa.training.train import (  # noqa: E402
    build_card,
    build_set,
    evaluate_set,
    load_config,
    train,
)

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"


# --- losses -----------------------------------------------------------------------------
def test_rps_perfect_prediction_is_zero() -> None:
    y = torch.tensor([0, 3, 10])
    p = torch.nn.functional.one_hot(y, 11).float()
    assert float(rps_loss(p, y)) == 0.0


def test_rps_ordered_errors_cost_more() -> None:
    y = torch.tensor([5])
    costs = [float(rps_loss(torch.nn.functional.one_hot(torch.tensor([k]), 11).float(), y))
             for k in (5, 6, 7, 9)]
    assert costs == sorted(costs) and costs[0] == 0.0 and costs[1] > 0
    assert costs[3] == pytest.approx(4.0)  # one-hot 4 levels away: four CDF steps of 1
    near = torch.zeros(1, 11)
    near[0, 4] = near[0, 6] = 0.5
    far = torch.zeros(1, 11)
    far[0, 0] = far[0, 10] = 0.5
    assert float(rps_loss(near, y)) < float(rps_loss(far, y))


def test_ordinal_probs_are_distributions() -> None:
    net = StainLevels(widths=(4, 8, 8, 16), hidden=8)
    cuts = net.cuts(torch.arange(7))
    assert (cuts.diff(dim=1) > 0).all()
    p = ordinal_probs(torch.tensor([-10.0, 0.0, 10.0]), torch.tensor([0.1, 3.0, 0.1]), cuts[:3])
    np.testing.assert_allclose(p.sum(1).detach().numpy(), 1.0, atol=1e-5)
    assert int(p[0].argmax()) == 0 and int(p[2].argmax()) == 10
    assert float(p[1].max()) < 0.2  # wide spread -> flat, uncertain distribution


# --- architectures ----------------------------------------------------------------------
def test_mac_budgets() -> None:
    x = torch.zeros(1, 1, 84, 84)
    yang = count_macs(YangNet(), (x,))
    lean = count_macs(LeanLevels(11, (8, 16, 32, 64)), (x,))
    assert 120e6 < yang < 130e6  # the paper's ~125 M MAC
    assert lean <= yang / 10
    assert count_macs(DistanceNet(), (x,)) < 10e6


# --- procedural source -------------------------------------------------------------------
@pytest.mark.parametrize("stain", list(procedural.STAINS) + ["generic"])
def test_procedural_images_have_structure_and_background(stain: str) -> None:
    a = procedural.generate(stain, np.random.default_rng(3), (192, 192))
    b = procedural.generate(stain, np.random.default_rng(3), (192, 192))
    np.testing.assert_array_equal(a, b)  # deterministic given the seed
    assert a.dtype == np.float32 and a.min() >= 0
    fg = (a > 0.15).mean()
    assert 0.002 < fg < 0.8  # some structure and some empty background
    # sharp: strong pixel-to-pixel differences where there is structure
    assert np.abs(np.diff(a, axis=1)).max() > 0.05


def test_patch_set_uses_core_normalisation() -> None:
    cfg = load_config("smoke")
    src = D.procedural_sources(1, 0, (128, 128))[:2]
    ps = D.make_patch_set(src, [0.0, 10.0], Optics_default(), 3, 0, cfg["normalisation"])
    assert ps.x.shape == (12, 84, 84) and ps.x.dtype == np.float16
    x = ps.x.astype(np.float32)
    # log-zscore: per-patch mean 0, std <= 1 (eps), and idempotent up to eps effects
    np.testing.assert_allclose(x.mean(axis=(1, 2)), 0.0, atol=1e-2)
    assert (x.std(axis=(1, 2)) <= 1.01).all()
    assert set(ps.level.tolist()) == {0, 1}


def Optics_default():  # noqa: N802 - tiny helper
    from napari_focusqa.training.simulate import Optics

    return Optics()


# --- smoke training, export, card ------------------------------------------------------
@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("smoke_models")
    cfg = load_config("smoke", out_dir=str(out))
    tr = build_set(cfg, "train")
    te = build_set(cfg, "test")
    net, info = train(cfg, tr, log=lambda m: None)
    path = export_onnx("levels", net, out / "fqa-smoke.onnx")
    metrics = evaluate_set(cfg, path, te)
    card = build_card(cfg, net, info, tr, metrics, "fqa-smoke.onnx")
    from napari_focusqa.training.export import save_card

    card_path = save_card(card, out)
    return {"cfg": cfg, "net": net, "info": info, "path": path, "card": card_path, "test": te}


def test_smoke_training_lowers_loss(smoke: dict) -> None:
    info = smoke["info"]
    assert info["steps"] == 40
    assert info["final_loss"] < 0.85 * info["first_loss"], info


def test_exported_onnx_equals_torch(smoke: dict) -> None:
    x = smoke["test"].x[:64].astype(np.float32)[:, None]
    ref = torch_outputs("levels", smoke["net"], x)["probabilities"]
    got = onnx_outputs(smoke["path"], x)["probabilities"]
    np.testing.assert_allclose(got, ref, atol=1e-4)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)


def test_card_validates_with_core(smoke: dict) -> None:
    m = load_model(smoke["card"])
    assert m.task == "levels" and m.num_classes == 11 and m.patch_size == 84
    card = json.loads(Path(smoke["card"]).read_text())
    assert len(card["blur_diameter_px"]) == 11
    assert card["training"]["seed"] == 0 and card["training"]["steps"] == 40
    assert card["metrics"]["headline"]["patch_within_1"] >= 0
    raw = np.random.default_rng(0).poisson(100, (3, 84, 84)).astype(np.float32)
    p = m.predict_proba(raw)
    assert p.shape == (3, 11)


@pytest.mark.parametrize("task", ["levels-stain", "distance"])
def test_stain_and_distance_export(task: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = StainLevels(widths=(4, 8, 8, 16), hidden=8) if task == "levels-stain" else \
        DistanceNet(widths=(4, 8, 8, 16), hidden=8)
    net.eval()
    x = np.random.default_rng(0).standard_normal((5, 1, 84, 84)).astype(np.float32)
    st = np.array([0, 1, 2, 3, 6]) if task == "levels-stain" else None
    path = export_onnx(task, net, tmp_path / "m.onnx")
    ref = torch_outputs(task, net, x, st)
    got = onnx_outputs(path, x, st)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], atol=1e-4)
    if task == "distance":
        assert ((got["confidence"] >= 0) & (got["confidence"] <= 1)).all()


def test_spectral_branch_is_the_power_spectrum() -> None:
    from napari_focusqa.training.nets import SpectralFeatures

    sf = SpectralFeatures(84, 24)
    x = np.random.default_rng(1).standard_normal((2, 1, 84, 84)).astype(np.float32)
    xw = x[:, 0] * np.outer(np.hanning(84), np.hanning(84))
    power = np.abs(np.fft.rfft2(xw)) ** 2
    ref = np.log(power.reshape(2, -1) @ sf.binning.numpy() + 1e-3)
    got = sf(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-3)


def test_cli_smoke(tmp_path: Path) -> None:
    from napari_focusqa.training.__main__ import main

    assert main(["smoke", "--steps", "3", "--out-dir", str(tmp_path)]) == 0
    assert load_model(tmp_path / "fqa-smoke.json").num_classes == 11


# --- real data ---------------------------------------------------------------------------
def test_real_sources_split_by_field() -> None:
    from conftest import require_shared

    require_shared()
    train_src = D.real_sources("train", validation=False)  # first models: no validation split
    test_src = D.real_sources("test")
    assert train_src and test_src
    tr_files = {s.name.split("[")[0] for s in train_src if "bbbc006" not in s.name}
    te_files = {s.name.split("[")[0] for s in test_src if "bbbc006" not in s.name}
    assert not tr_files & te_files
    tr_fields = {s.name for s in train_src if "bbbc006" in s.name}
    te_fields = {s.name for s in test_src if "bbbc006" in s.name}
    assert len(tr_fields) == 7 and len(te_fields) == 2 and not tr_fields & te_fields
    # the validation split takes BBBC006 well a07 out of training, distinct from the test
    val_src = D.real_sources("val")
    tr6 = {s.name for s in D.real_sources("train") if "bbbc006" in s.name}
    val_fields = {s.name for s in val_src}
    assert val_fields == {"bbbc006_hoechst_infocus_9fields.tif[field 6] x1/1"}
    assert tr6 == tr_fields - val_fields and not val_fields & te_fields
    hela = [s for s in test_src if "hela" in s.name and s.name.endswith("x1/1")]
    assert hela and all(s.valid is not None and (~s.valid).any() for s in hela)
    # the masked scale bar sits at the bottom right
    bad = np.argwhere(~hela[0].valid)
    assert bad[:, 0].min() > hela[0].image.shape[0] / 2 and bad[:, 1].min() > hela[0].image.shape[1] / 2


# --- shipped models ----------------------------------------------------------------------
SHIPPED = {"fqa-levels": "levels", "fqa-stain": "levels-stain", "fqa-distance": "distance"}


@pytest.mark.parametrize("model_id", sorted(SHIPPED))
def test_shipped_models_load_and_respect_budgets(model_id: str) -> None:
    card_path = MODELS / f"{model_id}.json"
    if not card_path.is_file() and os.environ.get("FOCUSQA_ALLOW_MISSING_MODELS") == "1":
        pytest.skip(f"{card_path} not built")
    m = load_model(card_path)
    assert m.task == SHIPPED[model_id]
    assert (MODELS / f"{model_id}.onnx").stat().st_size <= 10 * 1024 * 1024
    card = m.card
    assert card["mac_per_patch"] <= 12.5e6  # <= 1/10 of the Yang CNN's 125 M MAC
    assert card["training"]["seed"] == 0 and card["training"]["steps"] > 0
    assert card["metrics"]["headline"]
    rng = np.random.default_rng(0)
    raw = (rng.poisson(50, (4, 84, 84)) * 3 + 100).astype(np.float32)
    out = m.run(raw, stain="nucleus")
    if SHIPPED[model_id] == "distance":
        assert card["dof_um"] > 0 and "optics" in card
        assert out["distance"].shape == (4,) and ((out["confidence"] >= 0) & (out["confidence"] <= 1)).all()
    else:
        assert card["stains"][0] == "generic"
        p = m.predict_proba(raw)
        np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
        # pure noise (no structure) must not be a confident prediction
        from napari_focusqa.core.assess import certainty

        assert certainty(p).mean() < 0.6


def test_normalisation_matches_core_on_constant_patch() -> None:
    spec = load_config("fqa-levels")["normalisation"]
    out = normalise_patches(np.full((1, 84, 84), 300.0), spec)
    assert np.isfinite(out).all() and np.abs(out).max() == 0


# --- sectioned / noise training data, uniform target, warm start ----------------------
def test_rps_uniform_target_is_minimised_by_the_uniform_distribution() -> None:
    k = 11
    target = torch.tensor([-1])
    uniform = torch.full((1, k), 1.0 / k, requires_grad=True)
    loss = rps_loss(uniform, target)
    loss.backward()
    loss_u = float(loss.detach())
    # stationary point on the simplex: the gradient is the same for every class
    g = uniform.grad[0]
    assert float(g.max() - g.min()) < 1e-6
    for c in range(k):
        onehot = torch.nn.functional.one_hot(torch.tensor([c]), k).float()
        assert float(rps_loss(onehot, target)) > loss_u + 0.05
    # a random distribution also scores worse than the uniform one
    p = torch.softmax(torch.randn(64, k, generator=torch.Generator().manual_seed(0)), 1)
    assert float(rps_loss(p, torch.full((64,), -1))) > loss_u


def test_mixed_set_has_every_modality_and_uniform_noise_labels() -> None:
    from napari_focusqa.training.mixdata import KINDS, concat, make_mixed_set, sparse_sources
    from napari_focusqa.training.simulate import LevelSpec, NoiseModel, Optics

    src = D.procedural_sources(1, 3, (160, 160))[:3]
    sparse = sparse_sources(1, 3, (160, 160))
    z = LevelSpec().z_um()[:4]  # four levels keep the kernel computation short
    args = (src, sparse, z, Optics(), 2, 0, {"method": "log-zscore", "eps": 0.01}, NoiseModel(), 40)
    ps = make_mixed_set(*args)
    names = {KINDS[k] for k in np.unique(ps.kinds())}
    assert {"noise", "sparse", "confocal", "spinning-disk", "light-sheet"} <= names
    noise = ps.kinds() == KINDS.index("noise")
    assert noise.sum() == 40 and (ps.level[noise] == -1).all() and not ps.fg[noise].any()
    assert (ps.level[~noise] >= 0).all() and np.isfinite(ps.x.astype(np.float32)).all()
    again = make_mixed_set(*args)
    np.testing.assert_array_equal(ps.x, again.x)  # deterministic in its arguments
    base = D.make_patch_set(src, z, Optics(), 1, 0, {"method": "log-zscore", "eps": 0.01})
    both = concat(base, ps)
    assert len(both) == len(base) + len(ps) and (both.kinds()[: len(base)] == 0).all()
    assert both.source[len(base):][~noise].min() > base.source.max()


@pytest.mark.parametrize("model_id", ["fqa-levels", "fqa-stain"])
def test_warm_start_reproduces_the_onnx_model(model_id: str) -> None:
    from napari_focusqa.training.train import make_net
    from napari_focusqa.training.warmstart import load_onnx_into

    cfg = load_config(f"{model_id}-sectioned")
    onnx_path = REPO / cfg["init_from"]
    src = D.procedural_sources(1, 5, (160, 160))
    from napari_focusqa.training.simulate import LevelSpec, Optics

    ps = D.make_patch_set(src, LevelSpec().z_um(), Optics(), 2, 0, cfg["normalisation"])
    x = ps.x.astype(np.float32)[:, None]
    stain = ps.stain if cfg["arch"] == "stain" else None
    net = make_net(cfg)
    load_onnx_into(net, onnx_path, torch.from_numpy(x),
                   torch.from_numpy(ps.stain) if stain is not None else None)
    a = torch_outputs(cfg["task"], net, x, stain)["probabilities"]
    b = onnx_outputs(onnx_path, x, stain)["probabilities"]
    np.testing.assert_allclose(a, b, atol=1e-4)
    fresh = torch_outputs(cfg["task"], make_net(cfg), x, stain)["probabilities"]
    assert np.abs(fresh - b).max() > 1e-2  # the copy is what makes them agree


def test_whole_field_metrics_run_whole_fields_through_the_core() -> None:
    from napari_focusqa.training.fields import whole_field_metrics
    from napari_focusqa.training.simulate import LevelSpec, NoiseModel, Optics

    m = load_model(MODELS / "fqa-levels.json")
    src = D.procedural_sources(1, 100_000, (256, 256))[:2]
    z = LevelSpec().z_um()
    r = whole_field_metrics(m, src, z, Optics(), NoiseModel(), 0, noise_frames=8)
    wf = r["widefield"]
    assert wf["n_fields"] == 2 * len(z)
    assert wf["within_1"] >= 0.8  # the shipped model on held-out procedural fields
    assert 0.0 <= wf["ece"] <= 1.0 and r["confocal"]["n_fields"] == 2 * len(z)
    assert r["noise"]["n_frames"] == 8
    # the core's verdict never calls a noise frame in focus more often than the bare level
    assert r["noise"]["verdict_in_focus_rate"] <= r["noise"]["in_focus_rate"]
