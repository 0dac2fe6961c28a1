"""Spatiospectral features of one image and the per-instrument single-shot head.

Features (DeepAf's observation: defocus shows in the cut-off and the shape of the power
spectrum): the image minus its mean, Hann-windowed, Fourier-transformed; the log power
in 24 radial bands log-spaced from 0.008 to 0.5 cycles/pixel (bands below a small
image's lowest frequency take the nearest measured one), used as its first and
second differences along the radius (the local slope and curvature of the spectrum:
brightness and contrast cancel, and a sample's smooth power-law spectrum matters less
than the optical transfer function's shape, whose ripples differ above and below focus
when the PSF is not symmetric), plus, between 4 coarser bands, the change of the log ratio of the
power along x vs y and along the two diagonals (astigmatism, whose sign flips through
focus and grows with frequency, unlike the sample's own orientation).

:class:`SingleShotHead` is fitted by ``focusqa calibrate`` on the calibration stack of
one instrument (DeepAf trains on the microscope it runs on): one ridge regression of
``z - focus`` per side of focus and an L2 logistic regression of ``sign(z - focus)`` on
the standardised features (all of them, only the radial ones or only the anisotropy
ones; λ from :data:`LAMBDAS`: the cross-validation below picks the group and λ that
generalise best), from every plane plus random crops. Its reliability is measured at
calibration time by a spatial 2-fold cross-validation (fit on the left half of the
planes, test on the right half, and back): ``cv_sign_accuracy`` (planes > 1.5 DoF from
focus), ``cv_within_1dof`` and ``cv_abs_error_dof_median``. At run time the confidence
is ``|2p - 1|`` times the agreement of the image's quadrants, and 0 when the
cross-validated sign accuracy's 95 % lower bound is below 0.6 (the PSF does not show
the side of focus);
a prediction within 1 DoF of focus (no sign needed) gets the magnitude reliability
``cv_within_1dof`` (the CV's fraction within 1 DoF). The search falls back to fewshot when the confidence
is low.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_focusqa.core.errors import FocusQAError

EDGES = np.geomspace(0.008, 0.5, 25)
HEAD_KIND = "focusqa-singleshot-head"
FEATURES = "spectral-v4"
N_SPECTRAL = 45  # radial slope (23) and curvature (22) features come first
N_FEATURES = 51  # then the band-to-band change of 2 anisotropy ratios over 4 bands
#: feature groups the side-of-focus model may use; the calibration's CV picks one
SIGN_GROUPS = ("all", "spectral", "anisotropy")
#: regularisations the calibration's cross-validation chooses from (with the group)
LAMBDAS = (1.0, 3.0, 10.0)
#: below this (lower bound of the) cross-validated sign accuracy the head never moves
#: on its own
MIN_CV_SIGN_ACCURACY = 0.6
#: instrument facts a calibration must share with the microscope it is used on
INSTRUMENT_KEYS = ("name", "camera", "focus_device", "pixel_size_um", "channel")


def spectral_features(img: np.ndarray) -> np.ndarray:
    """Feature vector (:data:`N_FEATURES` values) of one 2D image (see module doc)."""
    a = np.asarray(img, dtype=np.float64)
    if a.ndim != 2 or min(a.shape) < 16:
        raise FocusQAError(f"image: expected a 2D image of at least 16x16 px, got {a.shape}")
    a = a - a.mean()
    h, w = a.shape
    p = np.abs(np.fft.fft2(a * np.outer(np.hanning(h), np.hanning(w)))) ** 2
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    r = np.hypot(fy, fx)
    th = np.arctan2(fy, fx)
    tot = float(p[(r > EDGES[0]) & (r <= EDGES[-1])].mean()) + 1e-30
    c8 = np.cos(np.pi / 8)
    horiz, vert = np.abs(np.cos(th)) > c8, np.abs(np.sin(th)) > c8
    d1, d2 = np.abs(np.cos(th - np.pi / 4)) > c8, np.abs(np.cos(th + np.pi / 4)) > c8
    lp = np.full(len(EDGES) - 1, np.nan)
    for i, (lo, hi) in enumerate(zip(EDGES[:-1], EDGES[1:])):
        m = (r > lo) & (r <= hi)
        if m.any():
            lp[i] = np.log(float(p[m].mean()) / tot + 1e-12)
    ok = np.isfinite(lp)
    if not ok.any():
        return np.full(N_FEATURES, np.nan)
    # bands below a small image's lowest frequency: the nearest measured band
    lp = np.interp(np.arange(lp.size), np.flatnonzero(ok), lp[ok])
    out = [float(v) for v in np.diff(lp)] + [float(v) for v in np.diff(lp, 2)]
    aniso = []
    for lo, hi in zip(EDGES[:-1:6], EDGES[6::6]):
        m = (r > lo) & (r <= hi)
        aniso.append((_log_ratio(p, m & horiz, m & vert), _log_ratio(p, m & d1, m & d2)))
    # the sample's own orientation is roughly the same in every band; an astigmatic
    # blur's grows with frequency: keep the change from band to band
    out += [float(v) for v in np.diff(np.asarray(aniso), axis=0).ravel()]
    return np.asarray(out, dtype=np.float64)


def _log_ratio(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    if not a.any() or not b.any():
        return 0.0
    return float(np.log((p[a].mean() + 1e-30) / (p[b].mean() + 1e-30)))


def _ridge(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    a = x.T @ x + lam * np.diag(np.r_[0.0, np.ones(x.shape[1] - 1)])
    return np.asarray(np.linalg.solve(a, x.T @ y), dtype=np.float64)


def _logistic(x: np.ndarray, y: np.ndarray, lam: float, iters: int = 60) -> np.ndarray:
    w = np.zeros(x.shape[1])
    reg = lam * np.diag(np.r_[0.0, np.ones(x.shape[1] - 1)])
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        g = x.T @ (p - y) + reg @ w
        hess = (x * (p * (1 - p))[:, None]).T @ x + reg
        step = np.linalg.solve(hess, g)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w


def _samples(images: list[np.ndarray], z_rel: np.ndarray, crops: int, seed: int,
             part: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Features of every plane (or its left/right half) plus ``crops`` random 75 % crops."""
    rng = np.random.default_rng(seed)
    xs, zs = [], []
    for img, z in zip(images, z_rel):
        a = np.asarray(img, dtype=np.float64)
        if part is not None:
            half = a.shape[1] // 2
            a = a[:, :half] if part == "left" else a[:, half:]
        xs.append(spectral_features(a))
        zs.append(z)
        h, w = a.shape
        ch, cw = max(16, int(h * 0.75)), max(16, int(w * 0.75))
        for _ in range(crops):
            y0, x0 = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            xs.append(spectral_features(a[y0:y0 + ch, x0:x0 + cw]))
            zs.append(z)
    return np.asarray(xs), np.asarray(zs, dtype=np.float64)


