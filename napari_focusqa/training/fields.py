"""Whole-field accuracy: held-out in-focus fields, defocused as a whole, through the core.

Every held-out field (the test split of a config: BBBC006 wells a08/a09, HeLa, NEUBIAS
3-channel, held-out procedural images) is defocused to every level as one image, gets one
draw of the camera model, and goes through :func:`napari_focusqa.core.assess.assess_image`
(the core's own patch grid, normalisation, batching and certainty-weighted aggregate). The
whole-image prediction is compared with the true level.

Sectioned fields (``confocal``): the same fields through the 1 AU confocal forward model and
the point-scanning detector; what matters there is that far planes (true level >= 3,
>= 3 DoF) are not called in focus. Noise frames: constant, Poisson, Gaussian and clipped
speckle frames (no structure); they should not be called in focus either.

Two rates are reported: the model's level alone (argmax <= ``in_focus_max_level``) and the
core's verdict (which adds the structure test: empty patches leave the aggregate, and a
field without structure is ``no_structure``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_focusqa.training import data as D
from napari_focusqa.training.evaluate import ece
from napari_focusqa.training.mixdata import kernel_bank
from napari_focusqa.training.sectioning import NOISE_TYPES, DetectorModel, noise_patches
from napari_focusqa.training.simulate import NoiseModel, Optics, fft_blur_bank


def _rate(m: np.ndarray, sel: np.ndarray) -> float | None:
    return round(float(m[sel].mean()), 4) if sel.any() else None


def _summary(probs: np.ndarray, true: np.ndarray, verdicts: list[str | None],
             in_focus_max_level: int) -> dict[str, Any]:
    from napari_focusqa.core.assess import certainty

    pred = probs.argmax(axis=1)
    called = pred <= in_focus_max_level
    v = np.asarray(verdicts, dtype=object)
    far = true >= 3
    return {
        "n_fields": int(len(true)),
        "accuracy": round(float((pred == true).mean()), 4),
        "within_1": round(float((np.abs(pred - true) <= 1).mean()), 4),
        "ece": round(ece(probs, true), 4),
        "far_in_focus_rate": _rate(called, far),  # the model's level alone
        "far_verdict_in_focus_rate": _rate(v == "in_focus", far),  # verdict (structure test)
        "far_no_structure_rate": _rate(v == "no_structure", far),
        "near_verdict_in_focus_rate": _rate(v == "in_focus", true <= in_focus_max_level),
        "mean_certainty": round(float(certainty(probs).mean()), 4),
    }


def whole_field_metrics(model: Any, sources: list[D.Source], z_um: list[float], optics: Optics,
                        camera: NoiseModel, seed: int, with_stain: bool = False,
                        noise_frames: int = 64) -> dict[str, Any]:
    """Whole-field metrics of a loaded core model (``FocusModel``) on ``sources``.

    Returns ``{"widefield": ..., "confocal": ..., "noise": ...}``: accuracy, within one
    level, ECE of the whole-image distribution, far-plane in-focus rate, mean certainty;
    for noise frames the in-focus call rate per noise type.
    """
    from napari_focusqa.core.assess import assess_image, certainty

    rng = np.random.default_rng([seed, 5150])
    detector = DetectorModel()
    out: dict[str, Any] = {}
    for kind in ("widefield", "confocal"):
        kernels = kernel_bank(kind, 1.0 if kind == "confocal" else 0.0, z_um, optics)
        probs, true, verdicts = [], [], []
        for s in sources:
            bank = fft_blur_bank(s.image, kernels)
            for li in range(len(z_um)):
                clean = bank[li][None]
                raw = (detector if kind == "confocal" else camera).apply(clean, rng)[0]
                r = assess_image(raw, model, stain=s.stain if with_stain else None)
                probs.append(r.probability)
                true.append(li)
                verdicts.append(getattr(r, "verdict", None))
        out[kind] = _summary(np.asarray(probs), np.asarray(true), verdicts,
                             model.in_focus_max_level)
    raw, types = noise_patches(noise_frames, rng, 256)
    called, certs, verdicts = [], [], []
    for img in raw:
        r = assess_image(img, model, stain="generic" if with_stain else None)
        assert r.probability is not None
        called.append(bool(r.predicted_level is not None
                           and r.predicted_level <= model.in_focus_max_level))
        certs.append(float(certainty(r.probability)))
        verdicts.append(getattr(r, "verdict", None))
    c = np.asarray(called)
    v = np.asarray(verdicts, dtype=object)
    out["noise"] = {"n_frames": int(noise_frames),
                    "in_focus_rate": round(float(c.mean()), 4),  # the model's level alone
                    "verdict_in_focus_rate": round(float((v == "in_focus").mean()), 4),
                    "no_structure_rate": round(float((v == "no_structure").mean()), 4),
                    "mean_certainty": round(float(np.mean(certs)), 4),
                    "in_focus_rate_by_type": {NOISE_TYPES[t]: round(float(c[types == t].mean()), 4)
                                              for t in np.unique(types)}}
    return out
