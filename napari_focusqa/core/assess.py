"""Per-patch probabilities -> levels, certainties and the whole-image verdict (Yang et al.).

certainty = 1 - H(p) / log K  (H: Shannon entropy, natural log)
whole-image probability = certainty-weighted mean of the distributions of the patches
    that hold structure (:mod:`napari_focusqa.core.structure`; empty patches are left out)
aggregate certainty = certainty of that whole-image distribution
verdict = "no_structure" when fewer than MIN_STRUCTURED_FRACTION of the patches hold
    structure, else "in_focus" / "out_of_focus" from the aggregate's most likely level
    (docs/verdicts.md)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_focusqa.core import metrics as _metrics
from napari_focusqa.core.errors import ImageError
from napari_focusqa.core.patches import DEFAULT_PATCH_SIZE, PatchGrid, make_grid
from napari_focusqa.core.structure import is_no_structure, patch_structure, structured_fraction
from napari_focusqa.core.validate import as_image2d

#: columns of the one-record-per-plane table (CLI CSV, Fiji Results, napari table)
RECORD_COLUMNS = (
    "file",
    "channel",
    "stain",
    "z_index",
    "z_um",
    "model",
    "predicted_level",
    "expected_level",
    "mean_certainty",
    "aggregate_certainty",
    "in_focus",
    "verdict",
    "structured_fraction",
    "sf",
    "probabilities",
)

#: in a z-stack, a plane with less than this fraction of the channel's best SF is not in
#: focus: the stack context that single-plane models lack on optically sectioned stacks
MIN_STACK_SF_RATIO = 0.5

#: the three plane verdicts (``verdict`` is None for a metrics-only result with structure)
VERDICTS = ("in_focus", "out_of_focus", "no_structure")

#: columns of the one-row-per-patch table
PATCH_COLUMNS = (
    "row",
    "col",
    "y0",
    "x0",
    "y1",
    "x1",
    "level",
    "certainty",
    "expected_level",
    "empty",
)


def certainty(probs: np.ndarray, axis: int = -1) -> np.ndarray:
    """``1 - H(p)/log K`` along ``axis``; 1 for a one-hot, 0 for a uniform distribution."""
    p = np.asarray(probs, dtype=np.float64)
    k = p.shape[axis]
    if k < 2:
        raise ImageError(f"probs: need at least 2 classes, got {k}")
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    h = -plogp.sum(axis=axis)
    return np.clip(1.0 - h / np.log(k), 0.0, 1.0)


def aggregate(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Certainty-weighted mean of ``(..., K)`` patch distributions.

    Returns ``(P, patch_certainty)``. When every patch has zero certainty the plain mean
    is used (no patch is preferred over another).
    """
    p = np.asarray(probs, dtype=np.float64)
    flat = p.reshape(-1, p.shape[-1])
    c = certainty(flat)
    w = c.sum()
    whole = (c[:, None] * flat).sum(axis=0) / w if w > 0 else flat.mean(axis=0)
    return whole, c.reshape(p.shape[:-1])


