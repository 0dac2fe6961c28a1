"""Single-shot autofocus with the instrument's own head (DeepAf, fitted per instrument).

One image → the calibration's :class:`~napari_focusqa.autofocus.spectral.SingleShotHead`
gives the signed distance from focus and a confidence → one move (none when the
prediction is within 1 DoF and the head's side of focus is no better than chance) → one
confirming image (if the confirmation is confident and still says > 1 DoF, one correction move
without a further image). Falls back to fewshot (reusing the last image) only when the
first or the confirming image is not confident, or the calibration has no head; the
reason starts ``stop_reason``.
A non-finite prediction never moves the stage (the run fails and stays at the start);
targets outside the limits are refused by the guard, never clamped.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from napari_focusqa.autofocus.calibrate import Calibration
from napari_focusqa.autofocus.context import RunContext
from napari_focusqa.autofocus.fewshot import fewshot
from napari_focusqa.autofocus.spectral import SingleShotHead
from napari_focusqa.core.errors import FocusQAError


def singleshot(ctx: RunContext, cal: Calibration | None, *, stain: str | None,
               min_confidence: float, fewshot_kwargs: dict[str, Any],
               head: SingleShotHead | None = None) -> float:
    run = ctx.run
    head = head or (cal.singleshot if cal is not None else None)

    def fallback(why: str, initial: tuple[float, np.ndarray] | None) -> float:
        run.info["fallback"] = why
        run.method_used = "fewshot"
        if cal is None:
            raise FocusQAError(f"singleshot: {why}, and the fewshot fallback needs a "
                               "calibration (run `focusqa calibrate` / Calibrate first)")
        f = fewshot(ctx, cal, stain=stain, initial=initial, **fewshot_kwargs)
        run.stop_reason = f"fallback to fewshot ({why}): {run.stop_reason}"
        return f

    if head is None:
        return fallback("the calibration has no single-shot head (recalibrate with this "
                        "version)", None)
    run.info["singleshot_head"] = {"cv": head.cv, "sign_usable": head.sign_usable,
                                   "dof_um": head.dof_um}

    def score(img: np.ndarray) -> tuple[float, dict[str, Any]]:
        from napari_focusqa.autofocus.scoring import image_stats

        z, conf, det = head.predict(img)
        st: dict[str, Any] = image_stats(img)
        st.update(dz_um=z, confidence=conf, **det)
        return z, st

    run.score_name = "dz_um:singleshot-head"
    acq, img = ctx.acquire(None, score)
    if not math.isfinite(acq.score):
        raise FocusQAError("singleshot: non-finite prediction from the first image; the "
                           "stage did not move")
    conf = float(acq.stats["confidence"])
    if conf < min_confidence:
        return fallback(f"low confidence {conf:.2f} < {min_confidence:.2f}",
                        (acq.z_um, img))
    target = acq.z_um - acq.score
    if abs(acq.score) <= head.dof_um and not head.sign_usable:
        # predicted within 1 DoF, but this head's side of focus is no better than chance:
        # a move of that size would go either way, so stay and confirm instead
        target = acq.z_um
        run.info["singleshot_stayed"] = "within 1 DoF, side unknown: no move"
    acq2, img2 = ctx.acquire(target, score)  # the one move; the guard refuses, never clamps
    if not math.isfinite(acq2.score):
        run.stop_reason = "moved once; the confirming image gave no finite prediction"
        return acq2.z_um
    if abs(acq2.score) <= head.dof_um:
        run.stop_reason = "confirmed within 1 DoF"
        return acq2.z_um
    if acq2.stats["confidence"] < min_confidence:
        return fallback(f"the confirming image is not confident "
                        f"({acq2.stats['confidence']:.2f} < {min_confidence:.2f})",
                        (acq2.z_um, img2))
    run.stop_reason = "corrected once after the confirming image"
    return acq2.z_um - acq2.score
