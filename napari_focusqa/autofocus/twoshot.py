"""Calibration-free two-shot autofocus from a levels model and the optics.

The 11 classes of ``fqa-levels`` are blur diameters (the card's ``blur_diameter_px``;
the training simulation, :mod:`napari_focusqa.training.simulate`, made level ``i`` by
defocusing a Born–Wolf PSF until its blur diameter was ``d_i`` pixels). In that geometry
a blur diameter ``D`` (px) at defocus ``z`` is ::

    D(z)^2 = D_airy^2 + (2 |z| NA / (n px))^2,   D_airy = 2.44 λ / (NA px)

so with the instrument's NA, emission wavelength λ, immersion index n and pixel size px
(from the file, the configuration or flags; never assumed) the root of the expected
squared diameter ``sqrt(sum_i p_i d_i^2)`` of one image gives ``|Δz|`` (squared: the
geometry and the two-reading solve below are linear in D²; the plain expected diameter
reads defocus too small — deconwolf 86 % within 1 DoF instead of 95 %). Diameters at or beyond level K-2 mean
"at least this far" (the model saturates). The search:

1. image 1 at the start ``z1`` → ``a = |Δz1|``;
2. image 2 at ``z2 = z1 + δ`` (δ = ``max(a, 2 DoF)`` towards the side with more
   travel, planned inside the limits) → ``b = |Δz2|``. (A longer step after a saturated
   image 1, ``2 z_sat``, was tried: it overshoots near starts to the other side of focus,
   where one unsaturated reading has two candidates that the saturated image cannot
   tell apart; 64 % within 1 DoF on deconwolf instead of 86 %.)
3. the focus from both readings (:func:`solve_focus`), checked against the two
   images' whole level posteriors (:func:`solve_focus_posterior`): kept when it lies
   among the foci the posteriors find as likely as their best (within a factor 2);
   otherwise the posteriors' own best focus; then one move to it and a confirming
   image. Exactly 2 + 1 images.

Beyond the model's range a reading is not always flagged: on images blurred far past
the largest training diameter the posterior can be bimodal ("2.5 µm or beyond the
range"), and its RMS diameter then reads a mid value that the solve takes as a
distance (Born–Wolf simulation, NA 0.75: ~5 µm read from 8 to 14 µm away). The pair's
likelihood shows it as a plateau: every focus beyond the range is as likely. A plateau
wider than ``z_sat``, two saturated readings, or a model that calls the clearly
blurrier image (SF, :func:`sf_side`) the nearer one by more than 1 DoF mean the same:
the levels cannot locate focus, but the images' spatial frequency gives the side (the
sharper image is the nearer one). When the SF of the pair differs by more than
:data:`SF_SIDE_MIN` the run takes one guarded step of ``1.5 z_sat`` from the sharper
image towards focus and its confirming image; if that image still reads saturated the
run fails (stage back at the start) — a bounded guess, never a search. When the SF
does not tell either, the run fails without moving.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from napari_focusqa.autofocus.context import RunContext
from napari_focusqa.autofocus.optics import Optics
from napari_focusqa.core.assess import airy_diameter_px
from napari_focusqa.core.errors import FocusQAError

#: optics fields twoshot needs, and the CLI flag that gives each
REQUIRED_OPTICS = {"na": "--na", "wavelength_nm": "--wavelength-nm",
                   "immersion_n": "--immersion-n", "pixel_size_um": "--pixel-size-um"}


def resolve_optics(microscope: Any, optics: Optics | dict[str, Any] | None) -> Optics:
    """The optics two-shot uses: ``optics`` if given, else the microscope's (file
    metadata / configuration); the pixel size may come from the microscope.

    Raises
    ------
    FocusQAError
        Naming the first missing (or only assumed) field.
    """
    info: dict[str, Any] = {}
    try:
        info = dict(microscope.info() or {})
    except Exception:
        info = {}
    o: Any = optics if optics is not None else info.get("optics")
    if isinstance(o, dict):
        o = Optics.from_dict(o)
    missing = None
    if o is None:
        missing = "na"
    else:
        for name in ("wavelength_nm", "immersion_n"):
            if name in o.assumed:
                missing = name
                break
        px = o.pixel_size_um or info.get("pixel_size_um")
        if missing is None and not px:
            missing = "pixel_size_um"
        elif missing is None and o.pixel_size_um is None:
            o = Optics(na=o.na, wavelength_nm=o.wavelength_nm, immersion_n=o.immersion_n,
                       pixel_size_um=float(px or 0.0), assumed=o.assumed)
    if missing is not None:
        raise FocusQAError(
            f"{missing}: the twoshot method needs the optics (NA, emission wavelength, "
            f"immersion index, pixel size); {missing} is not known: give "
            f"{REQUIRED_OPTICS[missing]} or use a file/config that records it")
    assert o is not None
    return o


class LevelGeometry:
    """Level → blur diameter (card) → ``|Δz|`` (µm) for one instrument's optics."""

    def __init__(self, model: Any, optics: Optics) -> None:
        diam = model.card.get("blur_diameter_px")
        if not diam or len(diam) != model.num_classes:
            raise FocusQAError(f"model: {model.id} has no blur_diameter_px for its "
                               f"{model.num_classes} levels; twoshot needs a levels model "
                               "whose card gives them (e.g. fqa-levels)")
        self.model = model
        self.diameters = np.asarray(diam, dtype=np.float64)
        self.optics = optics
        px = float(optics.pixel_size_um or 0.0)
        self.px = px
        airy = airy_diameter_px(optics.na, optics.wavelength_nm, px)
        if airy is None:
            raise FocusQAError("pixel_size_um: twoshot needs the pixel size at the sample "
                               "(give --pixel-size-um or use a file/config that records it)")
        self.airy_px = airy
        #: readings at or beyond this diameter are lower bounds
        self.saturation_px = float(self.diameters[-2])

    def z_for_diameter(self, d_px: float) -> float:
        geo = math.sqrt(max(d_px * d_px - self.airy_px**2, 0.0))
        return geo * self.px * self.optics.immersion_n / (2.0 * self.optics.na)

    @property
    def z_saturation_um(self) -> float:
        return self.z_for_diameter(self.saturation_px)

    def measure(self, img: np.ndarray, stain: str | None = None,
                ) -> tuple[float, bool, dict[str, Any]]:
        """``(|Δz| µm, saturated, stats)`` of one image (``nan`` when not finite)."""
        from napari_focusqa.autofocus.scoring import image_stats
        from napari_focusqa.core.assess import assess_image

        res = assess_image(img, self.model, stain=stain, metrics=())
        p = res.probability
        st: dict[str, Any] = image_stats(img)
        if p is None or not np.all(np.isfinite(p)):
            st["abs_dz_um"] = float("nan")
            return float("nan"), False, st
        # the posterior mean of D², not the square of the mean D: the geometry and the
        # two-reading solve are linear in D² (and (E D)² <= E D² reads too sharp)
        d = float(np.sqrt(p @ self.diameters**2))
        z = self.z_for_diameter(d)
        sat = d >= self.saturation_px
        st.update(expected_level=float(res.expected_level or 0.0), blur_diameter_px=d,
                  abs_dz_um=z, saturated=sat, levels_p=[float(v) for v in p])
        return z, sat, st

    def level_index(self, dist_um: np.ndarray, floor_um: float) -> np.ndarray:
        """Continuous level index (interpolated in D², clamped to the levels) of an
        image ``dist_um`` from focus whose in-focus reading is ``floor_um``."""
        zz2 = np.asarray(dist_um, dtype=np.float64) ** 2 + floor_um**2
        d2 = zz2 * (2.0 * self.optics.na / (self.optics.immersion_n * self.px)) ** 2
        d2 = d2 + self.airy_px**2
        return np.interp(d2, self.diameters**2, np.arange(len(self.diameters), dtype=float))

    def log_likelihood(self, p: np.ndarray, dist_um: np.ndarray, floor_um: float,
                       ) -> np.ndarray:
        """``log(P(level at dist_um) + LIK_FLOOR)`` from one image's level posterior
        ``p`` (linear between the two nearest levels)."""
        lv = self.level_index(dist_um, floor_um)
        i = np.minimum(np.floor(lv).astype(int), len(p) - 2)
        w = lv - i
        return np.asarray(np.log(p[i] * (1.0 - w) + p[i + 1] * w + LIK_FLOOR))


