"""Config-driven training: data generation, the training loop, ONNX export and the card."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from napari_focusqa.training import data as D
from napari_focusqa.training import evaluate as E
from napari_focusqa.training.export import export_onnx, save_card
from napari_focusqa.training.nets import (
    DistanceNet,
    LeanLevels,
    StainLevels,
    YangNet,
    count_macs,
    count_params,
    rps_loss,
)
from napari_focusqa.training.simulate import LevelSpec, NoiseModel, Optics

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
REPO = Path(__file__).resolve().parents[2]

DEFAULTS: dict[str, Any] = {
    "task": "levels",
    "arch": "lean",
    "widths": [8, 16, 32, 64],
    "hidden": 64,
    "sources": ["procedural"],
    "seed": 0,
    "procedural_per_stain": 8,
    "procedural_per_stain_test": 3,
    "procedural_size": 384,
    "per_level": 40,
    "per_level_test": 16,
    "optics": {"wavelength_um": 0.5, "na": 0.5, "n": 1.0, "pixel_um": 0.645, "sa_waves": 0.0},
    "levels": {"num_levels": 11, "d0_px": 3.0, "step_px": 2.7},
    "distance": {"z_max_dof": 10.0, "z_step_dof": 0.25},
    "normalisation": {"method": "log-zscore", "eps": 0.01},
    "noise": {"photons": [30.0, 3000.0], "gain": [0.2, 5.0], "offset": [1.0, 1000.0], "read_noise": 1.0},
    "batch_size": 128,
    "lr": 3e-3,
    "weight_decay": 1e-4,
    "warmup_steps": 100,
    "time_budget_s": 600,
    "max_steps": 200000,
    "steps": None,
    "threads": 1,
    "bf16": True,
    "stain_dropout": 0.3,
    "in_focus_max_level": 1,
    "out_dir": "models",
    "log_every": 200,
}


def load_config(path: str | os.PathLike[str] | None, **overrides: Any) -> dict[str, Any]:
    """Read a JSON config (a bare name is looked up in ``training/configs``), apply overrides."""
    cfg = json.loads(json.dumps(DEFAULTS))
    if path is not None:
        p = Path(path)
        if not p.is_file():
            cand = CONFIG_DIR / (p.name if p.suffix == ".json" else f"{p.name}.json")
            if not cand.is_file():
                raise FileNotFoundError(f"config: no such file {path} (nor {cand})")
            p = cand
        user = json.loads(p.read_text())
        for k, v in user.items():
            if isinstance(v, dict) and isinstance(cfg.get(k), dict):
                cfg[k] = {**cfg[k], **v}
            else:
                cfg[k] = v
        cfg["config_path"] = str(p)
    for k, v in overrides.items():
        if v is not None:
            cfg[k] = v
    return cfg


def optics_of(cfg: dict[str, Any]) -> Optics:
    """The :class:`Optics` of a config."""
    return Optics(**cfg["optics"])


def level_spec(cfg: dict[str, Any]) -> LevelSpec:
    """The :class:`LevelSpec` (blur diameters and z of the levels) of a config."""
    return LevelSpec(optics_of(cfg), **cfg["levels"])


def z_grid(cfg: dict[str, Any], split: str) -> list[float]:
    """Defocus values (um) of the data set: level z's, or a signed grid for distance."""
    if cfg["task"] != "distance":
        return level_spec(cfg).z_um()
    o = optics_of(cfg)
    zmax = float(cfg["distance"]["z_max_dof"])
    step = float(cfg["distance"]["z_step_dof"])
    # the test grid sits half-way between training values: unseen defocus distances
    start = -zmax + (step / 2 if split != "train" else 0.0)
    g = np.arange(start, zmax + 1e-9, step)
    return [float(v * o.dof_um) for v in g]


