"""Accuracy metrics shared by training (card metrics) and ``benchmarks/bench_accuracy.py``."""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_focusqa.core.assess import aggregate


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top-label confidence (equal-width bins)."""
    if len(labels) == 0:
        return float("nan")
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(conf, edges) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(total)


def level_metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Exact / within-one accuracy, ECE, mean certainty and confusion matrix of patches."""
    k = probs.shape[1]
    if len(labels) == 0:
        return {"n": 0}
    pred = probs.argmax(axis=1)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (labels, pred), 1)
    return {
        "n": int(len(labels)),
        "accuracy": round(float((pred == labels).mean()), 4),
        "within_1": round(float((np.abs(pred - labels) <= 1).mean()), 4),
        "ece": round(ece(probs, labels), 4),
        "mae_levels": round(float(np.abs(pred - labels).mean()), 4),
        "confusion": cm.tolist(),
    }


def image_level_metrics(probs: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    """Whole-image accuracy: certainty-weighted aggregate (Yang et al.) per (image, level)."""
    preds, trues = [], []
    for g in np.unique(groups):
        m = groups == g
        whole, _ = aggregate(probs[m])
        preds.append(int(np.argmax(whole)))
        trues.append(int(labels[m][0]))
    p = np.asarray(preds)
    t = np.asarray(trues)
    return {
        "n_images": int(len(p)),
        "accuracy": round(float((p == t).mean()), 4),
        "within_1": round(float((np.abs(p - t) <= 1).mean()), 4),
    }


def distance_metrics(pred: np.ndarray, conf: np.ndarray, true: np.ndarray) -> dict[str, Any]:
    """Focus error (DoF units), fraction within 0.5 / 1 DoF, wrong-direction rate."""
    if len(true) == 0:
        return {"n": 0}
    err = np.abs(pred - true)
    off = np.abs(true) >= 1.0  # direction is defined when at least one DoF away
    wrong = np.sign(pred[off]) != np.sign(true[off])
    out = {
        "n": int(len(true)),
        "mean_focus_error_dof": round(float(err.mean()), 4),
        "std_focus_error_dof": round(float(err.std()), 4),
        "median_focus_error_dof": round(float(np.median(err)), 4),
        "within_half_dof": round(float((err <= 0.5).mean()), 4),
        "within_1_dof": round(float((err <= 1.0).mean()), 4),
        "wrong_direction_rate": round(float(wrong.mean()) if off.any() else float("nan"), 4),
        "mean_confidence": round(float(conf.mean()), 4),
    }
    hi = conf >= 0.5
    if hi.any():
        out["confident_fraction"] = round(float(hi.mean()), 4)
        out["confident_mean_focus_error_dof"] = round(float(err[hi].mean()), 4)
    return out


def kind_metrics(probs: np.ndarray, ps: Any, in_focus_max_level: int = 1,
                 far_level: int = 3) -> dict[str, Any]:
    """Per modality (``ps.kind``, see ``mixdata.KINDS``): level metrics of patches with
    structure, the rate at which far planes (true level >= ``far_level``, i.e. >= 3 DoF
    at the default optics) are called in focus (argmax <= ``in_focus_max_level``), overall
    and with certainty >= 0.5, and mean certainty; for noise patches (no level) the
    in-focus call rates and the certainty."""
    from napari_focusqa.core.assess import certainty
    from napari_focusqa.training.mixdata import KINDS

    out: dict[str, Any] = {}
    kind = ps.kinds()
    cert = certainty(probs)
    pred = probs.argmax(axis=1)
    called = pred <= in_focus_max_level
    for k in np.unique(kind):
        m = kind == k
        name = KINDS[int(k)]
        r: dict[str, Any] = {"n": int(m.sum()), "mean_certainty": round(float(cert[m].mean()), 4),
                             "in_focus_rate": round(float(called[m].mean()), 4)}
        if name != "noise":
            fm = m & ps.fg
            mm = level_metrics(probs[fm], ps.level[fm])
            mm.pop("confusion", None)
            r["foreground"] = mm
            far = m & (ps.level >= far_level)
            r["far_in_focus_rate"] = round(float(called[far].mean()), 4) if far.any() else None
            r["far_in_focus_confident_rate"] = round(
                float((called & (cert >= 0.5))[far].mean()), 4) if far.any() else None
        else:
            r["in_focus_confident_rate"] = round(float((called & (cert >= 0.5))[m].mean()), 4)
        out[name] = r
    return out
