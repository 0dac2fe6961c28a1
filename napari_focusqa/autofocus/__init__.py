"""Autofocus: microscope abstraction (pymmcore-plus), simulated microscope from real
z-stacks, guarded stage moves, and few-shot / single-shot / classic searches.

See ``docs/autofocus.md``. Main entry points::

    from napari_focusqa.autofocus import (
        SimulatedMicroscope, MMCoreMicroscope, StageLimits, calibrate_microscope,
        run_autofocus,
    )

Imports are lazy so that ``import napari_focusqa.autofocus`` does not pull in
pymmcore-plus or scipy.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "AutofocusRun": "run",
    "Acquisition": "run",
    "MMCoreMicroscope": "microscope",
    "Microscope": "microscope",
    "MicroscopeError": "microscope",
    "SimulatedMicroscope": "simulated",
    "StageGuard": "safety",
    "StageLimits": "safety",
    "UnsafeMoveError": "safety",
    "Calibration": "calibrate",
    "calibrate_microscope": "calibrate",
    "load_calibration": "calibrate",
    "run_autofocus": "search",
    "Optics": "optics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'napari_focusqa.autofocus' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"napari_focusqa.autofocus.{mod}"), name)