def build_set(cfg: dict[str, Any], split: str, mix: bool = True,
              cache: Any = None) -> D.PatchSet:
    """Deterministic defocused patch set of ``split`` ("train" / "val" / "test").

    The widefield part comes first and is the same with or without ``cfg["mix"]``; with a
    ``mix`` section (and ``mix=True``) the sectioned / sparse / noise patches of
    :func:`napari_focusqa.training.mixdata.make_mixed_set` follow, marked by ``kind``.
    ``cache(name, key_cfg, builder)`` may store the two parts (see :func:`cached_set`).
    """
    sources = D.collect_sources(cfg, split)
    noise = NoiseModel(tuple(cfg["noise"]["photons"]), tuple(cfg["noise"]["gain"]),
                       tuple(cfg["noise"]["offset"]), float(cfg["noise"]["read_noise"]))
    per = int(cfg["per_level"] if split == "train" else cfg["per_level_test"])
    seed = int(cfg["seed"]) * 7919 + {"train": 1, "test": 2, "val": 3}[split]

    def base_fn() -> D.PatchSet:
        return D.make_patch_set(sources, z_grid(cfg, split), optics_of(cfg), per, seed,
                                cfg["normalisation"], noise, random_sign=False)

    keys = {k: cfg.get(k) for k in DATA_KEYS if k not in ("mix", "task")}
    keys["distance_task"] = cfg["task"] == "distance"  # the data do not depend on the head
    base = cache(f"{split}-base", keys, base_fn) if cache else base_fn()
    mc = cfg.get("mix")
    if not (mix and mc) or cfg["task"] == "distance":
        return base
    from napari_focusqa.training import mixdata

    train = split == "train"
    size = int(cfg.get("procedural_size", 384))

    def mix_fn() -> D.PatchSet:
        sparse = mixdata.sparse_sources(
            int(mc["sparse_images"] if train else mc["sparse_images_test"]), seed, (size, size))
        corr = mc.get("noise_corr") or {}
        detector = mixdata.DetectorModel(
            corr_p=float(corr.get("p", 0.0)),
            corr_sigma=tuple(corr.get("sigma", (0.3, 1.2))))  # type: ignore[arg-type]
        return mixdata.make_mixed_set(
            sources, sparse, z_grid(cfg, split), optics_of(cfg),
            int(mc["per_level"] if train else mc["per_level_test"]), seed, cfg["normalisation"],
            noise, int(mc["noise_patches"] if train else mc["noise_patches_test"]), detector)

    extra = cache(f"{split}-mix", {**keys, "mix": mc}, mix_fn) if cache else mix_fn()
    return mixdata.concat(base, extra)


DATA_KEYS = ("task", "sources", "seed", "procedural_per_stain", "procedural_per_stain_test",
             "procedural_per_stain_val", "procedural_size", "per_level", "per_level_test",
             "optics", "levels", "distance", "normalisation", "noise", "mix", "validation_split")


def _npz_cache(folder: str, log: Any) -> Any:
    import hashlib

    def cache(name: str, key_cfg: dict[str, Any], fn: Any) -> D.PatchSet:
        key = json.dumps(key_cfg, sort_keys=True)
        path = Path(folder) / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
        if path.is_file():
            z = np.load(path)
            log(f"[data] {name} from cache {path}")
            return D.PatchSet(z["x"], z["level"], z["z"], z["stain"], z["fg"], z["source"],
                              z["kind"])
        ps = fn()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, x=ps.x, level=ps.level, z=ps.z, stain=ps.stain, fg=ps.fg,
                 source=ps.source, kind=ps.kinds())
        tmp.replace(path)
        return ps

    return cache


def cached_set(cfg: dict[str, Any], split: str, log: Any = print) -> D.PatchSet:
    """:func:`build_set` with its widefield and mixed parts stored in
    ``$FOCUSQA_TRAIN_CACHE`` (if set) under hashes of the config keys that define them, so
    that runs on the same data (fqa-levels and fqa-stain) generate each part once."""
    folder = os.environ.get("FOCUSQA_TRAIN_CACHE")
    return build_set(cfg, split, cache=_npz_cache(folder, log) if folder else None)