@dataclass
class SingleShotHead:
    """Per-instrument signed-defocus regressor (see module doc). ``z`` = stage position
    minus focus, in µm (positive: the stage is above focus; the move is ``-z``)."""

    mean: np.ndarray
    scale: np.ndarray
    pos_coef: np.ndarray
    neg_coef: np.ndarray
    sign_coef: np.ndarray
    dof_um: float
    z_max_um: float
    sign_group: str = "all"
    cv: dict[str, float] = field(default_factory=dict)
    instrument: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, images: list[np.ndarray], z_rel_um: np.ndarray, dof_um: float, *,
            instrument: dict[str, Any] | None = None, crops: int = 8,
            lam: float | tuple[float, ...] = LAMBDAS, seed: int = 0) -> SingleShotHead:
        """Fit on calibration planes ``images`` at positions ``z_rel_um`` from focus.

        ``lam``: the ridge/logistic regularisation, or several values for the
        cross-validation to choose from (with the sign feature group)."""
        z = np.asarray(z_rel_um, dtype=np.float64)
        if len(images) != z.size or z.size < 5:
            raise FocusQAError(f"single-shot head: need >= 5 planes with z, got {z.size}")
        if not dof_um or dof_um <= 0:
            raise FocusQAError(f"dof_um: expected a positive depth of field, got {dof_um}")
        lams = (float(lam),) if isinstance(lam, (int, float)) else tuple(map(float, lam))
        cv, group, best_lam = cls._cross_validate(images, z, dof_um, crops, lams, seed)
        x, zz = _samples(images, z, crops, seed)
        head = cls._fit_arrays(x, zz, dof_um, best_lam, group)
        head.cv = cv
        head.instrument = dict(instrument or {})
        return head

    @classmethod
    def _fit_arrays(cls, x: np.ndarray, z: np.ndarray, dof: float, lam: float,
                    group: str = "all") -> SingleShotHead:
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
        xs = np.c_[np.ones(len(x)), (x - mean) / scale]
        pos, neg = z >= 0, z <= 0
        pos_coef = _ridge(xs[pos], z[pos] / dof, lam) if pos.sum() >= 2 else np.zeros(
            xs.shape[1])
        neg_coef = _ridge(xs[neg], z[neg] / dof, lam) if neg.sum() >= 2 else np.zeros(
            xs.shape[1])
        far = np.abs(z) > dof
        xg = xs[:, np.r_[True, _group_mask(group, x.shape[1])]]
        if far.sum() < 2 or len(set((z[far] > 0).tolist())) < 2:
            sign = np.zeros(xg.shape[1])  # no planes on both sides: sign unknown (p = 0.5)
        else:
            sign = _logistic(xg[far], (z[far] > 0).astype(np.float64), lam)
        return cls(mean=mean, scale=scale, pos_coef=pos_coef, neg_coef=neg_coef,
                   sign_coef=sign, dof_um=float(dof),
                   z_max_um=float(np.max(np.abs(z))), sign_group=group)

    @classmethod
    def _cross_validate(cls, images: list[np.ndarray], z: np.ndarray, dof: float,
                        crops: int, lams: tuple[float, ...], seed: int,
                        ) -> tuple[dict[str, Any], str, float]:
        """Spatial 2-fold CV (left/right halves) of every sign feature group and
        regularisation; returns the scores of the best (by sign accuracy, then the
        fraction within 1 DoF; ties: the earlier group, the stronger regularisation),
        its group and its ``lam``."""
        folds = []
        for train, test in (("left", "right"), ("right", "left")):
            folds.append((_samples(images, z, crops, seed, part=train),
                          _samples(images, z, 0, seed, part=test)))
        scores: dict[tuple[str, float], dict[str, float]] = {}
        for lam in lams:
            for group in SIGN_GROUPS:
                right, wrong, errs = 0, 0, []
                for (xa, za), (xb, zb) in folds:
                    h = cls._fit_arrays(xa, za, dof, lam, group)
                    for xi, zi in zip(xb, zb):
                        dz, _p = h._raw(xi)
                        errs.append(abs(dz - zi) / dof)
                        if abs(zi) > 1.5 * dof:
                            right += int(np.sign(dz) == np.sign(zi))
                            wrong += int(np.sign(dz) != np.sign(zi))
                acc = right / (right + wrong) if right + wrong else 0.0
                scores[(group, lam)] = {
                    "cv_sign_accuracy": round(acc, 4), "cv_sign_n": right + wrong,
                    "cv_sign_lower95": round(wilson_lower(acc, right + wrong), 4),
                    "cv_abs_error_dof_median": round(float(np.median(errs)), 4),
                    "cv_within_1dof": round(float(np.mean(np.asarray(errs) <= 1.0)), 4)}
        best = max(scores, key=lambda k: (scores[k]["cv_sign_accuracy"],
                                          scores[k]["cv_within_1dof"],
                                          -SIGN_GROUPS.index(k[0]), k[1]))
        group, lam = best
        cv: dict[str, Any] = dict(scores[best], sign_features=group, lam=lam,
                                  cv_sign_accuracy_by_group={
                                      g: scores[(g, lam)]["cv_sign_accuracy"]
                                      for g in SIGN_GROUPS},
                                  cv_sign_accuracy_by_lam={
                                      str(v): max(scores[(g, v)]["cv_sign_accuracy"]
                                                  for g in SIGN_GROUPS) for v in lams})
        return cv, group, lam

    @property
    def sign_usable(self) -> bool:
        """False unless the cross-validated sign accuracy is clearly above chance: its
        one-sided 95 % lower bound (Wilson; the CV picks the best of several feature
        groups and regularisations, so the point value is optimistic) must reach 0.6.
        Otherwise the instrument's PSF does not show the side of focus (e.g. a
        symmetric PSF). Heads without the bound: the point value must reach 0.6."""
        bound = self.cv.get("cv_sign_lower95", self.cv.get("cv_sign_accuracy", 0.0))
        return float(bound) >= MIN_CV_SIGN_ACCURACY

    @property
    def magnitude_reliability(self) -> float:
        """The cross-validated fraction of predictions within 1 DoF (a probability; it
        was ``min(1, fraction / 0.6)``, which let a head right 31 % of the time move)."""
        return float(np.clip(float(self.cv.get("cv_within_1dof", 0.0)), 0.0, 1.0))

    def _raw(self, x: np.ndarray) -> tuple[float, float]:
        xs = np.r_[1.0, (x - self.mean) / self.scale]
        xg = xs[np.r_[True, _group_mask(self.sign_group, x.size)]]
        p = float(1.0 / (1.0 + np.exp(-np.clip(xg @ self.sign_coef, -30, 30))))
        if p >= 0.5:
            z = min(max(float(xs @ self.pos_coef), 0.0) * self.dof_um, self.z_max_um)
        else:
            z = max(min(float(xs @ self.neg_coef), 0.0) * self.dof_um, -self.z_max_um)
        return z, p

    def predict(self, img: np.ndarray) -> tuple[float, float, dict[str, Any]]:
        """``(z_um, confidence, details)`` of one image; ``z_um`` = position - focus.

        Non-finite features give ``nan`` (the caller must not move)."""
        a = np.asarray(img, dtype=np.float64)
        x = spectral_features(a)
        if not np.all(np.isfinite(x)):
            return float("nan"), 0.0, {"reason": "non-finite features"}
        z, p = self._raw(x)
        h, w = a.shape
        quads = [a[:h // 2, :w // 2], a[:h // 2, w // 2:], a[h // 2:, :w // 2], a[h // 2:, w // 2:]]
        signs = [self._raw(spectral_features(q))[1] >= 0.5 for q in quads if min(q.shape) >= 16]
        agree = float(np.mean([s == (p >= 0.5) for s in signs])) if signs else 1.0
        if abs(z) <= self.dof_um:  # within 1 DoF: the sign does not matter, the size does
            conf = self.magnitude_reliability
        else:
            conf = abs(2 * p - 1) * agree if self.sign_usable else 0.0
        return z, float(conf), {"p_above": p, "quadrant_agreement": agree,
                                "magnitude_um": abs(z)}

    # --- JSON ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        body = {
            "kind": HEAD_KIND, "features": FEATURES,
            "mean": [round(float(v), 8) for v in self.mean],
            "scale": [round(float(v), 8) for v in self.scale],
            "pos_coef": [round(float(v), 8) for v in self.pos_coef],
            "neg_coef": [round(float(v), 8) for v in self.neg_coef],
            "sign_coef": [round(float(v), 8) for v in self.sign_coef],
            "dof_um": round(self.dof_um, 6), "z_max_um": round(self.z_max_um, 6),
            "sign_group": self.sign_group,
            "cv": self.cv, "instrument": self.instrument,
        }
        body["sha256"] = _digest(body)
        return body

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "single-shot head") -> SingleShotHead:
        try:
            if d.get("kind") != HEAD_KIND or d.get("features") != FEATURES:
                raise FocusQAError(f"{where}: not a {FEATURES} single-shot head (recalibrate)")
            want = d.get("sha256")
            got = _digest({k: v for k, v in d.items() if k != "sha256"})
            if want != got:
                raise FocusQAError(f"{where}: sha256 mismatch (stored {str(want)[:12]}…, "
                                   f"content {got[:12]}…): the head was edited or corrupted")
            arr = {k: np.asarray(d[k], dtype=np.float64)
                   for k in ("mean", "scale", "pos_coef", "neg_coef", "sign_coef")}
            n = arr["mean"].size
            group = str(d.get("sign_group", "all"))
            if group not in SIGN_GROUPS:
                raise FocusQAError(f"{where}: unknown sign_group {group!r}")
            ng = int(_group_mask(group, n).sum())
            if arr["scale"].size != n or arr["pos_coef"].size != n + 1 or \
                    arr["neg_coef"].size != n + 1 or arr["sign_coef"].size != ng + 1:
                raise FocusQAError(f"{where}: coefficient lengths do not match")
            return cls(dof_um=float(d["dof_um"]), z_max_um=float(d["z_max_um"]),
                       sign_group=group,
                       cv=dict(d.get("cv") or {}), instrument=dict(d.get("instrument") or {}),
                       **arr)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, FocusQAError):
                raise
            raise FocusQAError(f"{where}: malformed single-shot head ({exc})") from exc


