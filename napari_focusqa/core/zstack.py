"""Z-stacks: per channel, per slice SF and model summary; best-focus slice per channel.

The best slice fuses SF with the model (docs/verdicts.md):

* ``sf_score``: SF over the stack's highest SF (0..1);
* ``model_score``: ``1 - expected_level / (K - 1)`` (1 = level 0), per plane;
* planes whose verdict is ``no_structure`` score 0 in both (they cannot be in focus);
* fused score = ``sf_score * model_score``, with the model's expected level first smoothed
  along z by a Gaussian of :data:`MODEL_SMOOTH_PLANES` planes (a per-plane expected level
  scatters by ~0.2 level between neighbours; on a shallow stack that scatter would
  otherwise outvote SF differences of 1 %); ``best_z_index`` is its peak (3-tap smoothed,
  like the SF and model peaks), SF alone when there is no model.
* ``best_z_confidence`` = peak prominence of the fused curve (1 - the highest other local
  maximum more than 2 planes away / the peak score) times the SF/model agreement
  ``1 / (1 + max(0, |best_z_index_sf - best_z_index_model| - 1))``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_focusqa.core.assess import FocusResult, assess_image
from napari_focusqa.core.errors import Cancelled, ImageError
from napari_focusqa.core.stains import stain_for_channel

ProgressFn = Callable[[int, int], None]

#: sigma (planes) of the Gaussian smoothing of the model's expected level before fusion
MODEL_SMOOTH_PLANES = 1.5


def sf_ratios(sf: Any) -> np.ndarray:
    """Each plane's SF over the best SF along axis 0 (the planes of a channel; ``(Z,)`` or
    ``(Z, C)``): the stack context of the plane verdicts
    (:data:`~napari_focusqa.core.assess.MIN_STACK_SF_RATIO`). NaN where the SF is not
    finite or no plane of the channel has an SF > 0."""
    a = np.asarray(sf, dtype=np.float64)
    finite = np.isfinite(a)
    top = np.max(np.where(finite, a, -np.inf), axis=0, initial=-np.inf)
    return np.where(finite & (top > 0), a / np.where(top > 0, top, 1.0), np.nan)


@dataclass
class ChannelCurve:
    """Focus curves of one channel of a z-stack."""

    channel: int
    name: str | None
    stain: str
    slices: list[FocusResult]
    z_step_um: float | None = None

    def __post_init__(self) -> None:
        # stack context for the plane verdicts: each plane's SF over the channel's best
        ratio = sf_ratios(self.sf)
        if np.isfinite(ratio).any():
            for s, v in zip(self.slices, ratio):
                s.stack_sf_ratio = float(v) if np.isfinite(v) else None

    @property
    def n_slices(self) -> int:
        return len(self.slices)

    @property
    def z_um(self) -> list[float] | None:
        if self.z_step_um is None:
            return None
        return [round(i * self.z_step_um, 6) for i in range(self.n_slices)]

    @property
    def sf(self) -> np.ndarray:
        return np.array([s.metrics.get("sf", np.nan) for s in self.slices], dtype=np.float64)

    @property
    def expected_level(self) -> np.ndarray | None:
        if not self.slices or self.slices[0].probability is None:
            return None
        return np.array([s.expected_level for s in self.slices], dtype=np.float64)

    @property
    def verdicts(self) -> list[str | None]:
        return [s.verdict for s in self.slices]

    @property
    def _has_structure(self) -> np.ndarray:
        return np.array([v != "no_structure" for v in self.verdicts], dtype=bool)

    @property
    def sf_score(self) -> np.ndarray:
        """SF normalised to 0..1 over the stack; 0 on ``no_structure`` planes."""
        sf = np.nan_to_num(self.sf, nan=0.0)
        lo, hi = float(sf.min(initial=0.0)), float(sf.max(initial=0.0))
        out = (sf - lo) / (hi - lo) if hi > lo else np.ones_like(sf)
        return np.where(self._has_structure, out, 0.0) if self._has_structure.any() else out

    def _model_score(self, sigma: float = 0.0) -> np.ndarray | None:
        """``1 - expected_level / (K - 1)`` per plane, the level first smoothed along z by a
        Gaussian of ``sigma`` planes (0: as is); 0 on ``no_structure``; None without a model."""
        lv = self.expected_level
        k = self.slices[0].num_classes if self.slices else None
        if lv is None or not k:
            return None
        lv = np.nan_to_num(lv, nan=k - 1.0)
        if sigma > 0:
            lv = _gauss_smooth(lv, sigma)
        score = np.clip(1.0 - lv / max(k - 1, 1), 0.0, 1.0)
        return np.where(self._has_structure, score, 0.0)

    @property
    def model_score(self) -> np.ndarray | None:
        """``1 - expected_level / (K - 1)`` per plane (1 = level 0); 0 on ``no_structure``."""
        return self._model_score()

    @property
    def fused_score(self) -> np.ndarray:
        """``sf_score * model_score`` (``sf_score`` alone without a model), the model's
        expected level smoothed along z first (:data:`MODEL_SMOOTH_PLANES`)."""
        ms = self._model_score(MODEL_SMOOTH_PLANES)
        return self.sf_score if ms is None else self.sf_score * ms

    @property
    def best_z_index_sf(self) -> int:
        return _best_peak(self.sf)

    @property
    def best_z_index_model(self) -> int | None:
        """Peak of the model score (lowest expected level among planes with structure)."""
        ms = self.model_score
        return None if ms is None else _best_peak(ms)

    @property
    def best_z_index(self) -> int:
        """Best-focus slice: the peak of the fused SF x model score (SF alone without a
        model or when every plane scores 0)."""
        f = self.fused_score
        if not np.any(f > 0):
            return self.best_z_index_sf
        return _best_peak(f)

    @property
    def best_z_disagreement(self) -> int | None:
        """``|best_z_index_sf - best_z_index_model|`` in planes (None without a model)."""
        bm = self.best_z_index_model
        return None if bm is None else abs(self.best_z_index_sf - bm)

    @property
    def best_z_confidence(self) -> float:
        """0..1: fused peak prominence times SF/model agreement (see module docs)."""
        f = _smooth(self.fused_score)
        if f.size == 0 or not np.any(f > 0):
            return 0.0
        b = int(np.argmax(f))
        pad = np.pad(f, 1, constant_values=-np.inf)
        local_max = (f >= pad[:-2]) & (f >= pad[2:])
        rivals = local_max & (np.abs(np.arange(f.size) - b) > 2)
        prominence = 1.0 - (float(f[rivals].max()) / float(f[b]) if rivals.any() else 0.0)
        d = self.best_z_disagreement
        agreement = 1.0 if d is None else 1.0 / (1.0 + max(0, d - 1))
        return float(np.clip(prominence, 0.0, 1.0) * agreement)

    @property
    def best_z_um(self) -> float | None:
        return None if self.z_step_um is None else round(self.best_z_index * self.z_step_um, 6)

    def to_dict(self) -> dict[str, Any]:
        lv = self.expected_level
        return {
            "channel": self.channel,
            "name": self.name,
            "stain": self.stain,
            "z_step_um": self.z_step_um,
            "z_um": self.z_um,
            "sf": [round(float(v), 6) for v in self.sf],
            "expected_level": None if lv is None else [round(float(v), 6) for v in lv],
            "predicted_level": [s.predicted_level for s in self.slices],
            "verdict": [s.verdict for s in self.slices],
            # the verdicts' threshold: the card's, or the instrument's optics'
            "in_focus_max_level": None if lv is None else int(self.slices[0].in_focus_max_level),
            "structured_fraction": [
                None if s.structured_fraction is None else round(s.structured_fraction, 6)
                for s in self.slices
            ],
            "best_z_index": self.best_z_index,
            "best_z_um": self.best_z_um,
            "best_z_index_sf": self.best_z_index_sf,
            "best_z_index_model": self.best_z_index_model,
            "best_z_confidence": round(self.best_z_confidence, 6),
            "best_z_disagreement": self.best_z_disagreement,
        }


@dataclass
class StackResult:
    """Assessment of a (Z, [C,] Y, X) stack: one :class:`ChannelCurve` per channel."""

    channels: list[ChannelCurve]
    z_step_um: float | None = None
    model_id: str | None = None
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def best_z_index(self) -> dict[int, int]:
        return {c.channel: c.best_z_index for c in self.channels}

    def planes(self) -> list[FocusResult]:
        """Every plane's result in ``focusqa assess`` order: z outer, channel inner."""
        nz = min((c.n_slices for c in self.channels), default=0)
        return [c.slices[z] for z in range(nz) for c in self.channels]

    def records(self) -> list[dict[str, Any]]:
        """One record per plane (the CLI/CSV table form), channel by channel."""
        return [s.to_record() for c in self.channels for s in c.slices]

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.source.get("file"),
            "model": self.model_id,
            "z_step_um": self.z_step_um,
            "channels": [c.to_dict() for c in self.channels],
        }


