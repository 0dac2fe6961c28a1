"""A simulated microscope built from a *real* z-stack, driven through pymmcore-plus.

:func:`build_simulated_core` makes a ``UniMMCore`` with two pure-Python devices:

- :class:`ZStackFocusStage` (label ``"Z"``): a focus stage with a finite travel range
  (the z extent of the stack); a target outside its travel raises, as a real stage
  controller would;
- :class:`ZStackCamera` (label ``"Camera"``): returns the plane of the stack at the
  stage's current z, linearly interpolated between the two nearest planes, with Poisson
  shot noise (``photons`` = expected photo-electrons at the brightest pixel for a
  10 ms exposure), optional lateral drift (pixels per snap) and axial drift (µm per snap).

The mapping from stage to stack is hidden from the algorithms: plane ``k`` is imaged when
the stage is at ``offset_um + k * z_step_um``. The true focus (for evaluation only) is
``offset_um + focus_index * z_step_um``. Everything above the devices (core API, guard,
algorithms, widget) is the same code that drives real hardware.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from pymmcore_plus.experimental.unicore import SimpleCameraDevice, StageDevice

from napari_focusqa.autofocus.microscope import MMCoreMicroscope, quiet_pymmcore
from napari_focusqa.autofocus.optics import Optics, optics_from_info
from napari_focusqa.core.errors import FocusQAError, ImageError


class ZStackFocusStage(StageDevice):
    """Pure-Python focus stage with a travel range (µm)."""

    def __init__(self, travel: tuple[float, float], start_um: float,
                 quantum_um: float | None = None) -> None:
        super().__init__()
        self.travel = (float(travel[0]), float(travel[1]))
        #: positions are rounded to multiples of this (a stepper's resolution); None = exact
        self.quantum_um = quantum_um
        self._z = self._quantise(float(start_um))
        #: fault injection for tests: raise on the n-th ``set_position_um`` (1-based)
        self.fail_on_move: int | None = None
        self.n_moves = 0

    def set_position_um(self, val: float) -> None:
        self.n_moves += 1
        if self.fail_on_move is not None and self.n_moves == self.fail_on_move:
            raise RuntimeError(f"simulated stage fault on move {self.n_moves}")
        lo, hi = self.travel
        if not lo - 1e-6 <= val <= hi + 1e-6:
            raise RuntimeError(f"stage target {val:.3f} µm is outside its travel [{lo}, {hi}]")
        self._z = self._quantise(float(val))

    def _quantise(self, z: float) -> float:
        q = self.quantum_um
        if not q:
            return z
        lo, hi = self.travel
        return float(min(max(round(z / q) * q, lo), hi))

    def get_position_um(self) -> float:
        return self._z

    def home(self) -> None:
        self._z = self.travel[0]

    def stop(self) -> None:
        pass

    def set_origin(self) -> None:
        raise RuntimeError("the simulated focus stage does not support set_origin")


class ZStackCamera(SimpleCameraDevice):
    """Pure-Python camera returning the stack plane at the stage's z (see module doc)."""

    def __init__(
        self,
        stack: np.ndarray,
        z_step_um: float,
        stage: ZStackFocusStage,
        *,
        offset_um: float,
        photons: float | None,
        drift_px_per_snap: tuple[float, float],
        z_drift_um_per_snap: float,
        seed: int | None,
    ) -> None:
        super().__init__()
        self.stack = stack
        self.z_step_um = float(z_step_um)
        self.stage = stage
        self.offset_um = float(offset_um)
        self.photons = photons
        self.drift = (float(drift_px_per_snap[0]), float(drift_px_per_snap[1]))
        self.z_drift = float(z_drift_um_per_snap)
        self.rng = np.random.default_rng(seed)
        self._exposure = 10.0
        self.n_snaps = 0
        #: fault injection for tests: raise on the n-th snap (1-based)
        self.fail_on_snap: int | None = None
        #: when True a snap takes the exposure time (wall clock), like a real camera
        self.realtime = False
        self._scale = float(np.percentile(stack[:, ::4, ::4], 99.9)) or 1.0
        self._sigma = plane_noise_sigma(stack)
        self._out_dtype = stack.dtype if stack.dtype.kind in "ui" else np.dtype(np.float32)
        if self._out_dtype.itemsize == 1:
            self._out_dtype = np.dtype(np.uint16)

    def sensor_shape(self) -> tuple[int, int]:
        return (int(self.stack.shape[1]), int(self.stack.shape[2]))

    def dtype(self) -> Any:
        return self._out_dtype

    def get_exposure(self) -> float:
        return self._exposure

    def set_exposure(self, exposure: float) -> None:
        self._exposure = float(exposure)

    def plane_at(self, z_um: float) -> np.ndarray:
        """Noise-free image at stage position ``z_um`` (float32)."""
        s = (z_um - self.offset_um) / self.z_step_um
        n = self.stack.shape[0]
        s = min(max(s, 0.0), n - 1.0)
        k0 = int(np.floor(s))
        k1 = min(k0 + 1, n - 1)
        w = s - k0
        a = self.stack[k0].astype(np.float32)
        if w > 1e-6 and k1 != k0:
            a = a * np.float32(1 - w) + self.stack[k1].astype(np.float32) * np.float32(w)
            # blending two planes averages their own noise away, which would make
            # in-between positions look smoother than real planes: add back the lost
            # variance 2 w (1 - w) sigma^2 (sigma: the planes' estimated noise level)
            sig = float(np.sqrt(2.0 * w * (1.0 - w))) * (
                (1 - w) * self._sigma[k0] + w * self._sigma[k1])
            if sig > 0:
                a = a + self.rng.normal(0.0, sig, a.shape).astype(np.float32)
        return a

    def snap(self, buffer: np.ndarray) -> dict[str, Any]:
        self.n_snaps += 1
        if self.fail_on_snap is not None and self.n_snaps == self.fail_on_snap:
            raise RuntimeError(f"simulated camera fault on snap {self.n_snaps}")
        if self.realtime:
            time.sleep(self._exposure / 1000.0)
        z = self.stage.get_position_um() + self.z_drift * (self.n_snaps - 1)
        img = self.plane_at(z)
        dy, dx = (round(d * (self.n_snaps - 1)) for d in self.drift)
        if dy or dx:
            img = np.roll(img, (dy, dx), axis=(0, 1))
        if self.photons:
            gain = self.photons * (self._exposure / 10.0) / self._scale
            img = self.rng.poisson(np.maximum(img, 0) * gain).astype(np.float32) / np.float32(gain)
        if self._out_dtype.kind in "ui":
            info = np.iinfo(self._out_dtype.type)  # type: ignore[type-var]
            img = np.clip(np.rint(img), info.min, info.max)
        buffer[:] = img.astype(self._out_dtype, copy=False)
        return {"z_um": z}