def wilson_lower(p: float, n: int, z: float = 1.645) -> float:
    """One-sided 95 % lower confidence bound of a proportion ``p`` of ``n`` (Wilson)."""
    if n <= 0:
        return 0.0
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(c - h, 0.0))


def _group_mask(group: str, n: int) -> np.ndarray:
    """Which of ``n`` features a sign feature group uses."""
    idx = np.arange(n)
    if group == "spectral":
        return np.asarray(idx < N_SPECTRAL)
    if group == "anisotropy":
        return np.asarray(idx >= N_SPECTRAL)
    return np.ones(n, dtype=bool)


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def instrument_of(microscope: Any) -> dict[str, Any]:
    """The :data:`INSTRUMENT_KEYS` facts of a microscope (``info()`` + name)."""
    try:
        info = dict(microscope.info() or {})
    except Exception:
        info = {}
    info.setdefault("name", getattr(microscope, "name", None))
    return {k: info.get(k) for k in INSTRUMENT_KEYS}


def instrument_mismatch(recorded: dict[str, Any], current: dict[str, Any]) -> str | None:
    """First differing fact (``"channel: 'DAPI' vs 'GFP'"``) or None. Facts missing on
    either side are not compared."""
    for k in INSTRUMENT_KEYS:
        a, b = recorded.get(k), current.get(k)
        if a is None or b is None:
            continue
        if k == "pixel_size_um":
            if abs(float(a) - float(b)) > 0.01 * abs(float(a)):
                return f"{k}: {a} vs {b}"
        elif str(a) != str(b):
            return f"{k}: {a!r} vs {b!r}"
    return None
