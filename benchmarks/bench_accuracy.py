"""Accuracy and speed of the shipped focus models (prints tables, writes JSON).

1. Held-out synthetic defocus of held-out real images (split by field) and held-out
   procedural images: exact / within-one accuracy, ECE, confusion matrix, per stain, whole
   images; the stain ablation (fqa-levels vs fqa-stain without / with the stain); the
   distance model's focus error, fraction within the DoF and wrong-direction rate.
2. Real focal stacks in ../shared/data: Spearman correlation of the predicted (expected)
   level with |z - z_best| and the best-slice error, next to SF and PLLS.
3. Inference time on a 2048 x 2048 image (625 patches) with onnxruntime, 1 and 2 threads,
   next to the Yang et al. architecture.

Usage::

    python benchmarks/bench_accuracy.py [--out runs/bench_accuracy.json] [--update-cards]
        [--skip-synthetic] [--skip-real] [--skip-speed]

``--update-cards`` copies the real-stack and speed numbers into ``models/<id>.json``
(the held-out synthetic numbers there were written by training with the same code and
are checked for equality here).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from napari_focusqa.core import metrics as core_metrics  # noqa: E402
from napari_focusqa.core.assess import aggregate  # noqa: E402
from napari_focusqa.core.model import load_model, write_card  # noqa: E402
from napari_focusqa.core.patches import make_grid  # noqa: E402

MODELS = REPO / "models"
YANG_CARD = REPO / "runs" / "yang-baseline" / "yang-baseline.json"
#: trained from the procedural source alone; evaluated on the fqa-levels test set (real + procedural)
PROCEDURAL_CARD = REPO / "runs" / "procedural" / "fqa-levels-procedural.json"

#: real focal stacks: file, documented best index (None = unknown), z-step, stain
STACKS = (
    {"file": "deconwolf_dapi_widefield_zstack.tif", "best": 19, "dz_um": 0.3, "stain": "nucleus"},
    {"file": "dfnn_lightsheet_mito_defocus_zstack.tif", "best": 19, "dz_um": 0.05,
     "stain": "mitochondria"},
    {"file": "czitools_celldivision_2ch_zstack.tif", "best": None, "dz_um": 0.32, "stain": "generic"},
)


# --- helpers ---------------------------------------------------------------------------
def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import stats

    a = np.asarray(a, float)
    b = np.asarray(b, float)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [[str(h) for h in header]] + [["" if v is None else
                                            (f"{v:.3f}" if isinstance(v, float) else str(v))
                                            for v in r] for r in rows]
    w = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)) for r in cells]
    lines.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(lines)


def cards(models_dir: Path = MODELS, ids: tuple[str, ...] = ("fqa-levels", "fqa-stain", "fqa-distance")
          ) -> dict[str, Path]:
    out = {mid: models_dir / f"{mid}.json" for mid in ids}
    out = {k: v for k, v in out.items() if v.is_file()}
    if YANG_CARD.is_file():
        out["yang-baseline"] = YANG_CARD
    if PROCEDURAL_CARD.is_file():
        out["fqa-levels-procedural"] = PROCEDURAL_CARD
    return out


def config_of(card: dict[str, Any]) -> dict[str, Any]:
    from napari_focusqa.training.train import load_config

    cfg_rel = card["training"].get("config")
    return load_config(REPO / cfg_rel if cfg_rel else card["id"])


# --- 1. held-out synthetic -------------------------------------------------------------
def synthetic(card_paths: dict[str, Path]) -> dict[str, Any]:
    from napari_focusqa.training.train import build_set, evaluate_set

    cache: dict[str, Any] = {}
    res: dict[str, Any] = {}
    for mid, cp in card_paths.items():
        card = json.loads(cp.read_text())
        cfg = config_of(card)
        if mid == "fqa-levels-procedural":
            from napari_focusqa.training.train import load_config

            cfg = load_config("fqa-levels")
        key = json.dumps({k: cfg[k] for k in ("task", "sources", "seed", "per_level_test",
                                              "procedural_per_stain_test", "procedural_size",
                                              "optics", "levels", "distance", "normalisation",
                                              "noise")}, sort_keys=True)
        if key not in cache:
            t = time.time()
            cache[key] = build_set(cfg, "test")
            print(f"[synthetic] test set for {mid}: {len(cache[key])} patches "
                  f"({time.time() - t:.0f}s)", flush=True)
        onnx_path = cp.parent / card["onnx"]
        m = evaluate_set(cfg, onnx_path, cache[key], threads=int(cfg["threads"]))
        res[mid] = m
        stored = card.get("metrics", {}).get("heldout_synthetic")
        res[mid]["matches_card"] = _same(stored, m) if mid != "fqa-levels-procedural" else None
    return res


def _same(a: Any, b: Any, tol: float = 1e-3) -> bool:
    """Card metrics equal the recomputed ones (numbers within ``tol``: float32 round-off in
    onnxruntime can move the 4th decimal of a rounded metric)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = (set(a) | set(b)) - {"matches_card"}
        return all(k in a and k in b and _same(a[k], b[k], tol) for k in keys)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return bool(abs(a - b) <= tol or (a != a and b != b))
    return a == b