@dataclass
class FocusResult:
    """Focus assessment of one 2D image.

    ``probabilities`` is ``(rows, cols, K)`` or ``None`` when no model was used (then
    only the classic metrics are filled in). ``empty`` is the per-patch mask of
    :func:`napari_focusqa.core.structure.patch_structure` (on ``grid`` when a model was
    used, on the default patch grid for a metrics-only result); ``None`` means unknown
    (every patch counts).
    """

    grid: PatchGrid | None
    probabilities: np.ndarray | None
    model_id: str | None = None
    in_focus_max_level: int = 2
    metrics: dict[str, float] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    empty: np.ndarray | None = None
    #: this plane's SF over the highest SF of its z-stack channel (set by ChannelCurve)
    stack_sf_ratio: float | None = None

    probability: np.ndarray | None = field(init=False, repr=False)
    patch_certainty: np.ndarray | None = field(init=False, repr=False)
    patch_level: np.ndarray | None = field(init=False, repr=False)
    patch_expected_level: np.ndarray | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.empty is not None:
            self.empty = np.asarray(self.empty, dtype=bool)
        if self.probabilities is not None:
            p = np.asarray(self.probabilities, dtype=np.float64)
            self.probabilities = p
            if self.empty is not None and self.empty.shape != p.shape[:-1]:
                raise ImageError(
                    f"empty: mask shape {self.empty.shape} does not match the patch grid "
                    f"{p.shape[:-1]}"
                )
            keep = self._structured()
            if keep is None:
                self.probability, self.patch_certainty = aggregate(p)
            else:  # empty patches are left out of the whole-image distribution
                self.probability, _ = aggregate(p[keep])
                self.patch_certainty = certainty(p)
            self.patch_level = p.argmax(axis=-1)
            k = p.shape[-1]
            self.patch_expected_level = p @ np.arange(k)
        else:
            self.probability = None
            self.patch_certainty = None
            self.patch_level = None
            self.patch_expected_level = None

    def _structured(self) -> np.ndarray | None:
        """Mask of the patches that count, or None when all count (no mask / all empty)."""
        if self.empty is None or self.empty.all() or not self.empty.any():
            return None
        return ~self.empty

    # --- whole-image summaries -------------------------------------------------------
    @property
    def num_classes(self) -> int | None:
        return None if self.probability is None else int(self.probability.size)

    @property
    def predicted_level(self) -> int | None:
        return None if self.probability is None else int(np.argmax(self.probability))

    @property
    def expected_level(self) -> float | None:
        if self.probability is None:
            return None
        return float(self.probability @ np.arange(self.probability.size))

    @property
    def mean_certainty(self) -> float | None:
        """Mean certainty of the structured patches (all patches when none or all are)."""
        if self.patch_certainty is None:
            return None
        keep = self._structured()
        c = self.patch_certainty if keep is None else self.patch_certainty[keep]
        return float(c.mean())

    @property
    def aggregate_certainty(self) -> float | None:
        return None if self.probability is None else float(certainty(self.probability))

    @property
    def structured_fraction(self) -> float | None:
        """Fraction of patches holding structure (None when the test was not run)."""
        return None if self.empty is None else structured_fraction(self.empty)

    @property
    def verdict(self) -> str | None:
        """``"in_focus"``, ``"out_of_focus"`` or ``"no_structure"`` (one of :data:`VERDICTS`).

        ``no_structure`` whenever the structured fraction is below
        :data:`~napari_focusqa.core.structure.MIN_STRUCTURED_FRACTION`, with or without a
        model. Otherwise the model decides (level <= ``in_focus_max_level``); a
        metrics-only result with structure has no verdict (None). In a z-stack, a plane
        whose SF is below :data:`MIN_STACK_SF_RATIO` of the channel's best plane is
        ``out_of_focus`` whatever the model says (stack context, docs/verdicts.md).
        """
        frac = self.structured_fraction
        if frac is not None and is_no_structure(frac):
            return "no_structure"
        lvl = self.predicted_level
        if lvl is None:
            return None
        if lvl > self.in_focus_max_level:
            return "out_of_focus"
        ratio = self.stack_sf_ratio
        if ratio is not None and ratio < MIN_STACK_SF_RATIO:
            return "out_of_focus"
        return "in_focus"

    @property
    def in_focus(self) -> bool | None:
        """``verdict == "in_focus"`` (False for ``no_structure``; None without a model)."""
        if self.predicted_level is None:
            return None
        return self.verdict == "in_focus"

    @property
    def sf(self) -> float | None:
        v = self.metrics.get("sf")
        return None if v is None else float(v)

    # --- table forms ------------------------------------------------------------------
    def to_record(self) -> dict[str, Any]:
        """One flat record (the CLI/CSV/Fiji row) with :data:`RECORD_COLUMNS` first."""
        rec: dict[str, Any] = {k: self.source.get(k) for k in ("file", "channel", "stain", "z_index", "z_um")}
        rec.update(
            model=self.model_id,
            predicted_level=self.predicted_level,
            expected_level=_round(self.expected_level),
            mean_certainty=_round(self.mean_certainty),
            aggregate_certainty=_round(self.aggregate_certainty),
            in_focus=self.in_focus,
            verdict=self.verdict,
            structured_fraction=_round(self.structured_fraction),
            sf=_round(self.sf),
            probabilities=None
            if self.probability is None
            else [round(float(v), 6) for v in self.probability],
        )
        for k, v in self.metrics.items():
            if k != "sf":
                rec[k] = _round(v)
        if self.stack_sf_ratio is not None:
            rec["stack_sf_ratio"] = _round(self.stack_sf_ratio)
        for k, v in self.source.items():
            rec.setdefault(k, v)
        return rec

    def patch_table(self) -> list[dict[str, Any]]:
        """One row per patch: position, level, certainty, expected level, ``empty`` (no
        structure: left out of the aggregate), probabilities."""
        if self.grid is None or self.probabilities is None:
            return []
        assert self.patch_level is not None and self.patch_certainty is not None
        assert self.patch_expected_level is not None
        boxes = self.grid.boxes()
        rows = []
        for r in range(self.grid.rows):
            for c in range(self.grid.cols):
                y0, x0, y1, x1 = (int(v) for v in boxes[r, c])
                rows.append(
                    {
                        "row": r,
                        "col": c,
                        "y0": y0,
                        "x0": x0,
                        "y1": y1,
                        "x1": x1,
                        "level": int(self.patch_level[r, c]),
                        "certainty": round(float(self.patch_certainty[r, c]), 6),
                        "expected_level": round(float(self.patch_expected_level[r, c]), 6),
                        "empty": None if self.empty is None else bool(self.empty[r, c]),
                        "probabilities": [round(float(v), 6) for v in self.probabilities[r, c]],
                    }
                )
        return rows

    def to_dict(self, *, patches: bool = False) -> dict[str, Any]:
        d = self.to_record()
        if self.probabilities is not None:  # the verdict's threshold (optics-aware)
            d["in_focus_max_level"] = int(self.in_focus_max_level)
        d["grid"] = None if self.grid is None else self.grid.to_dict()
        if patches:
            d["patches"] = self.patch_table()
        return d


