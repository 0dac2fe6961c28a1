"""In-focus sources (real and procedural) and pre-generated defocused patch sets.

Defocus is simulated efficiently: the PSF of every level is computed once as a kernel,
each whole in-focus image is convolved with all kernels through one FFT, random 84x84
patches are cropped from the blurred images, camera noise is applied per patch and the
patches are normalised with :func:`napari_focusqa.core.model.normalise_patches`, the same
function the core applies before inference.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from napari_focusqa.core.model import normalise_patches
from napari_focusqa.training import procedural
from napari_focusqa.training.simulate import NoiseModel, Optics, fft_blur_bank, psf_kernel

#: stain vocabulary of the stain-aware model (index 0 must be "generic")
STAIN_CLASSES = ("generic", "nucleus", "actin", "tubulin", "mitochondria", "membrane", "puncta")
PATCH = 84

#: real in-focus images in ../shared/data: file, stain of each channel, split.
#: BBBC006 is split by field: wells a08, a09 are the test split, a07 the validation split
#: (runs are compared on it; the test split is only read for the final numbers); the other
#: files hold one field each and go to one side as a whole.
REAL_SOURCES: tuple[dict[str, Any], ...] = (
    {"file": "bbbc006_hoechst_infocus_9fields.tif", "stains": ["nucleus"], "fields": True,
     "test_fields": [7, 8], "val_fields": [6], "scales": [1]},
    {"file": "bian_bpae_3ch_infocus.tif", "stains": ["nucleus", "actin", "mitochondria"],
     "split": "train", "scales": [1, 2, 4]},
    {"file": "neubias_dapi_tubulin_2ch_infocus.tif", "stains": ["nucleus", "tubulin"],
     "split": "train", "scales": [1, 2]},
    {"file": "imagej_hela_3ch_infocus.tif", "stains": ["puncta", "mitochondria", "nucleus"],
     "split": "test", "scales": [1, 2], "mask_zeros": True},
    {"file": "neubias_cell_dna_mts_actin_3ch_infocus.tif", "stains": ["nucleus", "tubulin", "actin"],
     "split": "test", "scales": [1, 2]},
)


@dataclass
class Source:
    """One in-focus image.

    Attributes
    ----------
    name : str
        Identifier (file, channel, field, scale or procedural seed).
    stain : str
        Stain class (a member of :data:`STAIN_CLASSES`).
    image : ndarray
        float32 clean image, background near 0, bright structures near 1.
    valid : ndarray or None
        Boolean mask of pixels that patches may cover (None: all).
    origin : str
        "real" or "procedural".
    """

    name: str
    stain: str
    image: np.ndarray
    valid: np.ndarray | None = None
    origin: str = "procedural"


def shared_data_dir() -> Path | None:
    """``$FOCUSQA_SHARED_DATA`` or ``<repo>/../shared/data`` if it exists, else None."""
    env = os.environ.get("FOCUSQA_SHARED_DATA")
    cands = [Path(env)] if env else []
    cands.append(Path(__file__).resolve().parents[2].parent / "shared" / "data")
    for c in cands:
        if c.is_dir():
            return c
    return None


def _clean(img: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    x = img.astype(np.float32)
    vals = x[mask] if mask is not None else x
    lo, hi = np.percentile(vals, [0.5, 99.9])
    return np.clip((x - lo) / max(hi - lo, 1e-6), 0.0, None).astype(np.float32)


def _downscale(img: np.ndarray, f: int) -> np.ndarray:
    if f == 1:
        return img
    h, w = (img.shape[0] // f) * f, (img.shape[1] // f) * f
    return img[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))


def _field_split(spec: dict[str, Any], i: int, validation: bool) -> str:
    if i in spec["test_fields"]:
        return "test"
    return "val" if validation and i in spec.get("val_fields", ()) else "train"


def real_sources(split: str, data_dir: Path | None = None, validation: bool = True
                 ) -> list[Source]:
    """Real in-focus channels of ``split`` ("train", "val" or "test") from ``../shared/data``.

    ``validation=False`` keeps the validation fields in the training split (the configs of
    the first shipped models, which had no validation split).

    Returns an empty list when the folder is absent.
    """
    import tifffile

    data_dir = data_dir or shared_data_dir()
    if data_dir is None:
        return []
    out: list[Source] = []
    for spec in REAL_SOURCES:
        path = Path(data_dir) / spec["file"]
        if not path.is_file():
            continue
        arr = tifffile.imread(path)
        if spec.get("fields"):
            fields = [
                (f"{spec['file']}[field {i}]", spec["stains"][0], arr[i])
                for i in range(arr.shape[0])
                if _field_split(spec, i, validation) == split
            ]
        elif spec["split"] == split:
            fields = [
                (f"{spec['file']}[ch {c}]", st, arr[c]) for c, st in enumerate(spec["stains"])
            ]
        else:
            fields = []
        for name, stain, img in fields:
            valid = None
            if spec.get("mask_zeros"):  # burned-in scale bar: a rectangle of exact zeros
                bad = ndimage.binary_dilation(img == 0, iterations=3)
                bad = ndimage.binary_opening(bad, iterations=2)
                valid = ~bad
                img = np.where(bad, np.median(img[valid]), img)
            clean = _clean(img, valid)
            for f in spec["scales"]:
                im = _downscale(clean, f)
                v = None if valid is None else _downscale(valid.astype(np.float32), f) > 0.999
                if min(im.shape) < PATCH + 8:
                    continue
                out.append(Source(f"{name} x1/{f}", stain, im.astype(np.float32), v, "real"))
    return out


def procedural_sources(
    n_per_stain: int, seed: int, shape: tuple[int, int] = (384, 384), generic: bool = True
) -> list[Source]:
    """``n_per_stain`` procedural images of every stain (plus "generic" mixes)."""
    stains = list(procedural.STAINS) + (["generic"] if generic else [])
    out = []
    for si, stain in enumerate(stains):
        for i in range(n_per_stain):
            rng = np.random.default_rng([seed, si, i])
            out.append(Source(f"procedural:{stain}:{seed}:{i}", stain,
                              procedural.generate(stain, rng, shape)))
    return out


def collect_sources(cfg: dict[str, Any], split: str) -> list[Source]:
    """Sources named in a config's ``sources`` list ("procedural", "shared")."""
    names = cfg.get("sources", ["procedural"])
    seed = int(cfg.get("seed", 0)) + {"train": 0, "test": 100_000, "val": 200_000}[split]
    out: list[Source] = []
    if "procedural" in names:
        n = int({"train": cfg.get("procedural_per_stain", 8),
                 "test": cfg.get("procedural_per_stain_test", 3),
                 "val": cfg.get("procedural_per_stain_val", 2)}[split])
        size = int(cfg.get("procedural_size", 384))
        out += procedural_sources(n, seed, (size, size))
    if "shared" in names:
        real = real_sources(split, validation=bool(cfg.get("validation_split", False)))
        if not real and os.environ.get("FOCUSQA_REQUIRE_SHARED_DATA") == "1":
            raise FileNotFoundError("../shared/data is required (FOCUSQA_REQUIRE_SHARED_DATA=1)")
        if not real:
            import warnings

            warnings.warn("../shared/data not found: training from the procedural source only",
                          stacklevel=2)
        out += real
    return out