def print_synthetic(res: dict[str, Any]) -> None:
    rows = []
    for mid, m in res.items():
        if "foreground" in m and "accuracy" in m["foreground"]:
            variants = {"": m}
        elif "with_stain" in m:
            variants = {" (no stain)": m["without_stain"], " (with stain)": m["with_stain"]}
        else:
            continue
        for suffix, v in variants.items():
            f = v["foreground"]
            a = v["all"]
            rows.append([mid + suffix, f["n"], f["accuracy"], f["within_1"], f["ece"],
                         a["accuracy"], a["within_1"], v["images"]["accuracy"],
                         v["images"]["within_1"], v["certainty_foreground"],
                         v["certainty_background"], m.get("matches_card")])
    print("\nHeld-out synthetic defocus (patches with structure = 'fg'; images = certainty-"
          "weighted aggregate per field and level)")
    print(table(rows, ["model", "n fg", "fg exact", "fg ±1", "fg ECE", "all exact", "all ±1",
                       "img exact", "img ±1", "cert fg", "cert bg", "= card"]))
    # per stain
    stains: list[str] = []
    cols: dict[str, dict[str, Any]] = {}
    for mid, m in res.items():
        for suffix, v in ({"": m} if "per_stain" in m and "foreground" in m and "accuracy" in
                          m["foreground"] else {" -stain": m.get("without_stain"),
                                                " +stain": m.get("with_stain")}).items():
            if not v:
                continue
            cols[mid + suffix] = v["per_stain"]
            for s in v["per_stain"]:
                if s not in stains:
                    stains.append(s)
    if cols:
        rows = [[s] + [f"{c[s]['accuracy']:.3f} / {c[s]['within_1']:.3f}" if s in c and
                       c[s].get("n") else "" for c in cols.values()] for s in stains]
        print("\nPer stain (fg patches), exact / within ±1")
        print(table(rows, ["stain"] + list(cols)))
    for mid, m in res.items():
        if "foreground" in m and "accuracy" in m["foreground"]:
            cm = np.asarray(m["foreground"]["confusion"])
            print(f"\nConfusion matrix {mid} (rows true level, cols predicted), fg patches")
            print(table([[i] + list(r) for i, r in enumerate(cm.tolist())],
                        ["true"] + [str(i) for i in range(cm.shape[1])]))
    d = res.get("fqa-distance")
    if d:
        rows = [[k, v.get("n"), v.get("mean_focus_error_dof"), v.get("median_focus_error_dof"),
                 v.get("within_half_dof"), v.get("within_1_dof"), v.get("wrong_direction_rate"),
                 v.get("mean_confidence")]
                for k, v in [("fg", d["foreground"]), ("all", d["all"])] +
                [(f"fg {s}", x) for s, x in d["per_stain"].items()]]
        print("\nfqa-distance on held-out synthetic defocus (DoF units; wrong direction for "
              "|z| >= 1 DoF)")
        print(table(rows, ["subset", "n", "mean FE", "median FE", "≤0.5 DoF", "≤1 DoF",
                           "wrong dir", "conf"]))
        print(f"confident (>= 0.5) fraction {d['foreground'].get('confident_fraction')}, their "
              f"mean FE {d['foreground'].get('confident_mean_focus_error_dof')}; background mean "
              f"confidence {d.get('background_mean_confidence')}; = card: {d.get('matches_card')}")


# --- 2. real focal stacks --------------------------------------------------------------
def _plane_scores(model: Any, plane: np.ndarray, stain: str) -> dict[str, float]:
    grid = make_grid(plane.shape, 84)
    patches = grid.extract(plane).reshape(-1, 84, 84)
    out: dict[str, float] = {}
    if model.task == "distance":
        o = model.run(patches)
        w = o["confidence"].astype(float) + 1e-6
        out["distance"] = float((o["distance"] * w).sum() / w.sum())
        out["abs_distance"] = float((np.abs(o["distance"]) * w).sum() / w.sum())
    else:
        p = model.predict_proba(patches, stain=stain)
        whole, _ = aggregate(p)
        out["expected_level"] = float(whole @ np.arange(whole.size))
    return out