def _round(v: float | None, nd: int = 6) -> float | None:
    return None if v is None else round(float(v), nd)


def airy_diameter_px(na: float | None, wavelength_nm: float | None,
                     pixel_size_um: float | None) -> float | None:
    """Diameter of the Airy disc (``2.44 λ / NA``) in pixels, or None when a value is
    missing or not positive."""
    vals = (na, wavelength_nm, pixel_size_um)
    if any(v is None or not np.isfinite(v) or v <= 0 for v in vals):
        return None
    assert na is not None and wavelength_nm is not None and pixel_size_um is not None
    return float(2.44 * wavelength_nm / 1000.0 / na / pixel_size_um)


def in_focus_max_level_for(model: Any, airy_px: float | None) -> int:
    """The verdict threshold of a levels model for an image whose in-focus blur (its
    Airy disc) is ``airy_px`` pixels.

    A model's levels are blur diameters (card ``blur_diameter_px``). Level 0 is the Airy
    disc at the training optics, and the card's ``in_focus_max_level`` ``t`` is the
    tolerance above it. An instrument whose Airy disc is larger in pixels (a high NA
    sampled finely: deconwolf's NA 1.45 at 0.13 µm is 5.97 px against the training's
    3.78 px) reads focus at level ``L0 = interp(airy_px, blur_diameter_px, levels)``.
    The threshold is then ``t + round(L0)``, at most K − 2. It is the card's ``t`` when
    ``airy_px`` is None or not larger than level 0, or when the card has no diameters.
    """
    card = getattr(model, "card", None) or {}
    d = card.get("blur_diameter_px")
    if airy_px is None or not d or len(d) < 3 or not np.isfinite(airy_px) or airy_px <= d[0]:
        return int(getattr(model, "in_focus_max_level", 2))
    return in_focus_max_level_at(
        model, float(np.interp(airy_px, d, np.arange(len(d), dtype=float))), len(d))


def in_focus_max_level_at(model: Any, focus_level: float, num_classes: int | None = None,
                          ) -> int:
    """The card's threshold ``t`` of a levels model shifted for an instrument that reads
    focus at level ``focus_level``: ``t + round(max(focus_level, 0))``, at most K − 2
    (``num_classes``, default the model's). From the optics
    (:func:`in_focus_max_level_for`) or from a calibration's measured in-focus reading
    (:meth:`~napari_focusqa.autofocus.calibrate.Calibration.in_focus_max_level`)."""
    t = int(getattr(model, "in_focus_max_level", 2))
    k = int(num_classes if num_classes is not None else model.num_classes)
    return int(min(t + int(round(max(focus_level, 0.0))), k - 2))


