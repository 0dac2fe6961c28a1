"""Mixed-modality patch sets: sectioned (confocal, spinning disk, light-sheet) defocus of the
same in-focus sources, sparse objects, and structure-free noise patches (uniform target).

The widefield set of :func:`napari_focusqa.training.data.make_patch_set` is unchanged; the
sets built here are appended to it (``cfg["mix"]``) and marked by ``PatchSet.kind``
(index into :data:`KINDS`). Noise patches have ``level == -1``: the loss uses a uniform
target distribution for them (no defocus level is defined on an empty field).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from napari_focusqa.core.model import normalise_patches
from napari_focusqa.training import procedural
from napari_focusqa.training.data import (
    PATCH,
    STAIN_CLASSES,
    PatchSet,
    Source,
    _allowed_corners,
    foreground_fraction,
)
from napari_focusqa.training.sectioning import (
    DetectorModel,
    confocal_kernel,
    lightsheet_kernel,
    noise_patches,
)
from napari_focusqa.training.simulate import NoiseModel, Optics, fft_blur_bank, psf_kernel

#: kinds of patches (``PatchSet.kind``); "sparse" = sparse objects under widefield optics
KINDS = ("widefield", "confocal", "spinning-disk", "light-sheet", "noise", "sparse")
PINHOLES_AU = (0.5, 1.0, 2.0)
SHEET_FWHM_UM = (3.0, 6.0, 12.0)

_KERNELS: dict[tuple[Any, ...], list[np.ndarray]] = {}


def kernel_bank(kind: str, param: float, z_um: list[float], optics: Optics) -> list[np.ndarray]:
    """Kernels of every ``z_um`` for one modality and parameter (cached)."""
    key = (kind, param, tuple(z_um), optics)
    if key not in _KERNELS:
        if kind == "confocal":
            _KERNELS[key] = [confocal_kernel(z, optics, param) for z in z_um]
        elif kind == "light-sheet":
            _KERNELS[key] = [lightsheet_kernel(z, optics, param) for z in z_um]
        else:
            _KERNELS[key] = [psf_kernel(z, optics) for z in z_um]
    return _KERNELS[key]


def sparse_sources(n: int, seed: int, shape: tuple[int, int] = (384, 384)) -> list[Source]:
    """``n`` procedural sparse images (spots, beads, puncta); stain class "puncta"."""
    return [Source(f"sparse:{seed}:{i}", "puncta",
                   procedural.generate_sparse(np.random.default_rng([seed, 77, i]), shape))
            for i in range(n)]


def _crop(bank: np.ndarray, image: np.ndarray, corners: np.ndarray, rich: np.ndarray, n: int,
          rng: np.random.Generator, li: int) -> tuple[np.ndarray, np.ndarray]:
    p = PATCH
    n_rich = n // 2 if len(rich) else 0
    pick = np.concatenate([
        rich[rng.integers(0, len(rich), n_rich)] if n_rich else np.zeros((0, 2), int),
        corners[rng.integers(0, len(corners), n - n_rich)],
    ])
    iy = pick[:, 0, None] + np.arange(p)[None]
    ix = pick[:, 1, None] + np.arange(p)[None]
    return bank[li][iy[:, :, None], ix[:, None, :]], image[iy[:, :, None], ix[:, None, :]]


def make_mixed_set(sources: list[Source], sparse: list[Source], z_um: list[float],
                   optics: Optics, per_level: int, seed: int, norm: dict[str, Any],
                   camera: NoiseModel, n_noise: int,
                   detector: DetectorModel | None = None) -> PatchSet:
    """Sectioned defocus of every source (one random modality each), sparse sources under
    every modality, and ``n_noise`` noise patches; deterministic in its arguments.
    ``detector`` (default :class:`DetectorModel()`) images the confocal patches and the
    speckle noise patches."""
    rng = np.random.default_rng([seed, 4242])
    detector = detector or DetectorModel()
    xs, lv, zz, st, fgs, src, kd = [], [], [], [], [], [], []
    jobs: list[tuple[int, Source, str]] = []
    for si, s in enumerate(sources):
        jobs.append((si, s, str(rng.choice(["confocal", "spinning-disk", "light-sheet"]))))
    for si, s in enumerate(sparse):
        for kind in ("sparse", "confocal", "spinning-disk", "light-sheet"):
            jobs.append((len(sources) + si, s, kind))
    for si, s, kind in jobs:
        corners = _allowed_corners(s.valid, s.image.shape, PATCH)
        if len(corners) == 0:
            continue
        sm = ndimage.uniform_filter(s.image, 21)
        rich = corners[sm[corners[:, 0] + PATCH // 2, corners[:, 1] + PATCH // 2] > 0.08]
        if kind == "light-sheet":
            kernels = kernel_bank(kind, float(rng.choice(SHEET_FWHM_UM)), z_um, optics)
        elif kind in ("confocal", "spinning-disk"):
            kernels = kernel_bank("confocal", float(rng.choice(PINHOLES_AU)), z_um, optics)
        else:
            kernels = kernel_bank("widefield", 0.0, z_um, optics)
        bank = fft_blur_bank(s.image, kernels)
        if kind == "spinning-disk":  # pinhole cross-talk: a little widefield light
            wide = fft_blur_bank(s.image, kernel_bank("widefield", 0.0, z_um, optics))
            bank = bank + float(rng.uniform(0.0, 0.05)) * wide
        for li in range(len(z_um)):
            clean, sharp = _crop(bank, s.image, corners, rich, per_level, rng, li)
            raw = detector.apply(clean, rng) if kind == "confocal" else camera.apply(clean, rng)
            xs.append(normalise_patches(raw, norm).astype(np.float16))
            lv.append(np.full(len(clean), li))
            zz.append(np.full(len(clean), z_um[li], np.float32))
            st.append(np.full(len(clean), STAIN_CLASSES.index(s.stain)))
            # sparse fields: a few spots are structure (>= 0.2 % of the pixels, ~14 px)
            fgs.append(foreground_fraction(sharp) >= (0.002 if s.name.startswith("sparse:")
                                                      else 0.03))
            src.append(np.full(len(clean), si))
            kd.append(np.full(len(clean), KINDS.index(kind)))
    if n_noise:
        raw, _ = noise_patches(n_noise, rng, detector=detector)
        xs.append(normalise_patches(raw, norm).astype(np.float16))
        lv.append(np.full(n_noise, -1))
        zz.append(np.full(n_noise, np.nan, np.float32))
        st.append(rng.integers(0, len(STAIN_CLASSES), n_noise))
        fgs.append(np.zeros(n_noise, bool))
        src.append(np.full(n_noise, -1))
        kd.append(np.full(n_noise, KINDS.index("noise")))
    return PatchSet(np.concatenate(xs), np.concatenate(lv).astype(np.int64), np.concatenate(zz),
                    np.concatenate(st).astype(np.int64), np.concatenate(fgs),
                    np.concatenate(src).astype(np.int64), np.concatenate(kd).astype(np.int64))


def concat(a: PatchSet, b: PatchSet) -> PatchSet:
    """``a`` followed by ``b`` (source indices of ``b`` offset past ``a``'s)."""
    off = int(a.source.max()) + 1 if len(a) else 0
    bsrc = np.where(b.source >= 0, b.source + off, -1)
    return PatchSet(np.concatenate([a.x, b.x]), np.concatenate([a.level, b.level]),
                    np.concatenate([a.z, b.z]), np.concatenate([a.stain, b.stain]),
                    np.concatenate([a.fg, b.fg]), np.concatenate([a.source, bsrc]),
                    np.concatenate([a.kinds(), b.kinds()]))