#: probability added to every level before the log: one image's posterior may be wrong
#: (a bimodal or misplaced posterior never vetoes a focus the other image supports)
LIK_FLOOR = 0.02
#: candidate foci whose pair log-likelihood is within this of the best are "as likely"
LIK_TOL = math.log(2.0)
#: in-focus reading floor (the model's reading at focus) allowed, as a fraction of z_sat
FLOOR_MAX_FRAC = 0.5


def solve_focus_posterior(geom: LevelGeometry, r1: tuple[float, np.ndarray],
                          r2: tuple[float, np.ndarray], lo: float, hi: float,
                          step: float) -> tuple[float, float, float, float]:
    """Focus from two images' level posteriors ``(z, p)`` at known positions.

    Every candidate focus ``f`` in ``[lo, hi]`` (grid ``step``) predicts each image's
    level from its distance ``|z - f|`` through the geometry (a reading floor ``c``,
    the model's unknown in-focus reading, added in quadrature and maximised over
    ``0 … FLOOR_MAX_FRAC·z_sat``); the pair's log-likelihood is the sum of
    ``log(P_i(level) + LIK_FLOOR)``. A bimodal posterior ("2.5 µm or beyond the
    range") is resolved by the other image, and a reading beyond the range is a lower
    bound by construction (the top level covers every larger distance).
    Returns ``(f, best_lo, best_hi, floor)``: the most likely focus, the span of foci
    within :data:`LIK_TOL` of it (a wide span: the pair does not locate focus, e.g.
    both images beyond the model's range) and the floor at ``f``.
    """
    (z1, p1), (z2, p2) = r1, r2
    n = int(min(max((hi - lo) / step, 1.0), 4000.0))
    fs = np.linspace(lo, hi, n + 1)
    floors = np.linspace(0.0, FLOOR_MAX_FRAC * geom.z_saturation_um, 11)
    ll = np.stack([geom.log_likelihood(p1, np.abs(z1 - fs), c)
                   + geom.log_likelihood(p2, np.abs(z2 - fs), c) for c in floors])
    best = ll.max(axis=0)
    j = int(np.argmax(best))
    near = fs[best >= best[j] - LIK_TOL]
    return (float(fs[j]), float(near.min()), float(near.max()),
            float(floors[int(np.argmax(ll[:, j]))]))