def real_stacks(card_paths: dict[str, Path]) -> dict[str, Any]:
    import tifffile

    from napari_focusqa.training.data import shared_data_dir

    d = shared_data_dir()
    if d is None:
        print("[real] ../shared/data absent: skipped")
        return {}
    models = {mid: load_model(cp, threads=2) for mid, cp in card_paths.items()}
    res: dict[str, Any] = {}
    for spec in STACKS:
        arr = tifffile.imread(d / spec["file"]).astype(np.float32)
        if arr.ndim == 3:
            series = {"ch0": arr}
        else:  # TZCYX: each (t, c) is a stack
            series = {f"t{t}c{c}": arr[t, :, c] for t in range(arr.shape[0]) for c in range(arr.shape[2])}
        for name, stack in series.items():
            key = f"{spec['file'].split('_zstack')[0]}[{name}]"
            nz = stack.shape[0]
            z = np.arange(nz)
            best = spec["best"]
            row: dict[str, Any] = {"planes": nz, "z_best": best, "dz_um": spec["dz_um"]}
            sf = np.array([float(core_metrics.spatial_frequency(p)) for p in stack])
            plls = np.array([float(core_metrics.power_log_log_slope(p)) for p in stack])
            scores = {"SF": -sf, "PLLS": -plls}  # lower = sharper, like a level
            for mid, m in models.items():
                vals = [_plane_scores(m, p, spec["stain"] if m.task == "levels-stain" else "generic")
                        for p in stack]
                if m.task == "distance":
                    scores[mid] = np.array([v["abs_distance"] for v in vals])
                    row[f"{mid}_signed"] = [round(v["distance"], 3) for v in vals]
                else:
                    scores[mid] = np.array([v["expected_level"] for v in vals])
                    row[f"{mid}_levels"] = [round(v, 3) for v in scores[mid].tolist()]
            for meth, s in scores.items():
                pred_best = int(np.argmin(s))
                r = {"best_slice": pred_best}
                if best is not None:
                    r["spearman_vs_abs_dz"] = round(spearman(s, np.abs(z - best)), 4)
                    r["best_slice_error"] = abs(pred_best - best)
                    r["best_slice_error_um"] = round(abs(pred_best - best) * spec["dz_um"], 3)
                row[meth] = r
            res[key] = row
    return res


def print_real(res: dict[str, Any]) -> None:
    if not res:
        return
    methods = [k for k in next(iter(res.values())) if isinstance(next(iter(res.values()))[k], dict)]
    rows = []
    for key, row in res.items():
        for meth in methods:
            r = row[meth]
            rows.append([key, meth, r.get("spearman_vs_abs_dz"), r["best_slice"], row["z_best"],
                         r.get("best_slice_error"), r.get("best_slice_error_um")])
    print("\nReal focal stacks: Spearman(score, |z - z_best|) (score: expected level; SF/PLLS "
          "negated; distance model |d|) and best slice")
    print(table(rows, ["stack", "method", "spearman", "best", "z_best", "err (slices)", "err (um)"]))