def _smooth(values: np.ndarray) -> np.ndarray:
    """3-tap (1/4, 1/2, 1/4) smoothing with edge padding (curves of < 3 planes as is)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 3:
        return v
    pad = np.pad(v, 1, mode="edge")
    return 0.25 * pad[:-2] + 0.5 * pad[1:-1] + 0.25 * pad[2:]


def _gauss_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing (sigma in samples, radius 3 sigma) with edge padding."""
    v = np.asarray(values, dtype=np.float64)
    r = int(np.ceil(3 * sigma))
    if v.size < 2 or r < 1:
        return v
    x = np.arange(-r, r + 1, dtype=np.float64)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    return np.convolve(np.pad(v, r, mode="edge"), w / w.sum(), mode="valid")


def _best_peak(values: np.ndarray) -> int:
    """Index of the maximum of a lightly smoothed curve (3-tap), ties -> first."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ImageError("stack: no slices")
    if np.all(np.isnan(v)):
        return 0
    return int(np.nanargmax(_smooth(v)))


def as_zcyx(stack: Any, channel_axis: int | None = None) -> np.ndarray:
    """Return ``stack`` as a (Z, C, Y, X) array view.

    ``(Z, Y, X)`` gets a channel axis of 1; a 2D image becomes (1, 1, Y, X). With
    ``channel_axis`` given for a 4D array, that axis is moved to position 1.
    """
    arr = np.asarray(stack)
    if arr.ndim == 2:
        return arr[None, None]
    if arr.ndim == 3:
        if channel_axis is not None:
            return np.moveaxis(arr, channel_axis, 0)[None]
        return arr[:, None]
    if arr.ndim == 4:
        if channel_axis is not None and channel_axis not in (1, -3):
            arr = np.moveaxis(arr, channel_axis, 1)
        return arr
    raise ImageError(f"stack: expected (Z, [C,] Y, X), got shape {arr.shape}")


def plane_source(base: dict[str, Any], c: int, name: str | None, stain: str, z: int,
                 z_step_um: float | None) -> dict[str, Any]:
    """The ``source`` of one plane of a stack: ``base`` plus channel (its name, else its
    index), channel_index, stain, z_index and z_um (None when the z-step is unknown)."""
    return dict(
        base,
        channel=name if name is not None else c,
        channel_index=c,
        stain=stain,
        z_index=z,
        z_um=None if z_step_um is None else round(z * z_step_um, 6),
    )


def assess_stack(
    stack: Any,
    model: Any = None,
    *,
    z_step_um: float | None = None,
    channel_axis: int | None = None,
    channel_names: Sequence[str | None] | None = None,
    stains: Sequence[str] | None = None,
    channels: Sequence[int] | None = None,
    metrics: Sequence[str] = ("sf",),
    source: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
    cancel: Callable[[], bool] | None = None,
    airy_px: float | None = None,
) -> StackResult:
    """Assess every slice of every channel of a z-stack.

    Parameters
    ----------
    stack : array_like, (Z, Y, X) or (Z, C, Y, X)
    model : model id, card path, FocusModel or None (classic metrics only)
    z_step_um : float, optional
        Distance between slices; gives ``z_um`` per slice.
    channel_names, stains : per-channel names and stain classes (stains default to
        :func:`stain_for_channel` of the names)
    channels : indices of the channels to assess (default all)
    progress : callable ``(done, total)`` called after each slice
    cancel : callable returning True to stop (raises :class:`Cancelled`)
    airy_px : the Airy disc diameter in pixels when the optics are known (shifts the
        verdict threshold: :func:`~napari_focusqa.core.assess.in_focus_max_level_for`)
    """
    from napari_focusqa.core.model import load_model

    zcyx = as_zcyx(stack, channel_axis)
    nz, nc = zcyx.shape[:2]
    if nz == 0 or nc == 0:
        raise ImageError(f"stack: no slices (shape {zcyx.shape} as Z, C, Y, X)")
    if z_step_um is not None and not (np.isfinite(z_step_um) and z_step_um > 0):
        raise ImageError(f"z_step_um: expected a positive number, got {z_step_um!r}")
    names = list(channel_names) if channel_names is not None else [None] * nc
    if len(names) != nc:
        raise ImageError(f"channel_names: expected {nc} names, got {len(names)}")
    st = list(stains) if stains is not None else [stain_for_channel(n) for n in names]
    if len(st) != nc:
        raise ImageError(f"stains: expected {nc} stains, got {len(st)}")
    chans = list(channels) if channels is not None else list(range(nc))
    for c in chans:
        if not 0 <= c < nc:
            raise ImageError(f"channels: index {c} out of range for {nc} channels")
    fm = load_model(model) if model is not None else None
    src = dict(source or {})
    total = nz * len(chans)
    done = 0
    curves = []
    for c in chans:
        results = []
        for z in range(nz):
            if cancel is not None and cancel():
                raise Cancelled("stack assessment cancelled")
            rec_src = plane_source(src, c, names[c], st[c], z, z_step_um)
            results.append(
                assess_image(
                    zcyx[z, c], fm, stain=st[c], metrics=metrics, source=rec_src, cancel=cancel,
                    airy_px=airy_px,
                )
            )
            done += 1
            if progress is not None:
                progress(done, total)
        curves.append(ChannelCurve(c, names[c], st[c], results, z_step_um))
    return StackResult(curves, z_step_um, None if fm is None else fm.id, src)
