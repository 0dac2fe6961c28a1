"""The microscope abstraction every autofocus algorithm talks to.

A :class:`Microscope` can read and move the focus stage and snap an image; nothing more.
:class:`MMCoreMicroscope` implements it over any pymmcore-plus ``CMMCorePlus`` (the user's
Micro-Manager hardware loaded from a config file, the shared ``CMMCorePlus.instance()``
used by napari-micromanager, or a ``UniMMCore`` with pure-Python devices: see
:mod:`napari_focusqa.autofocus.simulated`). Algorithms never call ``set_z`` directly;
they go through :class:`napari_focusqa.autofocus.safety.StageGuard`.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Protocol, runtime_checkable

import numpy as np

from napari_focusqa._logging import quiet_logger
from napari_focusqa.core.errors import FocusQAError


class MicroscopeError(FocusQAError):
    """The microscope could not be connected/configured (bad config, no focus device...)."""


@runtime_checkable
class Microscope(Protocol):
    """What autofocus needs from a microscope."""

    name: str

    def get_z(self) -> float:
        """Current focus-stage position (µm)."""

    def set_z(self, z_um: float) -> None:
        """Move the focus stage and wait until it is there (unguarded; use StageGuard)."""

    def snap(self) -> np.ndarray:
        """Snap one 2D image."""

    def info(self) -> dict[str, Any]:
        """Known facts: ``pixel_size_um``, ``optics`` (NA, wavelength...), travel range."""


def quiet_pymmcore() -> Any:
    """Silence pymmcore-plus' "no Micro-Manager installation" error log (expected when
    only pure-Python devices are used)."""
    return quiet_logger("pymmcore-plus")


class MMCoreMicroscope:
    """A :class:`Microscope` over a pymmcore-plus core.

    Parameters
    ----------
    core : pymmcore_plus.CMMCorePlus
        Loaded core (any subclass, including ``UniMMCore``).
    focus_device : str, optional
        Focus stage label; defaults to the core's current focus device.
    camera : str, optional
        Camera label; defaults to the core's current camera.
    name : str, optional
        Shown in the widget and written to the run's info.
    """

    #: focus-stage precision in µm (the guard's restore tolerance); set it for your stage
    z_precision_um: float | None = None

    def __init__(
        self,
        core: Any,
        *,
        focus_device: str | None = None,
        camera: str | None = None,
        name: str = "Micro-Manager",
    ) -> None:
        self.core = core
        self.name = name
        focus = focus_device or core.getFocusDevice()
        if not focus:
            raise MicroscopeError(
                "focus_device: the Micro-Manager core has no focus (Z) stage; set one in the "
                "config (Core-Focus) or pass focus_device="
            )
        if focus_device:
            core.setFocusDevice(focus_device)
        cam = camera or core.getCameraDevice()
        if not cam:
            raise MicroscopeError("camera: the Micro-Manager core has no camera device")
        if camera:
            core.setCameraDevice(camera)
        self.focus_device = str(focus)
        self.camera = str(cam)

    # --- constructors ----------------------------------------------------------------
    @classmethod
    def from_config(cls, path: str | os.PathLike[str], **kwargs: Any) -> MMCoreMicroscope:
        """Load the user's Micro-Manager hardware configuration file (a new core)."""
        from pymmcore_plus import CMMCorePlus

        p = os.fspath(path)
        if not os.path.isfile(p):
            raise MicroscopeError(f"config: Micro-Manager config file not found: {p}")
        core = CMMCorePlus()
        try:
            core.loadSystemConfiguration(p)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MicroscopeError(f"config: cannot load {p}: {first}") from exc
        kwargs.setdefault("name", f"Micro-Manager ({os.path.basename(p)})")
        return cls(core, **kwargs)

    @classmethod
    def from_instance(cls, **kwargs: Any) -> MMCoreMicroscope:
        """The shared ``CMMCorePlus.instance()`` (e.g. the one napari-micromanager uses)."""
        from pymmcore_plus import CMMCorePlus

        kwargs.setdefault("name", "Micro-Manager (shared instance)")
        return cls(CMMCorePlus.instance(), **kwargs)

    # --- Microscope protocol ---------------------------------------------------------
    def get_z(self) -> float:
        return float(self.core.getPosition(self.focus_device))

    def check_idle(self) -> None:
        """Refuse to drive the core while a pymmcore-plus MDA sequence runs on it, unless
        the call comes from that sequence's own FocusQA engine (its autofocus thread)."""
        mda = getattr(self.core, "mda", None)
        if mda is None or not mda.is_running():
            return
        if getattr(mda.engine, "focusqa_af_thread", None) == threading.get_ident():
            return
        raise MicroscopeError(
            "refused: an MDA sequence is running on this Micro-Manager core; stop it first "
            "(FocusQA autofocus inside a sequence: napari_focusqa.acquire)")

    def set_z(self, z_um: float) -> None:
        self.check_idle()
        self.core.setPosition(self.focus_device, float(z_um))
        self.core.waitForDevice(self.focus_device)

    def snap(self) -> np.ndarray:
        self.check_idle()
        self.core.snapImage()
        return np.array(self.core.getImage(), copy=True)

    def info(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "focus_device": self.focus_device,
                             "camera": self.camera}
        try:
            px = float(self.core.getPixelSizeUm())
            d["pixel_size_um"] = px if px > 0 else None
        except Exception:
            d["pixel_size_um"] = None
        try:
            group = self.core.getChannelGroup()
            d["channel"] = str(self.core.getCurrentConfig(group)) if group else None
        except Exception:
            d["channel"] = None
        return d