# --- 3. speed ----------------------------------------------------------------------------
def speed(card_paths: dict[str, Path], repeats: int = 5) -> dict[str, Any]:
    import onnxruntime as ort

    res: dict[str, Any] = {}
    rng = np.random.default_rng(0)
    image = (rng.poisson(200, (2048, 2048)) + 100).astype(np.float32)
    grid = make_grid(image.shape, 84)
    patches = grid.extract(image).reshape(-1, 84, 84)
    yang_onnx = REPO / "runs" / "yang-arch.onnx"
    targets = {mid: cp.parent / json.loads(cp.read_text())["onnx"] for mid, cp in card_paths.items()}
    if "yang-baseline" not in targets:
        import torch  # noqa: F401

        from napari_focusqa.training.export import export_onnx
        from napari_focusqa.training.nets import YangNet

        if not yang_onnx.is_file():
            export_onnx("levels", YangNet(), yang_onnx)
        targets["yang-arch (untrained)"] = yang_onnx
    for mid, path in targets.items():
        card_path = card_paths.get(mid)
        norm = json.loads(card_path.read_text())["input_normalisation"] if card_path else \
            {"method": "log-zscore", "eps": 0.01}
        from napari_focusqa.core.model import normalise_patches

        x = normalise_patches(patches, norm)[:, None]
        row: dict[str, Any] = {"patches": int(x.shape[0])}
        for th in (1, 2):
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = th
            opts.inter_op_num_threads = 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            names = [i.name for i in sess.get_inputs()]

            def run_all(sess: Any = sess, names: list[str] = names, x: np.ndarray = x) -> None:
                for i in range(0, x.shape[0], 256):
                    feed = {"patches": x[i : i + 256]}
                    if "stain" in names:
                        feed["stain"] = np.zeros(feed["patches"].shape[0], np.int64)
                    sess.run(None, feed)

            run_all()
            ts = []
            for _ in range(repeats):
                t = time.perf_counter()
                run_all()
                ts.append(time.perf_counter() - t)
            row[f"onnx_s_{th}thread"] = round(float(np.median(ts)), 4)
        if card_path:  # end to end through the core (grid, normalisation, batches)
            m = load_model(card_path, threads=2)
            m.run(patches[:8])
            ts = []
            for _ in range(repeats):
                t = time.perf_counter()
                p = grid.extract(image).reshape(-1, 84, 84)
                m.run(p)
                ts.append(time.perf_counter() - t)
            row["core_end_to_end_s_2thread"] = round(float(np.median(ts)), 4)
        res[mid] = row
    return res


def print_speed(res: dict[str, Any]) -> None:
    rows = [[mid, r["patches"], r["onnx_s_1thread"], r["onnx_s_2thread"],
             r.get("core_end_to_end_s_2thread")] for mid, r in res.items()]
    print("\nInference on one 2048x2048 image (median of 5; seconds)")
    print(table(rows, ["model", "patches", "ORT 1 thread", "ORT 2 threads", "core e2e 2 thr"]))


def update_cards(card_paths: dict[str, Path], out: dict[str, Any]) -> None:
    for mid, cp in card_paths.items():
        if mid == "fqa-levels-procedural":
            continue
        card = json.loads(cp.read_text())
        metrics = card.setdefault("metrics", {})
        syn = (out.get("synthetic") or {}).get(mid)
        if syn:  # this run's numbers become the card's (onnxruntime round-off can flip a near-tie)
            from napari_focusqa.training.train import headline

            syn = {k: v for k, v in syn.items() if k != "matches_card"}
            metrics["heldout_synthetic"] = syn
            metrics.setdefault("headline", {}).update(headline(config_of(card), syn))
        if out.get("real"):
            metrics["real_stacks"] = {
                k: {"z_best": v["z_best"], **{meth: v[meth] for meth in (mid, "SF", "PLLS") if meth in v}}
                for k, v in out["real"].items()
            }
            rs = [v[mid].get("spearman_vs_abs_dz") for v in out["real"].values()
                  if mid in v and v[mid].get("spearman_vs_abs_dz") is not None]
            be = [v[mid].get("best_slice_error") for v in out["real"].values()
                  if mid in v and v[mid].get("best_slice_error") is not None]
            metrics["headline"]["real_stack_spearman_mean"] = round(float(np.mean(rs)), 4) if rs else None
            metrics["headline"]["real_best_slice_error_mean"] = round(float(np.mean(be)), 3) if be else None
        if out.get("speed", {}).get(mid):
            metrics["speed_2048px"] = out["speed"][mid]
            metrics["headline"]["seconds_per_2048px_2threads"] = out["speed"][mid]["onnx_s_2thread"]
        write_card(card, cp)
        print(f"[cards] updated {cp.name}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(REPO / "runs" / "bench_accuracy.json"))
    ap.add_argument("--update-cards", action="store_true")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--models-dir", default=str(MODELS))
    ap.add_argument("--ids", default="fqa-levels,fqa-stain,fqa-distance")
    a = ap.parse_args(argv)
    cp = cards(Path(a.models_dir), tuple(a.ids.split(",")))
    if not cp:
        print("no models found in models/")
        return 1
    out: dict[str, Any] = {"models": {k: str(v) for k, v in cp.items()}}
    if not a.skip_synthetic:
        out["synthetic"] = synthetic(cp)
        print_synthetic(out["synthetic"])
    if not a.skip_real:
        out["real"] = real_stacks(cp)
        print_real(out["real"])
    if not a.skip_speed:
        out["speed"] = speed(cp)
        print_speed(out["speed"])
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nwrote {a.out}")
    if a.update_cards:
        update_cards(cp, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