def _as_zyx(stack: Any, channel: int | None) -> np.ndarray:
    arr = np.asarray(stack)
    if arr.ndim == 4:  # Z C Y X
        c = 0 if channel is None else int(channel)
        if not 0 <= c < arr.shape[1]:
            raise FocusQAError(f"channel: index {c} out of range (stack has {arr.shape[1]})")
        arr = arr[:, c]
    elif channel not in (None, 0):
        raise FocusQAError(f"channel: the stack has one channel, got channel={channel}")
    if arr.ndim != 3:
        raise ImageError(f"stack: expected (Z, Y, X) or (Z, C, Y, X), got shape {arr.shape}")
    if arr.shape[0] < 3:
        raise ImageError(f"stack: need at least 3 z planes to simulate focus, got {arr.shape[0]}")
    if arr.dtype.kind not in "uif":
        raise ImageError(f"stack: expected a numeric array, got dtype {arr.dtype}")
    return arr


def build_simulated_core(
    stack: np.ndarray,
    z_step_um: float,
    *,
    offset_um: float = 0.0,
    start_um: float | None = None,
    photons: float | None = 2000.0,
    drift_px_per_snap: tuple[float, float] = (0.0, 0.0),
    z_drift_um_per_snap: float = 0.0,
    seed: int | None = 0,
    z_quantum_um: float | None = None,
) -> tuple[Any, ZStackCamera, ZStackFocusStage]:
    """A ``UniMMCore`` with the z-stack camera ("Camera") and focus stage ("Z") loaded."""
    from pymmcore_plus.experimental.unicore import UniMMCore

    if not z_step_um or z_step_um <= 0:
        raise FocusQAError(f"z_step_um: expected a positive z step in µm, got {z_step_um}")
    travel = (offset_um, offset_um + (stack.shape[0] - 1) * z_step_um)
    start = travel[0] + (travel[1] - travel[0]) / 2 if start_um is None else float(start_um)
    stage = ZStackFocusStage(travel, start, quantum_um=z_quantum_um)
    cam = ZStackCamera(stack, z_step_um, stage, offset_um=offset_um, photons=photons,
                       drift_px_per_snap=drift_px_per_snap,
                       z_drift_um_per_snap=z_drift_um_per_snap, seed=seed)
    with quiet_pymmcore():
        core = UniMMCore()
    core.loadPyDevice("Camera", cam)
    core.initializeDevice("Camera")
    core.loadPyDevice("Z", stage)
    core.initializeDevice("Z")
    core.setCameraDevice("Camera")
    core.setFocusDevice("Z")
    core.setAutoShutter(False)
    return core, cam, stage