def assess_image(
    image: Any,
    model: Any = None,
    *,
    stain: str | None = None,
    metrics: Sequence[str] = ("sf",),
    patch_size: int | None = None,
    source: dict[str, Any] | None = None,
    cancel: Callable[[], bool] | None = None,
    structure_test: bool = True,
    airy_px: float | None = None,
) -> FocusResult:
    """Assess one 2D image.

    Parameters
    ----------
    image : array_like, (Y, X)
        Any real integer, bool or float dtype.
    model : str, path, FocusModel or None
        Model id / card path / loaded model. ``None`` computes the classic metrics only.
    stain : str, optional
        Stain class (see :mod:`napari_focusqa.core.stains`) for stain-aware models.
    metrics : sequence of str
        Names from :data:`napari_focusqa.core.metrics.METRICS`, computed on the whole image.
    patch_size : int, optional
        Defaults to the model's patch size (84 without a model).
    structure_test : bool
        False skips the per-patch structure test (``empty`` is None: every patch counts
        and the verdict is never ``no_structure``); for speed comparisons.
    airy_px : float, optional
        The image's Airy disc diameter in pixels (:func:`airy_diameter_px`, from the
        optics a file records). It shifts the verdict threshold
        (:func:`in_focus_max_level_for`); None keeps the card's.
    """
    from napari_focusqa.core.model import load_model

    img = as_image2d(image)
    src = dict(source or {})
    if stain is not None:
        src.setdefault("stain", stain)
    if model is None:
        vals = {name: float(_metrics.compute(name, img)) for name in metrics}
        grid = make_grid(img.shape, patch_size) if patch_size else None
        return FocusResult(
            grid=grid, probabilities=None, metrics=vals, source=src,
            empty=_metrics_only_empty(img, grid) if structure_test else None,
        )
    fm = load_model(model)
    grid = make_grid(img.shape, patch_size or fm.patch_size)
    if grid.patch_size != fm.patch_size:
        raise ImageError(
            f"patch_size: model {fm.id} was trained on {fm.patch_size}px patches, got {grid.patch_size}"
        )
    patches = grid.extract(img).reshape(-1, grid.patch_size, grid.patch_size)
    side: list[Callable[[], Any]] = [
        lambda: {name: float(_metrics.compute(name, img)) for name in metrics},
        lambda: patch_structure(img, grid).empty if structure_test else None,
    ]
    if fm.n_threads >= 2:
        # the classic metrics and the structure test run on a second thread while this
        # one normalises the patches (numpy releases the GIL); a task the second thread
        # has not started by then (a busy machine) runs here instead of being waited
        # for. The model then gets every thread to itself.
        with ThreadPoolExecutor(max_workers=1) as pool:
            futures = [pool.submit(task) for task in side]
            x = fm.prepare(patches)
            done: list[Any] = [None] * len(side)
            for i in reversed(range(len(side))):  # the last queued is the likeliest unstarted
                done[i] = side[i]() if futures[i].cancel() else futures[i].result()
        vals, empty = done
    else:
        vals, empty = (task() for task in side)
        x = fm.prepare(patches)
    probs = fm.predict_proba(x, stain=stain, cancel=cancel, prepared=True)
    return FocusResult(
        grid=grid,
        probabilities=probs.reshape(grid.rows, grid.cols, -1),
        model_id=fm.id,
        in_focus_max_level=in_focus_max_level_for(fm, airy_px),
        metrics=vals,
        source=src,
        empty=empty,
    )


#: images smaller than this (either side) get no structure test
MIN_STRUCTURE_SIZE = 8


def _metrics_only_empty(img: np.ndarray, grid: PatchGrid | None) -> np.ndarray | None:
    """Structure mask for a metrics-only result: on ``grid`` if given, else on the default
    grid (one patch as large as the image allows, when the image is smaller than that)."""
    if grid is None:
        grid = make_grid(img.shape, min(DEFAULT_PATCH_SIZE, *img.shape))
    if grid.patch_size < MIN_STRUCTURE_SIZE:
        return None
    return patch_structure(img, grid).empty