def make_net(cfg: dict[str, Any]) -> torch.nn.Module:
    """The network named by ``cfg["arch"]`` (lean, yang, stain, distance)."""
    k = int(cfg["levels"]["num_levels"])
    w = tuple(cfg["widths"])
    arch = cfg["arch"]
    if arch == "yang":
        return YangNet(k)
    if arch == "lean":
        return LeanLevels(k, w, int(cfg["hidden"]))
    if arch == "stain":
        return StainLevels(k, len(D.STAIN_CLASSES), w, hidden=int(cfg["hidden"]))
    if arch == "distance":
        return DistanceNet(w, hidden=int(cfg["hidden"]))
    raise ValueError(f"arch: unknown {arch!r}")


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random dihedral transform (rotation of the batch, per-sample flips)."""
    k = int(torch.randint(0, 4, (1,), generator=gen))
    x = torch.rot90(x, k, dims=(2, 3))
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def _loss(cfg: dict[str, Any], net: torch.nn.Module, xb: torch.Tensor, yb: torch.Tensor,
          sb: torch.Tensor, zb: torch.Tensor, fb: torch.Tensor, gen: torch.Generator,
          dof: float) -> torch.Tensor:
    task = cfg["task"]
    if task == "levels":
        logits = net(xb).float()
        return rps_loss(torch.softmax(logits, dim=1), yb)
    if task == "levels-stain":
        drop = torch.rand(sb.shape[0], generator=gen) < float(cfg["stain_dropout"])
        sb = torch.where(drop, torch.zeros_like(sb), sb)
        return rps_loss(net(xb, sb).float(), yb)
    d, c = net(xb)
    d = d.float()
    c = c.float()
    target = zb / dof
    w = torch.where(fb, 1.0, 0.1)
    reg = (F.smooth_l1_loss(d, target, reduction="none", beta=1.0) * w).sum() / w.sum()
    ok = ((d.detach() - target).abs() <= 1.0).float()
    conf = F.binary_cross_entropy_with_logits(c, ok)
    return reg + 0.5 * conf


def train(cfg: dict[str, Any], train_set: D.PatchSet, log: Any = print,
          val_set: D.PatchSet | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train the configured network on ``train_set``.

    The number of steps is ``cfg["steps"]`` when given; otherwise it is fixed after 20
    timed steps so that the run fits ``time_budget_s`` (the card records it, and
    ``--steps N`` reproduces the same schedule).

    Returns
    -------
    (net, info)
        The trained network (float32, eval mode) and training statistics.
    """
    torch.manual_seed(int(cfg["seed"]))
    torch.set_num_threads(int(cfg["threads"]))
    gen = torch.Generator().manual_seed(int(cfg["seed"]))
    net = make_net(cfg)
    if cfg.get("init_from"):  # fine-tune a shipped model (weights read back from its ONNX)
        from napari_focusqa.training.warmstart import load_onnx_into

        src = Path(cfg["init_from"])
        src = src if src.is_absolute() else REPO / src
        pick = torch.randint(0, len(train_set), (2048,), generator=gen)
        load_onnx_into(net, src, torch.from_numpy(train_set.x[pick.numpy()]).float()[:, None],
                       torch.from_numpy(train_set.stain[pick.numpy()])
                       if cfg["arch"] == "stain" else None)
        log(f"[train] warm start from {src}")
    net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = torch.optim.AdamW(net.parameters(), lr=float(cfg["lr"]),
                            weight_decay=float(cfg["weight_decay"]), fused=True)
    x_all = torch.from_numpy(train_set.x)
    y_all = torch.from_numpy(train_set.level)
    s_all = torch.from_numpy(train_set.stain)
    z_all = torch.from_numpy(train_set.z)
    f_all = torch.from_numpy(train_set.fg)
    n = len(train_set)
    bs = int(cfg["batch_size"])
    dof = optics_of(cfg).dof_um
    total = int(cfg["steps"]) if cfg.get("steps") else None
    warm = int(cfg["warmup_steps"])
    lr0 = float(cfg["lr"])
    t0 = time.time()
    losses: list[float] = []
    curve: list[tuple[int, float]] = []
    step = 0
    net.train()
    while True:
        if total is None and step == 20:
            per = (time.time() - t0) / 20
            total = max(21, min(int(cfg["max_steps"]), int(float(cfg["time_budget_s"]) / per)))
            log(f"[train] {per * 1000:.1f} ms/step -> {total} steps")
        if total is not None and step >= total:
            break
        frac = step / total if total else 0.0
        lr = lr0 * min(1.0, (step + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randint(0, n, (bs,), generator=gen)
        xb = _augment(x_all[idx].float()[:, None], gen).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(cfg["bf16"])):
            loss = _loss(cfg, net, xb, y_all[idx], s_all[idx], z_all[idx], f_all[idx], gen, dof)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % int(cfg["log_every"]) == 0 or step == total:
            m = float(np.mean(losses[-int(cfg["log_every"]):]))
            curve.append((step, round(m, 5)))
            log(f"[train] step {step}/{total} loss {m:.4f} lr {lr:.2e} {time.time() - t0:.0f}s")
    net.eval()
    info = {
        "steps": step,
        "wall_clock_s": round(time.time() - t0, 1),
        "first_loss": round(float(np.mean(losses[: max(1, min(10, step // 5))])), 5),
        "final_loss": round(float(np.mean(losses[-max(1, min(50, step // 5)) :])), 5),
        "loss_curve": curve,
    }
    return net.float(), info


def predict_onnx(onnx_path: Path, ps: D.PatchSet, task: str, stain: np.ndarray | None = None,
                 threads: int = 1, batch: int = 512) -> dict[str, np.ndarray]:
    """Run an exported model over a whole (already normalised) patch set."""
    outs: dict[str, list[np.ndarray]] = {}
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    for i in range(0, len(ps), batch):
        feed = {"patches": ps.x[i : i + batch].astype(np.float32)[:, None]}
        if task == "levels-stain":
            s = ps.stain if stain is None else stain
            feed["stain"] = s[i : i + batch].astype(np.int64)
        for nm, v in zip(names, sess.run(names, feed)):
            outs.setdefault(nm, []).append(v)
    return {k: np.concatenate(v) for k, v in outs.items()}


def evaluate_set(cfg: dict[str, Any], onnx_path: Path, ps: D.PatchSet, threads: int = 1
                 ) -> dict[str, Any]:
    """Held-out metrics (foreground patches, all patches, per stain, whole images)."""
    task = cfg["task"]
    fg = ps.fg
    names = np.asarray(D.STAIN_CLASSES)
    if task == "distance":
        dof = optics_of(cfg).dof_um
        o = predict_onnx(onnx_path, ps, task, threads=threads)
        true = ps.z / dof
        dres: dict[str, Any] = {"foreground": E.distance_metrics(o["distance"][fg], o["confidence"][fg], true[fg]),
               "all": E.distance_metrics(o["distance"], o["confidence"], true),
               "background_mean_confidence": round(float(o["confidence"][~fg].mean()), 4)
               if (~fg).any() else None}
        dres["per_stain"] = {str(names[s]): E.distance_metrics(
            o["distance"][fg & (ps.stain == s)], o["confidence"][fg & (ps.stain == s)],
            true[fg & (ps.stain == s)]) for s in np.unique(ps.stain)}
        return dres
    variants = {"with_stain": None, "without_stain": np.zeros_like(ps.stain)} \
        if task == "levels-stain" else {"": None}
    res: dict[str, Any] = {}
    from napari_focusqa.core.assess import certainty

    kind = ps.kinds()
    wide = kind == 0
    full = ps
    ps = D.PatchSet(ps.x[wide], ps.level[wide], ps.z[wide], ps.stain[wide], ps.fg[wide],
                    ps.source[wide])
    fg = ps.fg
    for vname, st in variants.items():
        p_all = predict_onnx(onnx_path, full, task, stain=None if st is None
                             else np.zeros_like(full.stain), threads=threads)["probabilities"]
        p = p_all[wide]
        r: dict[str, Any] = {
            "foreground": E.level_metrics(p[fg], ps.level[fg]),
            "all": E.level_metrics(p, ps.level),
            "images": E.image_level_metrics(p, ps.level, ps.source * 1000 + ps.level),
            "certainty_foreground": round(float(certainty(p[fg]).mean()), 4),
            "certainty_background": round(float(certainty(p[~fg]).mean()), 4) if (~fg).any() else None,
        }
        per = {}
        for s in np.unique(ps.stain):
            m = fg & (ps.stain == s)
            mm = E.level_metrics(p[m], ps.level[m])
            mm.pop("confusion", None)
            per[str(names[s])] = mm
        r["per_stain"] = per
        if (~wide).any():
            r["by_kind"] = E.kind_metrics(p_all, full, int(cfg["in_focus_max_level"]))
        if vname:
            res[vname] = r
        else:
            res = r
    return res


def headline(cfg: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """A few headline numbers for the card."""
    if cfg["task"] == "distance":
        f = metrics["foreground"]
        return {k: f.get(k) for k in ("mean_focus_error_dof", "within_half_dof", "within_1_dof",
                                      "wrong_direction_rate")}
    m = metrics["with_stain"] if cfg["task"] == "levels-stain" else metrics
    f = m["foreground"]
    return {"patch_accuracy": f["accuracy"], "patch_within_1": f["within_1"], "patch_ece": f["ece"],
            "image_accuracy": m["images"]["accuracy"], "image_within_1": m["images"]["within_1"]}


def build_card(cfg: dict[str, Any], net: torch.nn.Module, info: dict[str, Any],
               train_set: D.PatchSet, metrics: dict[str, Any], onnx_name: str) -> dict[str, Any]:
    """The model card (docs/model-card.md) of a trained network; sha256 is filled on save."""
    spec = level_spec(cfg)
    o = optics_of(cfg)
    task = cfg["task"]
    x = torch.zeros(1, 1, 84, 84)
    ex: tuple[torch.Tensor, ...] = (x, torch.zeros(1, dtype=torch.int64)) if task == "levels-stain" else (x,)
    real = sorted({s["file"] for s in D.REAL_SOURCES}) if "shared" in cfg["sources"] else []
    card: dict[str, Any] = {
        "format_version": 1,
        "id": cfg["id"],
        "task": task,
        "description": cfg.get("description", ""),
        "onnx": onnx_name,
        "sha256": "",
        "patch_size": 84,
        "num_classes": int(cfg["levels"]["num_levels"]) if task != "distance" else None,
        "blur_diameter_px": [round(d, 2) for d in spec.diameters_px()] if task != "distance" else None,
        "in_focus_max_level": int(cfg["in_focus_max_level"]) if task != "distance" else None,
        "input_normalisation": cfg["normalisation"],
        "inputs": {"patches": "patches", "stain": "stain" if task == "levels-stain" else None},
        "outputs": {"distance": "distance", "confidence": "confidence"} if task == "distance"
        else {"probabilities": "probabilities"},
        "stains": list(D.STAIN_CLASSES) if task == "levels-stain" else ["generic"],
        "dof_um": o.dof_um if task == "distance" else None,
        "optics": o.to_dict(),
        "training_data": {
            "sources": cfg["sources"],
            "real_images": real,
            "real_images_credit": "../shared/data README: BBBC006 (Ljosa et al. 2012, via "
            "google/microscopeimagequality), BioImageAnalysisNotebooks (BPAE, HeLa), "
            "NEUBIAS training-resources" if real else None,
            "procedural_per_stain": cfg["procedural_per_stain"],
            "patches": len(train_set),
            "foreground_fraction": round(float(train_set.fg.mean()), 4),
            "defocus_z_um": [round(z, 3) for z in z_grid(cfg, "train")]
            if task != "distance" else {"z_max_dof": cfg["distance"]["z_max_dof"],
                                        "z_step_dof": cfg["distance"]["z_step_dof"]},
            "psf": "Born-Wolf (Yang et al. 2018), Gauss-Legendre quadrature, pixel-integrated",
            "mix": cfg.get("mix"),
            "noise": cfg["noise"],
            "split": "held-out by field: BBBC006 wells a08/a09, HeLa and NEUBIAS 3-channel "
            "images, procedural seeds + 100000"
            + ("; validation: BBBC006 well a07, procedural seeds + 200000"
               if cfg.get("validation_split") else ""),
        },
        "training": {
            "config": os.path.relpath(cfg.get("config_path", ""), REPO) if cfg.get("config_path") else None,
            "command": f"focusqa-train {Path(cfg.get('config_path') or cfg['id']).stem} "
            f"--steps {info['steps']}",
            "init_from": cfg.get("init_from"),
            "seed": int(cfg["seed"]),
            "steps": info["steps"],
            "wall_clock_s": info["wall_clock_s"],
            "batch_size": cfg["batch_size"],
            "threads": cfg["threads"],
            "first_loss": info["first_loss"],
            "final_loss": info["final_loss"],
            "machine": f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}",
        },
        "metrics": {"headline": headline(cfg, metrics), "heldout_synthetic": metrics},
        "mac_per_patch": count_macs(net, ex),
        "params": count_params(net),
    }
    return card


def run(cfg: dict[str, Any], log: Any = print) -> dict[str, Any]:
    """Generate data, train, export ONNX, evaluate on held-out data and write the card."""
    t0 = time.time()
    out_dir = Path(cfg["out_dir"])
    if not out_dir.is_absolute():
        out_dir = REPO / out_dir
    log(f"[data] building training set for {cfg['id']} from {cfg['sources']}")
    train_set = cached_set(cfg, "train", log)
    val_set = cached_set(cfg, "val", log) if cfg.get("validation_split") else None
    log(f"[data] {len(train_set)} train / {len(val_set) if val_set else 0} validation patches "
        f"in {time.time() - t0:.0f}s (foreground {train_set.fg.mean():.2f})")
    net, info = train(cfg, train_set, log)
    onnx_name = f"{cfg['id']}.onnx"
    onnx_path = export_onnx(cfg["task"], net, out_dir / onnx_name)
    val = evaluate_set(cfg, onnx_path, val_set, threads=int(cfg["threads"])) if val_set else None
    if val is not None:
        log(f"[val] {json.dumps(headline(cfg, val))}")
    # the test split is read once, after training, for the card
    test_set = cached_set(cfg, "test", log)
    metrics = evaluate_set(cfg, onnx_path, test_set, threads=int(cfg["threads"]))
    card = build_card(cfg, net, info, train_set, metrics, onnx_name)
    if val is not None:
        card["metrics"]["validation_synthetic"] = val
    path = save_card(card, out_dir)
    if cfg.get("save_state"):
        torch.save(net.state_dict(), Path(cfg["save_state"]))
    log(f"[done] {path} headline {json.dumps(card['metrics']['headline'])} "
        f"total {time.time() - t0:.0f}s")
    return card