class SimulatedMicroscope(MMCoreMicroscope):
    """:class:`MMCoreMicroscope` over a ``UniMMCore`` whose devices replay a z-stack.

    Parameters
    ----------
    stack : array, (Z, Y, X) or (Z, C, Y, X)
    z_step_um : float
    channel : int, optional
        Channel of a (Z, C, Y, X) stack.
    focus_index : float, optional
        The stack's in-focus plane (evaluation truth; e.g. documented). Defaults to the
        spatial-frequency peak of the noise-free stack, refined by a parabola.
    offset_um : float
        Hidden offset: stage position of plane 0.
    start_um : float, optional
        Initial stage position (default: middle of the travel).
    photons, drift_px_per_snap, z_drift_um_per_snap, seed
        Camera model (see module doc); ``photons=None`` disables noise.
    optics : Optics, optional
        Known optics (for the depth of field).
    z_quantum_um : float, optional
        Stage resolution: positions are rounded to multiples of it (also reported as
        ``z_precision_um``, the guard's restore tolerance).
    name : str
    """

    def __init__(
        self,
        stack: Any,
        z_step_um: float,
        *,
        channel: int | None = None,
        focus_index: float | None = None,
        offset_um: float = 0.0,
        start_um: float | None = None,
        photons: float | None = 2000.0,
        drift_px_per_snap: tuple[float, float] = (0.0, 0.0),
        z_drift_um_per_snap: float = 0.0,
        seed: int | None = 0,
        optics: Optics | None = None,
        pixel_size_um: float | None = None,
        name: str = "simulated",
        z_quantum_um: float | None = None,
    ) -> None:
        zyx = _as_zyx(stack, channel)
        core, cam, stage = build_simulated_core(
            zyx, z_step_um, offset_um=offset_um, start_um=start_um, photons=photons,
            drift_px_per_snap=drift_px_per_snap, z_drift_um_per_snap=z_drift_um_per_snap,
            seed=seed, z_quantum_um=z_quantum_um,
        )
        super().__init__(core, name=name)
        self.camera_device = cam
        self.stage_device = stage
        self.stack = zyx
        self.z_step_um = float(z_step_um)
        self.offset_um = float(offset_um)
        self.optics = optics
        self.pixel_size_um = pixel_size_um
        #: channel index of the replayed stack (an instrument fact for calibrations)
        self.channel = channel
        if focus_index is None:
            focus_index = sf_peak_index(zyx)
        self.focus_index = float(focus_index)

    @property
    def z_precision_um(self) -> float | None:  # type: ignore[override]
        """The stage's resolution (None: exact)."""
        return self.stage_device.quantum_um

    @property
    def travel(self) -> tuple[float, float]:
        return self.stage_device.travel

    @property
    def true_focus_um(self) -> float:
        """Evaluation truth (never used by the algorithms)."""
        return self.offset_um + self.focus_index * self.z_step_um

    def info(self) -> dict[str, Any]:
        d = super().info()
        d.update(
            simulated=True,
            travel_um=list(self.travel),
            z_step_um=self.z_step_um,
            pixel_size_um=self.pixel_size_um,
            optics=None if self.optics is None else self.optics.to_dict(),
            channel=self.channel,
        )
        return d

    def truth(self) -> dict[str, Any]:
        return {"true_focus_um": self.true_focus_um, "focus_index": self.focus_index,
                "offset_um": self.offset_um}

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, channel: int | None = None, t: int = 0,
        z_step_um: float | None = None, **kwargs: Any,
    ) -> SimulatedMicroscope:
        """Build one from any z-stack file FocusQA can read (z-step from its metadata)."""
        from napari_focusqa.io import read_image

        img = read_image(path)
        if img.n_slices < 3:
            raise ImageError(f"{path}: not a z-stack ({img.n_slices} slice(s)); need >= 3")
        dz = z_step_um or img.z_step_um
        if not dz:
            raise FocusQAError(
                f"z_step_um: {path} does not record its z step; pass it explicitly"
            )
        zcyx = img.zcyx(t)
        c = 0 if channel is None else int(channel)
        if not 0 <= c < zcyx.shape[1]:
            raise FocusQAError(f"channel: {path} has {zcyx.shape[1]} channel(s), got {c}")
        if "optics" not in kwargs:
            kwargs["optics"] = optics_from_info(img.metadata.get("info"), img.pixel_size_um)
        kwargs.setdefault("pixel_size_um", img.pixel_size_um)
        kwargs.setdefault("name", f"simulated: {os.path.basename(os.fspath(path))}")
        m = cls(zcyx[:, c], dz, **kwargs)
        m.channel = c
        return m


def plane_noise_sigma(stack: np.ndarray) -> np.ndarray:
    """Per-plane white-noise level: robust (MAD) std of ``x - mean(4 neighbours)`` / sqrt(1.25)."""
    x = np.asarray(stack, dtype=np.float32)
    r = x[:, 1:-1, 1:-1] - 0.25 * (x[:, :-2, 1:-1] + x[:, 2:, 1:-1] + x[:, 1:-1, :-2]
                                   + x[:, 1:-1, 2:])
    r = r[:, ::2, ::2].reshape(r.shape[0], -1)
    mad = np.median(np.abs(r - np.median(r, axis=1, keepdims=True)), axis=1)
    return (1.4826 * mad / np.sqrt(1.25)).astype(np.float64)


def sf_peak_index(stack: np.ndarray) -> float:
    """Spatial-frequency peak of a (Z, Y, X) stack, refined by a 3-point parabola."""
    from napari_focusqa.core.metrics import spatial_frequency

    sf = np.asarray(spatial_frequency(stack), dtype=np.float64)
    k = int(np.argmax(sf))
    if 0 < k < len(sf) - 1:
        a, b, c = sf[k - 1], sf[k], sf[k + 1]
        den = a - 2 * b + c
        if den < 0:
            return float(k + 0.5 * (a - c) / den)
    return float(k)