def _allowed_corners(valid: np.ndarray | None, shape: tuple[int, int], p: int) -> np.ndarray:
    """(M, 2) top-left corners whose p x p patch lies entirely in ``valid``."""
    h, w = shape
    if valid is None:
        yy, xx = np.mgrid[0 : h - p + 1, 0 : w - p + 1]
        return np.stack([yy.ravel(), xx.ravel()], 1)
    bad = (~valid).astype(np.int32)
    c = np.pad(bad.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    s = c[p:, p:] - c[:-p, p:] - c[p:, :-p] + c[:-p, :-p]
    return np.argwhere(s == 0)


def foreground_fraction(clean_patches: np.ndarray, thr: float = 0.15) -> np.ndarray:
    """Fraction of pixels above ``thr`` in clean in-focus patches."""
    return (clean_patches > thr).mean(axis=(-2, -1))


@dataclass
class PatchSet:
    """Normalised patches with labels.

    Attributes
    ----------
    x : ndarray
        float16 ``(N, P, P)`` normalised patches.
    level : ndarray
        int64 defocus level (or index into the z grid).
    z : ndarray
        float32 signed defocus (um).
    stain : ndarray
        int64 index into :data:`STAIN_CLASSES`.
    fg : ndarray
        bool, the in-focus patch contains structure (>= 3 % pixels above 0.15).
    source : ndarray
        int64 index of the source image (for per-field analysis; -1 for noise patches).
    kind : ndarray or None
        int64 index into :data:`napari_focusqa.training.mixdata.KINDS` (None: all widefield).
    """

    x: np.ndarray
    level: np.ndarray
    z: np.ndarray
    stain: np.ndarray
    fg: np.ndarray
    source: np.ndarray
    kind: np.ndarray | None = None

    def kinds(self) -> np.ndarray:
        """``kind`` (zeros = widefield when absent)."""
        return np.zeros(len(self), np.int64) if self.kind is None else self.kind

    def __len__(self) -> int:
        return int(self.x.shape[0])


def make_patch_set(
    sources: list[Source],
    z_um: list[float],
    optics: Optics,
    per_level: int,
    seed: int,
    norm: dict[str, Any],
    noise: NoiseModel | None = None,
    random_sign: bool = True,
    fg_boost: float = 0.5,
) -> PatchSet:
    """Defocus every source to every ``z_um`` value and crop ``per_level`` patches each.

    Parameters
    ----------
    sources : list of Source
        In-focus images.
    z_um : list of float
        Defocus values; the label of a patch is the index into this list.
    optics : Optics
        PSF parameters.
    per_level : int
        Patches per source image and defocus value.
    seed : int
        Random seed (the set is a deterministic function of its arguments).
    norm : dict
        ``input_normalisation`` of the model card.
    noise : NoiseModel, optional
        Camera noise model (default :class:`NoiseModel`).
    random_sign : bool
        Use ``-z`` for half of the patches (only matters with spherical aberration).
    fg_boost : float
        Fraction of patch positions drawn among foreground-rich positions (the rest are
        uniform, so background patches stay in the set).

    Returns
    -------
    PatchSet
    """
    noise = noise or NoiseModel()
    rng = np.random.default_rng(seed)
    p = PATCH
    signs = [1.0, -1.0] if (random_sign and optics.sa_waves) else [1.0]
    kernels = {(s, i): psf_kernel(s * z, optics) for s in signs for i, z in enumerate(z_um)}
    xs, lv, zz, st, fgs, src = [], [], [], [], [], []
    for si, s in enumerate(sources):
        corners = _allowed_corners(s.valid, s.image.shape, p)
        if len(corners) == 0:
            continue
        # foreground-rich corners: centre pixel region bright
        sm = ndimage.uniform_filter(s.image, 21)
        cy = corners[:, 0] + p // 2
        cx = corners[:, 1] + p // 2
        rich = corners[sm[cy, cx] > 0.08]
        for sign in signs:
            keys = [(sign, i) for i in range(len(z_um))]
            bank = fft_blur_bank(s.image, [kernels[k] for k in keys])
            n = per_level if len(signs) == 1 else max(1, per_level // 2)
            for li in range(len(z_um)):
                n_rich = int(round(n * fg_boost)) if len(rich) else 0
                pick = np.concatenate([
                    rich[rng.integers(0, len(rich), n_rich)] if n_rich else np.zeros((0, 2), int),
                    corners[rng.integers(0, len(corners), n - n_rich)],
                ])
                idx_y = pick[:, 0, None] + np.arange(p)[None]
                idx_x = pick[:, 1, None] + np.arange(p)[None]
                clean = bank[li][idx_y[:, :, None], idx_x[:, None, :]]
                sharp = s.image[idx_y[:, :, None], idx_x[:, None, :]]
                raw = noise.apply(clean, rng)
                xs.append(normalise_patches(raw, norm).astype(np.float16))
                lv.append(np.full(len(pick), li))
                zz.append(np.full(len(pick), sign * z_um[li], np.float32))
                st.append(np.full(len(pick), STAIN_CLASSES.index(s.stain)))
                fgs.append(foreground_fraction(sharp) >= 0.03)
                src.append(np.full(len(pick), si))
    return PatchSet(
        np.concatenate(xs), np.concatenate(lv).astype(np.int64), np.concatenate(zz),
        np.concatenate(st).astype(np.int64), np.concatenate(fgs), np.concatenate(src).astype(np.int64),
    )
