"""Distance models (task "distance", e.g. ``fqa-distance``): finding the installed one and
predicting the signed defocus of one image.

Used by the calibration (which records how the model's output follows z on the
instrument) and, optionally, as extra features of the single-shot head. A distance model
that is installed but unusable (corrupt card, sha256 mismatch, bad ONNX) is reported as
such (:class:`~napari_focusqa.core.errors.ModelCardError`), never as "not installed".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_focusqa.core.errors import FocusQAError, ModelCardError

DEFAULT_DISTANCE_MODEL = "fqa-distance"


def predict_distance(img: np.ndarray, model: Any, *, stain: str | None = None,
                     ) -> tuple[float, float, dict[str, Any]]:
    """Signed defocus (DoF units, card convention) of one image from a distance model.

    Returns ``(distance, confidence, details)``: confidence-weighted median over the
    patches, the mean patch confidence, and ``sign_agreement`` (weighted fraction of
    patches whose sign matches the median; patches within ±0.5 DoF count as agreeing).
    """
    from napari_focusqa.core.model import load_model
    from napari_focusqa.core.patches import make_grid
    from napari_focusqa.core.validate import as_image2d

    fm = load_model(model)
    if fm.task != "distance":
        raise FocusQAError(f"model: {fm.id} is a {fm.task!r} model, not a distance model")
    im = as_image2d(img)
    grid = make_grid(im.shape, fm.patch_size)
    patches = grid.extract(im).reshape(-1, fm.patch_size, fm.patch_size)
    outs = fm.run(patches, stain=stain)
    names = fm.card.get("outputs") or {}
    d = np.asarray(outs.get(names.get("distance", "distance"),
                            next(iter(outs.values()))), dtype=np.float64).ravel()
    cname = names.get("confidence", "confidence")
    c = (np.asarray(outs[cname], dtype=np.float64).ravel() if cname in outs
         else np.ones_like(d))
    c = np.clip(np.nan_to_num(c), 0.0, 1.0)
    w = c if c.sum() > 0 else np.ones_like(c)
    order = np.argsort(d)
    cw = np.cumsum(w[order])
    med = float(d[order][int(np.searchsorted(cw, cw[-1] / 2.0))])
    agree = (np.sign(d) == np.sign(med)) | (np.abs(d) <= 0.5) if abs(med) > 0.5 else np.ones(
        len(d), bool)
    sign_agreement = float(np.sum(w * agree) / np.sum(w))
    return med, float(c.mean()), {"patches": int(d.size), "sign_agreement": sign_agreement,
                                  "model": fm.id}


def find_distance_model(spec: Any) -> Any:
    """Load a distance model.

    ``None``/``"none"``: no model. ``"auto"``: the installed ``fqa-distance`` (else the
    first distance-task card), or None when no distance model is installed. An id or card
    path: that model.

    Raises
    ------
    ModelCardError
        The model is installed (or named) but cannot be used: unreadable or corrupt card,
        sha256 mismatch, missing ONNX file, wrong task.
    """
    from napari_focusqa.core.model import list_models, load_model, models_dirs

    if spec in (None, "none"):
        return None
    if spec == "auto":
        # a card file present but unreadable must not look like "not installed"
        present = [d / f"{DEFAULT_DISTANCE_MODEL}.json" for d in models_dirs()]
        if any(p.is_file() for p in present):
            spec = DEFAULT_DISTANCE_MODEL
        else:
            ids = [str(c["id"]) for c in list_models() if c.get("task") == "distance"]
            if not ids:
                return None
            spec = ids[0]
    try:
        fm = load_model(spec)
    except ModelCardError as exc:
        raise ModelCardError(f"distance model {spec}: installed but unusable: {exc}") from exc
    if fm.task != "distance":
        raise ModelCardError(f"distance model {spec}: {fm.id} is a {fm.task!r} model, not a "
                             "distance model")
    return fm


def distance_fit(z_rel: np.ndarray, images: list[np.ndarray], model: Any, dof: float,
                  stain: str | None) -> dict[str, Any] | None:
    """Regress a distance model's output (DoF) on the true relative z (DoF): its gain,
    intercept and correlation ``r`` on this instrument (recorded by the calibration)."""
    preds, confs = [], []
    for img in images:
        d, c, _ = predict_distance(img, model, stain=stain)
        preds.append(d)
        confs.append(c)
    x = np.asarray(z_rel) / dof
    y = np.asarray(preds, dtype=np.float64)
    sel = np.abs(x) <= 10
    if sel.sum() < 3:
        return None
    gain, icpt = np.polyfit(x[sel], y[sel], 1)
    r = float(np.corrcoef(x[sel], y[sel])[0, 1]) if np.std(y[sel]) > 0 else 0.0
    return {"model": getattr(model, "id", str(model)), "gain": float(gain),
            "intercept": float(icpt), "r": r, "mean_confidence": float(np.mean(confs))}


__all__ = ["DEFAULT_DISTANCE_MODEL", "distance_fit", "find_distance_model", "predict_distance"]