def solve_focus(r1: tuple[float, float, bool], r2: tuple[float, float, bool],
                ) -> tuple[float, str]:
    """Focus ``f`` from two unsigned readings ``(z, |z - f|, saturated)``.

    Both unsaturated: a reading is modelled as ``m^2 = (z - f)^2 + c^2`` (``c``: the
    model's in-focus floor, unknown), so ``a^2 - b^2 = (z1 - f)^2 - (z2 - f)^2`` gives
    ``f = (z1 + z2)/2 - (a^2 - b^2) / (2 (z1 - z2))`` with no sign choice and no floor.
    One saturated: the other reading's two candidates ``z ± m``, keeping the one farther
    from the saturated image. Both saturated: FocusQAError (side unknown).
    Returns ``(f, rule)``.
    """
    (z1, a, s1), (z2, b, s2) = r1, r2
    if s1 and s2:
        raise FocusQAError(
            "twoshot: both images are beyond the levels model's range, so the side of "
            "focus is unknown; start closer or use fewshot")
    if not s1 and not s2:
        return (z1 + z2) / 2.0 - (a * a - b * b) / (2.0 * (z1 - z2)), "difference of squares"
    zu, mu, zs = (z2, b, z1) if s1 else (z1, a, z2)
    cands = (zu - mu, zu + mu)
    return max(cands, key=lambda f: abs(f - zs)), "nearer image + side of the saturated one"


#: relative SF difference of a pair below which SF does not tell which image is nearer
SF_SIDE_MIN = 0.02


def sf_side(r1: tuple[float, float], r2: tuple[float, float]) -> float | None:
    """Direction (+1/-1) from the sharper of two images ``(z, sf)`` away from the
    other one, i.e. towards focus when both lie on the same side of it; None when their
    SF differs by less than :data:`SF_SIDE_MIN` (relative)."""
    (z1, s1), (z2, s2) = r1, r2
    if not (math.isfinite(s1) and math.isfinite(s2)) or max(s1, s2) <= 0:
        return None
    if abs(s1 - s2) / max(s1, s2) < SF_SIDE_MIN:
        return None
    near, far = (z1, z2) if s1 > s2 else (z2, z1)
    return 1.0 if near > far else -1.0


