"""Accuracy and speed of the shipped focus models: checks the numbers in the model cards.

1. Held-out synthetic defocus (test split, by field: BBBC006 wells a08/a09, HeLa, NEUBIAS
   3-channel, held-out procedural seeds): exact / within-one accuracy, ECE, confusion
   matrix, per stain; for models trained with the sectioned mix also per modality
   (confocal, spinning disk, light-sheet, sparse, noise patches).
2. Whole fields: every held-out field defocused as one image and assessed by
   ``napari_focusqa.core.assess.assess_image`` (the core's own patch grid and aggregate),
   widefield and confocal (1 AU, point-scanning detector), plus noise frames.
3. Real focal stacks in ../shared/data: Spearman correlation of the predicted (expected)
   level with |z - z_best| and the best-slice error, next to SF and PLLS.
4. Inference time on a 2048 x 2048 image (625 patches) with onnxruntime, 1 and 2 threads
   (machine-dependent: written to the cards for information, never checked).

Usage::

    python benchmarks/bench_accuracy.py                 # check: exit 1 on drift
    python benchmarks/bench_accuracy.py --write-cards   # recompute and write the cards

Check mode (default) recomputes 1-3 and compares them with ``metrics.heldout_synthetic``,
``metrics.whole_field`` and ``metrics.real_stacks`` of every card in ``models/``: every
rate / ECE / Spearman must agree within ``--tolerance`` (default 0.005 absolute), counts
exactly, confusion-matrix cells within 2 (onnxruntime round-off can flip a near-tie). A
missing or drifted number makes the exit status 1. Writing card numbers is the separate
``--write-cards`` step; a run never checks numbers it has just written.
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
def synthetic(card_paths: dict[str, Path]) -> dict[str, Any]:  # noqa: C901
    from napari_focusqa.training.train import cached_set, evaluate_set

    cache: dict[str, Any] = {}
    res: dict[str, Any] = {}
    for mid, cp in card_paths.items():
        card = json.loads(cp.read_text())
        cfg = config_of(card)
        if mid == "fqa-levels-procedural":
            from napari_focusqa.training.train import load_config

            cfg = load_config("fqa-levels")
        key = json.dumps({k: cfg.get(k) for k in ("task", "sources", "seed", "per_level_test",
                                                  "procedural_per_stain_test", "procedural_size",
                                                  "optics", "levels", "distance", "normalisation",
                                                  "noise", "mix")}, sort_keys=True)
        if key not in cache:
            t = time.time()
            cache[key] = cached_set(cfg, "test")  # $FOCUSQA_TRAIN_CACHE: built once
            print(f"[synthetic] test set for {mid}: {len(cache[key])} patches "
                  f"({time.time() - t:.0f}s)", flush=True)
        onnx_path = cp.parent / card["onnx"]
        res[mid] = evaluate_set(cfg, onnx_path, cache[key], threads=int(cfg["threads"]))
    return res


def drift(stored: Any, fresh: Any, tol: float, path: str = "") -> list[str]:
    """Differences between card numbers and recomputed ones (empty list: no drift).

    Floats must agree within ``tol`` (absolute), ints exactly except confusion-matrix
    cells (within 2), strings/None exactly; a key missing on either side is a difference.
    """
    if isinstance(stored, dict) and isinstance(fresh, dict):
        out: list[str] = []
        for k in sorted(set(stored) | set(fresh)):
            p = f"{path}.{k}" if path else str(k)
            if k not in stored:
                out.append(f"{p}: missing in card (fresh {_short(fresh[k])})")
            elif k not in fresh:
                out.append(f"{p}: in card ({_short(stored[k])}) but not recomputed")
            else:
                out += drift(stored[k], fresh[k], tol, p)
        return out
    if isinstance(stored, list) and isinstance(fresh, list):
        if len(stored) != len(fresh):
            return [f"{path}: length {len(stored)} in card, {len(fresh)} fresh"]
        return [d for i, (a, b) in enumerate(zip(stored, fresh)) for d in drift(a, b, tol, f"{path}[{i}]")]
    num = (int, float)
    if isinstance(stored, num) and isinstance(fresh, num) and not isinstance(stored, bool):
        if isinstance(stored, int) and isinstance(fresh, int):
            lim = 2 if ".confusion" in path else 0
        else:
            lim = tol
        if stored != stored and fresh != fresh:  # both NaN
            return []
        return [] if abs(stored - fresh) <= lim else [f"{path}: card {stored}, fresh {fresh}"]
    return [] if stored == fresh else [f"{path}: card {_short(stored)}, fresh {_short(fresh)}"]


def _short(v: Any) -> str:
    t = json.dumps(v)
    return t if len(t) <= 60 else t[:57] + "..."


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
                         v["certainty_background"]])
    print("\nHeld-out synthetic defocus (patches with structure = 'fg'; images = certainty-"
          "weighted aggregate per field and level)")
    print(table(rows, ["model", "n fg", "fg exact", "fg ±1", "fg ECE", "all exact", "all ±1",
                       "img exact", "img ±1", "cert fg", "cert bg"]))
    rows = []
    for mid, m in res.items():
        for suffix, v in ({"": m} if "by_kind" in m else
                          {" (with stain)": m.get("with_stain") or {}}).items():
            for kind, r in (v.get("by_kind") or {}).items():
                f = r.get("foreground") or {}
                rows.append([mid + suffix, kind, r["n"], f.get("within_1"), f.get("ece"),
                             r.get("far_in_focus_rate"), r.get("far_in_focus_confident_rate"),
                             r.get("in_focus_rate"), r["mean_certainty"]])
    if rows:
        print("\nHeld-out synthetic by modality (far = true level >= 3, i.e. >= 3 DoF; "
              "'in focus' = argmax <= in_focus_max_level; confident = certainty >= 0.5)")
        print(table(rows, ["model", "kind", "n", "fg ±1", "fg ECE", "far in-focus",
                           "far in-focus conf.", "in-focus rate", "certainty"]))
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
              f"confidence {d.get('background_mean_confidence')}")


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


# --- whole fields through the core ------------------------------------------------------
def whole_fields(card_paths: dict[str, Path]) -> dict[str, Any]:
    from napari_focusqa.training import data as D
    from napari_focusqa.training.fields import whole_field_metrics
    from napari_focusqa.training.simulate import NoiseModel
    from napari_focusqa.training.train import optics_of, z_grid

    res: dict[str, Any] = {}
    for mid, cp in card_paths.items():
        card = json.loads(cp.read_text())
        if card["task"] == "distance" or mid not in SHIPPED:
            continue
        cfg = config_of(card)
        t = time.time()
        nz = cfg["noise"]
        camera = NoiseModel(tuple(nz["photons"]), tuple(nz["gain"]), tuple(nz["offset"]),
                            float(nz["read_noise"]))
        model = load_model(cp, threads=2)
        sources = D.collect_sources(cfg, "test")
        variants = {"": False} if card["task"] == "levels" else {"without_stain": False,
                                                                   "with_stain": True}
        r: dict[str, Any] = {}
        for vname, ws in variants.items():
            m = whole_field_metrics(model, sources, z_grid(cfg, "test"), optics_of(cfg), camera,
                                    int(cfg["seed"]), with_stain=ws)
            if vname:
                r[vname] = m
            else:
                r = m
        res[mid] = r
        print(f"[whole fields] {mid}: {len(sources)} fields ({time.time() - t:.0f}s)", flush=True)
    return res


def print_whole(res: dict[str, Any]) -> None:
    rows = []
    for mid, r in res.items():
        for vname, v in ({"": r} if "widefield" in r else r).items():
            name = f"{mid} ({vname})" if vname else mid
            for kind in ("widefield", "confocal"):
                k = v[kind]
                rows.append([name, kind, k["n_fields"], k["accuracy"], k["within_1"], k["ece"],
                             k["far_in_focus_rate"], k.get("far_verdict_in_focus_rate"),
                             k.get("far_no_structure_rate"), k["mean_certainty"]])
            nz = v["noise"]
            rows.append([name, "noise frames", nz["n_frames"], None, None, None,
                         nz["in_focus_rate"], nz.get("verdict_in_focus_rate"),
                         nz.get("no_structure_rate"), nz["mean_certainty"]])
    print("\nWhole held-out fields through core.assess.assess_image (far: fields >= level 3; "
          "for noise frames: all frames; 'model' = level <= in_focus_max_level, 'verdict' = "
          "the core's verdict with the structure test)")
    print(table(rows, ["model", "kind", "n", "exact", "±1", "ECE", "far in-focus (model)",
                       "far in-focus (verdict)", "far no_structure", "certainty"]))


SHIPPED = ("fqa-levels", "fqa-stain", "fqa-distance")
CHECKED = {"synthetic": "heldout_synthetic", "whole": "whole_field", "real": "real_stacks"}


def real_for_card(mid: str, real: dict[str, Any]) -> dict[str, Any]:
    return {k: {"z_best": v["z_best"], **{meth: v[meth] for meth in (mid, "SF", "PLLS") if meth in v}}
            for k, v in real.items()}


def fresh_for_card(mid: str, out: dict[str, Any]) -> dict[str, Any]:
    """The card sections this run recomputed for ``mid`` (keys of :data:`CHECKED`)."""
    f: dict[str, Any] = {}
    if (out.get("synthetic") or {}).get(mid) is not None:
        f["heldout_synthetic"] = out["synthetic"][mid]
    if (out.get("whole") or {}).get(mid) is not None:
        f["whole_field"] = out["whole"][mid]
    if out.get("real"):
        f["real_stacks"] = real_for_card(mid, out["real"])
    return f


def check_cards(card_paths: dict[str, Path], out: dict[str, Any], tol: float) -> int:
    bad = 0
    print(f"\nCard check (tolerance {tol} absolute on rates/ECE/Spearman, counts exact)")
    for mid, cp in card_paths.items():
        if mid not in SHIPPED:
            continue
        stored = json.loads(cp.read_text()).get("metrics", {})
        fresh = fresh_for_card(mid, out)
        diffs = drift({k: stored.get(k) for k in fresh}, fresh, tol)
        print(f"  {mid}: {'OK' if not diffs else f'DRIFT ({len(diffs)} numbers)'}")
        for d in diffs[:25]:
            print(f"    {d}")
        bad += bool(diffs)
    return 1 if bad else 0


def write_cards(card_paths: dict[str, Path], out: dict[str, Any]) -> None:
    from napari_focusqa.training.train import headline

    for mid, cp in card_paths.items():
        if mid not in SHIPPED:
            continue
        card = json.loads(cp.read_text())
        metrics = card.setdefault("metrics", {})
        fresh = fresh_for_card(mid, out)
        metrics.update(fresh)
        h = metrics.setdefault("headline", {})
        if "heldout_synthetic" in fresh:
            h.update(headline(config_of(card), fresh["heldout_synthetic"]))
        wf = fresh.get("whole_field")
        if wf:
            w = wf.get("with_stain", wf)
            h["whole_field_within_1"] = w["widefield"]["within_1"]
            h["whole_field_ece"] = w["widefield"]["ece"]
            h["confocal_far_in_focus_rate"] = w["confocal"]["far_in_focus_rate"]
            h["noise_in_focus_rate"] = w["noise"]["in_focus_rate"]
        if "real_stacks" in fresh:
            rs = [v[mid].get("spearman_vs_abs_dz") for v in out["real"].values()
                  if mid in v and v[mid].get("spearman_vs_abs_dz") is not None]
            be = [v[mid].get("best_slice_error") for v in out["real"].values()
                  if mid in v and v[mid].get("best_slice_error") is not None]
            h["real_stack_spearman_mean"] = round(float(np.mean(rs)), 4) if rs else None
            h["real_best_slice_error_mean"] = round(float(np.mean(be)), 3) if be else None
        if out.get("speed", {}).get(mid):  # informational (machine-dependent), not checked
            metrics["speed_2048px"] = out["speed"][mid]
            h["seconds_per_2048px_2threads"] = out["speed"][mid]["onnx_s_2thread"]
        write_card(card, cp)
        print(f"[cards] wrote {cp.name}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(REPO / "runs" / "bench_accuracy.json"))
    ap.add_argument("--write-cards", action="store_true",
                    help="write the recomputed numbers into the cards (instead of checking)")
    ap.add_argument("--tolerance", type=float, default=0.005)
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--skip-whole", action="store_true")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--models-dir", default=str(MODELS))
    ap.add_argument("--ids", default=",".join(SHIPPED))
    a = ap.parse_args(argv)
    cp = cards(Path(a.models_dir), tuple(a.ids.split(",")))
    if not cp:
        print("no models found in models/")
        return 1
    out: dict[str, Any] = {"models": {k: str(v) for k, v in cp.items()}}
    if not a.skip_synthetic:
        out["synthetic"] = synthetic(cp)
        print_synthetic(out["synthetic"])
    if not a.skip_whole:
        out["whole"] = whole_fields(cp)
        print_whole(out["whole"])
    if not a.skip_real:
        out["real"] = real_stacks(cp)
        print_real(out["real"])
    if not a.skip_speed:
        out["speed"] = speed(cp)
        print_speed(out["speed"])
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nwrote {a.out}")
    if a.write_cards:
        write_cards(cp, out)
        return 0
    return check_cards(cp, out, a.tolerance)


if __name__ == "__main__":
    raise SystemExit(main())
