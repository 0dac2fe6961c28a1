"""The one level/certainty colour map shared by the CLI overlay, napari and Fiji.

Hue encodes the predicted defocus level: red (level 0, in focus) through yellow, green,
cyan and blue to magenta (most defocused). Lightness encodes certainty: certainty 0 is
drawn dark (lightness 0.15), certainty 1 at full colour (lightness 0.5, HSL).
Patches without structure (``empty``, :mod:`napari_focusqa.core.structure`) have no focus
level at all and are drawn in a neutral grey (:data:`EMPTY_RGB`), whatever the model said.
"""

from __future__ import annotations

import colorsys

import numpy as np

#: hue of the most defocused level (0 = red, 0.83 = magenta)
MAX_HUE = 0.83
MIN_LIGHTNESS = 0.15
MAX_LIGHTNESS = 0.5
#: neutral grey of patches without structure (no hue: it is not a level)
EMPTY_RGB = (0.6, 0.6, 0.6)


def level_hue(level: np.ndarray | float, num_classes: int = 11) -> np.ndarray:
    """Hue in [0, MAX_HUE] for ``level`` in [0, num_classes - 1]."""
    lv = np.clip(np.asarray(level, dtype=np.float64), 0, num_classes - 1)
    return lv / max(num_classes - 1, 1) * MAX_HUE


def level_colors(
    level: np.ndarray | float, certainty: np.ndarray | float, num_classes: int = 11
) -> np.ndarray:
    """RGBA float colours ``(..., 4)`` in [0, 1] for levels and certainties."""
    hue = level_hue(level, num_classes)
    cert = np.clip(np.asarray(certainty, dtype=np.float64), 0.0, 1.0)
    hue, cert = np.broadcast_arrays(hue, cert)
    light = MIN_LIGHTNESS + (MAX_LIGHTNESS - MIN_LIGHTNESS) * cert
    flat_h, flat_l = hue.ravel(), light.ravel()
    rgb = np.array([colorsys.hls_to_rgb(h, lt, 1.0) for h, lt in zip(flat_h, flat_l)])
    rgb = rgb.reshape(hue.shape + (3,)) if rgb.size else np.zeros(hue.shape + (3,))
    return np.concatenate([rgb, np.ones(hue.shape + (1,))], axis=-1)


def level_colors_uint8(
    level: np.ndarray | float, certainty: np.ndarray | float, num_classes: int = 11
) -> np.ndarray:
    """Like :func:`level_colors` but uint8 RGB ``(..., 3)`` (for PNG and ImageJ)."""
    return patch_colors_uint8(level, certainty, None, num_classes)


def patch_colors(
    level: np.ndarray | float,
    certainty: np.ndarray | float,
    empty: np.ndarray | None = None,
    num_classes: int = 11,
) -> np.ndarray:
    """:func:`level_colors`, with the ``empty`` patches (bool mask) in :data:`EMPTY_RGB`."""
    rgba = level_colors(level, certainty, num_classes)
    if empty is not None:
        mask = np.broadcast_to(np.asarray(empty, dtype=bool), rgba.shape[:-1])
        rgba[mask, :3] = EMPTY_RGB
    return rgba


def patch_colors_uint8(
    level: np.ndarray | float,
    certainty: np.ndarray | float,
    empty: np.ndarray | None = None,
    num_classes: int = 11,
) -> np.ndarray:
    """Like :func:`patch_colors` but uint8 RGB ``(..., 3)`` (for PNG and ImageJ)."""
    rgba = patch_colors(level, certainty, empty, num_classes)
    return np.round(rgba[..., :3] * 255).astype(np.uint8)