def twoshot(ctx: RunContext, geom: LevelGeometry, *, dof: float,
            stain: str | None = None) -> float:
    guard, run = ctx.guard, ctx.run
    lim = guard.limits
    run.score_name = f"abs_dz_um:{geom.model.id}"
    run.info["twoshot"] = {"optics": geom.optics.to_dict(), "airy_px": geom.airy_px,
                           "saturation_um": geom.z_saturation_um}

    def score(img: np.ndarray) -> tuple[float, dict[str, Any]]:
        z, _sat, st = geom.measure(img, stain)
        return z, st

    def reading(acq: Any) -> tuple[float, float, bool]:
        if not math.isfinite(acq.score):
            raise FocusQAError("twoshot: the levels model gave no finite defocus for image "
                               f"{acq.index + 1}; the stage was not moved for it")
        return acq.z_um, acq.score, bool(acq.stats.get("saturated"))

    acq1, _ = ctx.acquire(None, score)
    z1, a, sat1 = reading(acq1)
    zsat = geom.z_saturation_um
    mag = min(max(a, 2.0 * dof), lim.max_step_um)
    side = 1.0 if (lim.z_max_um - z1) >= (z1 - lim.z_min_um) else -1.0
    z2 = z1 + side * mag
    if not lim.contains(z2):
        z2 = lim.clip(z1 - side * mag) if lim.contains(z1 - side * mag) else lim.clip(z2)
    if abs(z2 - z1) < dof:
        raise FocusQAError("twoshot: no room inside the z limits for the second image "
                           f"(needs a step of at least 1 DoF = {dof:.3f} µm)")
    acq2, _ = ctx.acquire(z2, score)
    r2 = reading(acq2)
    run.info["twoshot"]["readings_um"] = [[z1, a, sat1], list(r2)]
    # candidate foci: inside the limits and within twice the top level's |Δz| of an
    # image (farther, both images read the top level alike: the likelihood is flat)
    reach = 2.0 * geom.z_for_diameter(float(geom.diameters[-1]))
    f, best_lo, best_hi, floor = solve_focus_posterior(
        geom, (z1, np.asarray(acq1.stats["levels_p"])),
        (acq2.z_um, np.asarray(acq2.stats["levels_p"])),
        max(lim.z_min_um, min(z1, z2) - reach), min(lim.z_max_um, max(z1, z2) + reach),
        dof / 10.0)
    run.info["twoshot"].update(likely_focus_um=[best_lo, best_hi], floor_um=floor)
    sf1, sf2 = float(acq1.stats["sf"]), float(acq2.stats["sf"])
    rule = "pair likelihood of the level posteriors (the readings' solve disagreed)"
    f_pt = None if (sat1 and r2[2]) else solve_focus((z1, a, sat1), r2)
    # the model calls the clearly blurrier image (SF) the nearer one by more than 1 DoF:
    # its readings are not distances here (beyond its range); only the side is known
    contradicts = (sf_side((z1, sf1), (acq2.z_um, sf2)) is not None
                   and abs(a - r2[1]) > dof and (sf1 > sf2) != (a < r2[1]))
    run.info["twoshot"]["sf_contradicts_levels"] = contradicts
    guessed = f_pt is None or contradicts
    if not guessed and f_pt is not None and (
            sat1 or r2[2] or best_lo <= f_pt[0] <= best_hi):
        f, rule = f_pt  # the readings' solve (confirmed by the posteriors when unflagged)
    elif not guessed and best_hi - best_lo > zsat:
        guessed = True  # the posteriors do not locate focus: both beyond the range
    if guessed:
        toward = sf_side((z1, sf1), (acq2.z_um, sf2))
        run.info["twoshot"]["sf_side"] = toward
        if toward is None:
            raise FocusQAError(
                "twoshot: both images are beyond the levels model's range "
                f"(> {zsat:.2f} µm) and their sharpness does not tell the side of focus; "
                "no move towards focus was made, stage back at the start (start closer "
                "or use fewshot)")
        near = z1 if sf1 > sf2 else acq2.z_um
        f = near + toward * min(1.5 * zsat, lim.max_step_um)
        why = ("both saturated" if f_pt is None else "SF contradicts the levels"
               if contradicts else "both beyond range (posteriors)")
        rule = f"{why}: SF side, bounded step of 1.5 z_sat"
    run.info["twoshot"].update(focus_um=f, rule=rule)
    if not math.isfinite(f):
        raise FocusQAError("twoshot: non-finite focus estimate; the stage was not moved")
    acq3, _ = ctx.acquire(f, score)  # the one move (refused if outside the limits)
    if guessed and bool(acq3.stats.get("saturated")):
        raise FocusQAError(
            "twoshot: both images were beyond the levels model's range; the guarded step "
            f"towards the sharper side still reads > {zsat:.2f} µm from focus (not in "
            "focus; stage back at the start)")
    run.stop_reason = (f"two-shot ({rule}): |dz| {a:.2f} and {r2[1]:.2f} µm -> focus; "
                       f"confirming image says {acq3.score:.2f} µm")
    return f
