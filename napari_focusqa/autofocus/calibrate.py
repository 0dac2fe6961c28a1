"""Few-shot calibration (DeepFocus): the instrument's blur curve ``b_calib(z)``.

One z-stack of any flat textured object is acquired through the guarded stage (or taken
from a stack array); every plane gets a blur score (see
:mod:`napari_focusqa.autofocus.scoring`); the curve is fitted with an inverted Moffat
profile ::

    b(z) = base - amp / (1 + ((z - z0) / alpha)**2) ** beta

whose full width at half maximum is ``FWHM = 2 alpha sqrt(2**(1/beta) - 1)`` (the
measured half-maximum width when the fit's exceeds 80 % of the range). The calibration
stores the curve centred on ``z0`` (so ``b_calib(0)`` is the sharpest point), the Moffat
parameters, the FWHM, and the depth of field: from the optics when known, otherwise
``FWHM / 2`` of the ``blur:sf`` curve (of the chosen curve if that one is unusable), so
the unit does not change with the score. When a levels model is installed, both the model's blur score and
``blur:sf`` are computed; the model's is kept when its curve is usable (centred,
R² >= 0.8, valley narrower than 3/4 of the range), else ``blur:sf`` (``score_choice``
records both). When a distance model is
installed, its output over the calibration planes is regressed on ``z`` to record its
gain and sign (``distance``; an installed but unusable model is recorded as an error).
The same planes fit the instrument's single-shot head
(:class:`~napari_focusqa.autofocus.spectral.SingleShotHead`, ``singleshot`` in the JSON,
with its sha256) and the instrument facts (``instrument``: microscope name, camera,
focus device, pixel size, channel) that a later run must match.

Calibrations are saved/loaded as JSON (:meth:`Calibration.save`, :func:`load_calibration`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_focusqa.autofocus.distance import distance_fit, find_distance_model
from napari_focusqa.autofocus.optics import Optics
from napari_focusqa.autofocus.safety import StageGuard
from napari_focusqa.autofocus.scoring import Scorer
from napari_focusqa.autofocus.spectral import SingleShotHead, instrument_of
from napari_focusqa.core.errors import Cancelled, FocusQAError, ModelCardError

CALIBRATION_FORMAT = 1


class CalibrationError(FocusQAError):
    """A calibration could not be computed or read."""


def moffat_valley(z: np.ndarray, z0: float, amp: float, base: float, alpha: float,
                  beta: float) -> np.ndarray:
    """Inverted Moffat profile (a valley of depth ``amp`` below ``base`` at ``z0``)."""
    return base - amp / (1.0 + ((np.asarray(z, dtype=np.float64) - z0) / alpha) ** 2) ** beta


def moffat_fwhm(alpha: float, beta: float) -> float:
    return float(2.0 * alpha * np.sqrt(2.0 ** (1.0 / beta) - 1.0))


def fit_moffat(z: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Least-squares Moffat-valley fit; returns parameters, ``fwhm`` and ``r2``."""
    from scipy.optimize import curve_fit

    z = np.asarray(z, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if z.size < 5 or not np.all(np.isfinite(b)):
        raise CalibrationError(f"calibration: need >= 5 finite scores, got {z.size}")
    span = float(z.max() - z.min())
    k = int(np.argmin(b))
    rng = float(b.max() - b.min()) or 1e-6
    best: tuple[float, np.ndarray] | None = None
    for a0 in (span / 8, span / 4, span / 2):
        for be0 in (0.5, 1.0, 2.5):
            p0 = [z[k], rng, float(b.max()), a0, be0]
            lo = [z.min() - span, 0.0, float(b.min()), span / 200, 0.1]
            hi = [z.max() + span, rng * 20, float(b.max()) + 10 * rng, span * 10, 20.0]
            try:
                p, _ = curve_fit(moffat_valley, z, b, p0=p0, bounds=(lo, hi), maxfev=4000)
            except (RuntimeError, ValueError):
                continue
            sse = float(np.sum((moffat_valley(z, *p) - b) ** 2))
            if best is None or sse < best[0]:
                best = (sse, p)
    if best is None:
        raise CalibrationError("calibration: the Moffat fit of the blur curve did not converge")
    sse, p = best
    sst = float(np.sum((b - b.mean()) ** 2)) or 1e-12
    z0, amp, base, alpha, beta = (float(v) for v in p)
    return {"z0": z0, "amp": amp, "base": base, "alpha": alpha, "beta": beta,
            "fwhm": moffat_fwhm(alpha, beta), "r2": 1.0 - sse / sst}


@dataclass
class Calibration:
    """A fitted blur curve (see module doc). ``z_um`` is relative to the fitted focus."""

    score_name: str
    z_um: np.ndarray
    blur: np.ndarray
    moffat: dict[str, float]
    dof_um: float
    dof_source: str
    model_ref: str | None = None
    optics: dict[str, Any] | None = None
    distance: dict[str, Any] | None = None
    source: dict[str, Any] = field(default_factory=dict)
    score_choice: dict[str, Any] = field(default_factory=dict)
    instrument: dict[str, Any] = field(default_factory=dict)
    singleshot: SingleShotHead | None = None

    @property
    def fwhm_um(self) -> float:
        return float(self.moffat["fwhm"])

    def curve(self, z_rel: np.ndarray) -> np.ndarray:
        """``b_calib`` at positions relative to focus: the measured curve (linear
        interpolation) inside its range, the Moffat fit (matched at the ends) outside."""
        z_rel = np.asarray(z_rel, dtype=np.float64)
        out = np.interp(z_rel, self.z_um, self.blur)
        m = self.moffat
        lo, hi = self.z_um[0], self.z_um[-1]
        below, above = z_rel < lo, z_rel > hi
        if below.any() or above.any():
            def mof(x: np.ndarray) -> np.ndarray:
                return moffat_valley(x, 0.0, m["amp"], m["base"], m["alpha"], m["beta"])
            if below.any():
                out[below] = mof(z_rel[below]) + (self.blur[0] - mof(np.array([lo]))[0])
            if above.any():
                out[above] = mof(z_rel[above]) + (self.blur[-1] - mof(np.array([hi]))[0])
        return out

    def in_focus_max_level(self, model: Any) -> int | None:
        """The verdict threshold for ``model`` on this instrument, or None.

        A levels model calls a patch in focus at levels <= its card's
        ``in_focus_max_level`` (``t``), which the model learnt at its training optics,
        where focus reads level 0. An instrument whose focus reads level ``b0`` (fine
        pixels, a high NA) shifts that rule by ``b0``: ``round(b0) + t`` (at most K − 2;
        :func:`~napari_focusqa.core.assess.in_focus_max_level_at`, the rule the optics use
        too), with ``b0`` the bottom of this calibration's fitted Moffat valley
        (``base - amp``). Only a calibration of the same model gives it. None when the
        calibration's score is another model or SF, or the fit is not finite.
        """
        from napari_focusqa.core.assess import in_focus_max_level_at

        mid = getattr(model, "id", None)
        t = getattr(model, "in_focus_max_level", None)
        k = getattr(model, "num_classes", None)
        if mid is None or t is None or k is None or self.score_name != f"blur:{mid}":
            return None
        b0 = float(self.moffat.get("base", np.nan)) - float(self.moffat.get("amp", np.nan))
        if not np.isfinite(b0):
            return None
        return in_focus_max_level_at(model, b0)

    def scorer(self, stain: str | None = None) -> Scorer:
        if self.score_name == "blur:sf":
            return Scorer("blur")
        return Scorer("blur", model=self.model_ref or self.score_name[5:], stain=stain)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CALIBRATION_FORMAT,
            "kind": "focusqa-autofocus-calibration",
            "score_name": self.score_name,
            "model_ref": self.model_ref,
            "fwhm_um": round(self.fwhm_um, 6),
            "dof_um": round(float(self.dof_um), 6),
            "dof_source": self.dof_source,
            "optics": self.optics,
            "moffat": {k: round(float(v), 8) for k, v in self.moffat.items()},
            "z_um": [round(float(v), 6) for v in self.z_um],
            "blur": [round(float(v), 8) for v in self.blur],
            "distance": self.distance,
            "score_choice": self.score_choice,
            "source": self.source,
            "instrument": self.instrument,
            "singleshot": None if self.singleshot is None else self.singleshot.to_dict(),
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        from napari_focusqa.io.writer import write_json

        write_json(self.to_dict(), path)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "calibration") -> Calibration:
        try:
            if d.get("kind") != "focusqa-autofocus-calibration":
                raise CalibrationError(f"{where}: not a FocusQA autofocus calibration file")
            z = np.asarray(d["z_um"], dtype=np.float64)
            b = np.asarray(d["blur"], dtype=np.float64)
            if z.ndim != 1 or z.shape != b.shape or z.size < 5 or np.any(np.diff(z) <= 0):
                raise CalibrationError(f"{where}: z_um/blur must be equal-length increasing "
                                       "arrays of >= 5 values")
            return cls(
                score_name=str(d["score_name"]), z_um=z, blur=b,
                moffat={k: float(v) for k, v in d["moffat"].items()},
                dof_um=float(d["dof_um"]), dof_source=str(d.get("dof_source", "")),
                model_ref=d.get("model_ref"), optics=d.get("optics"),
                distance=d.get("distance"), source=d.get("source") or {},
                score_choice=d.get("score_choice") or {},
                instrument=d.get("instrument") or {},
                singleshot=(None if not d.get("singleshot") else SingleShotHead.from_dict(
                    d["singleshot"], where=f"{where}: singleshot")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, CalibrationError):
                raise
            raise CalibrationError(f"{where}: malformed calibration ({exc})") from exc


def load_calibration(path: str | os.PathLike[str]) -> Calibration:
    p = os.fspath(path)
    try:
        with open(p) as fh:
            d = json.load(fh)
    except OSError as exc:
        raise CalibrationError(f"calibration: cannot read {p}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"calibration: {p} is not valid JSON ({exc.msg})") from exc
    if not isinstance(d, dict):
        raise CalibrationError(f"calibration: {p} is not a JSON object")
    return Calibration.from_dict(d, where=f"calibration {p}")


def _candidate_scorers(model: Any, stain: str | None) -> list[Scorer]:
    """``blur:<levels model>`` first when one is given/installed ("auto"), then blur:sf."""
    from napari_focusqa.core.model import default_model_id

    if model == "auto":
        model = default_model_id()
    out = []
    if model not in (None, "none"):
        out.append(Scorer("blur", model=model, stain=stain))
    out.append(Scorer("blur"))
    return out


MIN_CALIBRATION_PLANES = 7


def _measured_fwhm(z: np.ndarray, b: np.ndarray) -> float:
    """Width of the region whose blur is below half way between min and max."""
    half = 0.5 * (float(b.min()) + float(b.max()))
    below = z[b <= half]
    return float(below.max() - below.min()) if below.size > 1 else float(np.median(np.diff(z)))


def calibration_from_scores(
    z_um: np.ndarray,
    scores: dict[str, np.ndarray],
    *,
    optics: Optics | None = None,
    model_refs: dict[str, str | None] | None = None,
    source: dict[str, Any] | None = None,
    prefer: str = "model",
) -> Calibration:
    """Fit every candidate score curve and keep one (see module doc).

    A curve is *usable* when its Moffat fit has R² >= 0.8, its centre lies in the inner
    80 % of the range and its valley is narrower than 75 % of the range (measured
    half-maximum width). ``prefer="model"`` keeps a usable model score over ``blur:sf``
    (DeepFocus' sample-invariant score); ``prefer="r2"`` keeps the best fit.
    """
    z = np.asarray(z_um, dtype=np.float64)
    order = np.argsort(z)
    z = z[order]
    if z.size < MIN_CALIBRATION_PLANES:
        raise CalibrationError(f"calibration: need >= {MIN_CALIBRATION_PLANES} planes, got "
                               f"{z.size}")
    span = float(z[-1] - z[0])
    fits: dict[str, dict[str, float]] = {}
    choice: dict[str, Any] = {}
    for name, b in scores.items():
        bb = np.asarray(b, dtype=np.float64)[order]
        try:
            f = fit_moffat(z, bb)
        except CalibrationError as exc:
            choice[name] = {"error": str(exc)}
            continue
        centred = z[0] + 0.1 * span <= f["z0"] <= z[-1] - 0.1 * span
        noise = float(np.std(np.diff(bb, 2)) / np.sqrt(6)) + 1e-12
        width = _measured_fwhm(z, bb)
        if f["fwhm"] > 0.8 * span:  # the fit extrapolates far beyond the data: use the data
            f["fwhm_moffat"] = f["fwhm"]
            f["fwhm"] = width
        narrow = width <= 0.75 * span
        choice[name] = {"r2": round(f["r2"], 4), "centred": bool(centred),
                        "fwhm_um": round(f["fwhm"], 4), "measured_fwhm_um": round(width, 4),
                        "contrast_to_noise": round(f["amp"] / noise, 2)}
        ok = bool(centred and narrow and f["r2"] >= 0.8)
        choice[name]["usable"] = ok
        fits[name] = dict(f, ok=float(ok))
    usable = [n for n in fits if fits[n]["ok"]]
    if not usable:
        raise CalibrationError(
            "calibration: the blur curve has no clear minimum inside the calibrated range "
            f"(fits: {choice}); acquire a stack centred on focus and spanning several DoF"
        )
    models = [n for n in usable if n != "blur:sf"]
    if prefer == "model" and models:
        best = max(models, key=lambda n: fits[n]["r2"])
    else:
        best = max(usable, key=lambda n: (fits[n]["r2"], n == "blur:sf"))
    f = fits[best]
    choice["chosen"] = best
    bb = np.asarray(scores[best], dtype=np.float64)[order]
    moffat = {k: f[k] for k in ("z0", "amp", "base", "alpha", "beta", "fwhm", "r2")}
    if "fwhm_moffat" in f:
        moffat["fwhm_moffat"] = f["fwhm_moffat"]
    if optics is not None:
        dof, dof_src = optics.dof_um, "optics"
    elif "blur:sf" in fits and fits["blur:sf"]["ok"]:
        # the unit must not depend on which score won: use the SF curve's width
        dof, dof_src = fits["blur:sf"]["fwhm"] / 2.0, "fwhm/2 (blur:sf)"
    else:
        dof, dof_src = f["fwhm"] / 2.0, f"fwhm/2 ({best})"
    centre = f["z0"]
    return Calibration(
        score_name=best, z_um=z - centre, blur=bb, moffat=moffat, dof_um=float(dof),
        dof_source=dof_src, model_ref=(model_refs or {}).get(best),
        optics=None if optics is None else optics.to_dict(), source=dict(source or {}),
        score_choice=choice,
    )


def calibrate_microscope(
    microscope: Any,
    guard: StageGuard,
    *,
    z_from_um: float,
    z_to_um: float,
    step_um: float,
    model: Any = "auto",
    stain: str | None = None,
    optics: Optics | None = None,
    distance_model: Any = "auto",
    progress: Any = None,
    singleshot: bool = True,
) -> Calibration:
    """Acquire a calibration stack through the guarded stage and fit it.

    Also fits the single-shot head (``singleshot=True``) and records the instrument.
    The stage is returned to its start position afterwards (also on error/cancel).
    """
    if step_um <= 0:
        raise CalibrationError(f"step_um: must be > 0, got {step_um}")
    lo, hi = sorted((float(z_from_um), float(z_to_um)))
    n = int(np.floor((hi - lo) / step_um + 1e-9)) + 1
    if n < MIN_CALIBRATION_PLANES:
        raise CalibrationError(f"step_um: the range {lo}..{hi} µm with step {step_um} gives "
                               f"{n} planes; need >= {MIN_CALIBRATION_PLANES}")
    zs = lo + step_um * np.arange(n)
    for z in (zs[0], zs[-1]):
        guard.check_target(z)
    scorers = _candidate_scorers(model, stain)
    scores: dict[str, list[float]] = {s.name: [] for s in scorers}
    images: list[np.ndarray] = []
    measured: list[float] = []
    dist_error = None
    try:
        dist_model = find_distance_model(distance_model)
    except ModelCardError as exc:
        if distance_model != "auto":
            raise
        dist_model, dist_error = None, str(exc)
    try:
        for i, z in enumerate(zs):
            guard.travel_to(float(z))
            img = guard.snap()
            measured.append(guard.z)
            for s in scorers:
                scores[s.name].append(s(img)[0])
            if dist_model is not None or singleshot:
                images.append(img)
            if progress is not None:
                progress(i + 1, n)
    finally:
        err = guard.restore()
    if err:
        raise CalibrationError(f"calibration: {err}")
    cal = calibration_from_scores(
        np.asarray(measured), {k: np.asarray(v) for k, v in scores.items()}, optics=optics,
        model_refs={s.name: s.model_ref for s in scorers},
        source={"microscope": getattr(microscope, "name", "?"), "z_from_um": lo,
                "z_to_um": hi, "step_um": step_um, "planes": n},
    )
    z_rel = np.asarray(measured) - cal.moffat["z0"]
    cal.instrument = instrument_of(microscope)
    if dist_model is not None:
        cal.distance = distance_fit(z_rel, images, dist_model, cal.dof_um, stain)
    elif dist_error:
        cal.distance = {"model": "fqa-distance", "error": dist_error}
    if singleshot:
        cal.singleshot = SingleShotHead.fit(images, z_rel, cal.dof_um,
                                            instrument=cal.instrument)
    return cal


__all__ = [
    "Calibration",
    "CalibrationError",
    "Cancelled",
    "SingleShotHead",
    "calibrate_microscope",
    "calibration_from_scores",
    "fit_moffat",
    "load_calibration",
    "moffat_fwhm",
    "moffat_valley",
]
