"""Image scores used by the autofocus algorithms.

- ``sf``: spatial frequency (core metric), higher is sharper (the classic baseline).
- ``blur:sf``: ``-log(SF)``, lower is sharper. The log turns the sample's contrast and
  brightness (a factor on SF) into an additive offset, which the few-shot fit removes.
  (Dividing by the mean intensity was tried and moved the curve's minimum away from the
  SF peak by ~0.3 DoF on the deconwolf stack; see docs/autofocus.md.)
- ``blur:<model id>``: the expected defocus level of a levels model (lower is sharper),
  i.e. ``assess_image(image, model).expected_level``: the sample-invariant score of
  DeepFocus when a trained levels model is installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_focusqa.core.errors import FocusQAError
from napari_focusqa.core.metrics import spatial_frequency


def image_stats(img: np.ndarray) -> dict[str, float]:
    a = np.asarray(img, dtype=np.float32)
    return {"mean": float(a.mean()), "max": float(a.max()), "sf": float(spatial_frequency(a))}


class Scorer:
    """Callable ``scorer(image) -> (score, stats)``.

    Parameters
    ----------
    kind : {"sf", "blur"}
        Sharpness (higher is sharper) or blur (lower is sharper).
    model : str, path, FocusModel or None
        Levels model for the ``blur`` kind; None means ``blur:sf``.
    stain : str, optional
        Stain class passed to stain-aware models.
    """

    def __init__(self, kind: str = "blur", model: Any = None, stain: str | None = None) -> None:
        if kind not in ("sf", "blur"):
            raise FocusQAError(f"score: expected 'sf' or 'blur', got {kind!r}")
        self.kind = kind
        self.stain = stain
        self.model = None
        #: how the model was given (id or card path), to rebuild the scorer later
        self.model_ref: str | None = None
        if model is not None and kind == "blur":
            from napari_focusqa.core.model import load_model

            fm = load_model(model)
            if fm.task not in ("levels", "levels-stain"):
                raise FocusQAError(f"model: {fm.id} is a {fm.task!r} model; a levels model is "
                                   "needed for the blur score")
            self.model = fm
            self.model_ref = str(model) if not hasattr(model, "card") else fm.id

    @property
    def name(self) -> str:
        if self.kind == "sf":
            return "sf"
        return f"blur:{self.model.id}" if self.model is not None else "blur:sf"

    @property
    def lower_is_sharper(self) -> bool:
        return self.kind == "blur"

    def __call__(self, img: np.ndarray) -> tuple[float, dict[str, Any]]:
        st = image_stats(img)
        if self.kind == "sf":
            return st["sf"], st
        if self.model is None:
            return float(-np.log(st["sf"] + 1e-9)), st
        from napari_focusqa.core.assess import assess_image

        res = assess_image(img, self.model, stain=self.stain, metrics=())
        level = res.expected_level
        st["expected_level"] = float("nan") if level is None else float(level)
        st["certainty"] = float(res.aggregate_certainty or 0.0)
        return st["expected_level"], st

    @classmethod
    def from_name(cls, name: str, stain: str | None = None) -> Scorer:
        """Inverse of :attr:`name` (loads the model named in ``blur:<id>``)."""
        if name == "sf":
            return cls("sf")
        if name == "blur:sf":
            return cls("blur")
        if name.startswith("blur:"):
            return cls("blur", model=name[5:], stain=stain)
        raise FocusQAError(f"score: unknown score name {name!r}")
