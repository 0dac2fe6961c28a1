"""Optically sectioned forward models (confocal, spinning disk, light-sheet), the
point-scanning detector and structure-free (background / pure-noise) patches.

Widefield (``simulate.py``): a thin fluorescent layer at defocus ``z`` is blurred by a PSF
of unit integral at every ``z``, so a defocused plane is a blurred copy of the in-focus one.

Confocal: the illumination spot is the excitation PSF ``h_exc`` (wavelength
``lambda_exc``), the detection path the emission PSF ``h_em`` seen through a pinhole ``P``
of diameter ``pinhole_au`` Airy units (projected into the sample). The effective 2D kernel
of a thin layer at defocus ``z`` is

.. math::  h_{conf}(r, z) = h_{exc}(r, z)\\,\\bigl(h_{em}(\\cdot, z) \\ast P\\bigr)(r)

normalised so that the *in-focus* kernel sums to 1. Its integral falls with ``|z|``
(optical sectioning, about ``1/z^2`` for a small pinhole): far planes receive only a
fraction of the in-focus light. A spinning disk adds pinhole cross-talk: a fraction
``crosstalk`` of the widefield image.

Light-sheet: widefield detection (Born–Wolf emission PSF) of a layer illuminated by a
Gaussian sheet of full width at half maximum ``sheet_fwhm_um`` centred on the detection
focal plane, so a layer at defocus ``z`` is blurred *and* attenuated by
``exp(-4 ln2 z^2 / FWHM^2)``.

Point-scanning detector (PMT/HyD): ``raw = clip(gain * A + offset + N(0, read), 0)`` where
``A`` is the summed pulse height of ``k ~ Poisson(photons * clean + dark)`` photons; each
pulse has a Gamma(``kappa``, 1/``kappa``) height (PMT excess noise; ``kappa`` 1 =
exponential pulse heights, large = fixed gain), so ``A ~ Gamma(k kappa, 1/kappa)``. The
offset is often negative, so that pixels without photons are exactly 0 and photons appear as
bright speckles of varying height.

Correlated detector noise (``corr_p`` > 0): real point-scanner images are often not
pixel-independent. The detector/amplifier bandwidth smears a pulse over the next pixel of
the scan line, and files rescaled to a calibrated pixel size (e.g. the NEUBIAS Golgi stack:
neighbour correlation 0.3 along x and 0.5 along y on its empty background, about half the
pixels exactly 0) have interpolated noise. Such grain a pixel or two wide looks like fine
in-focus detail to a network trained on independent noise. With probability ``corr_p`` a
patch's noise (raw minus its expected value) is low-passed by an anisotropic Gaussian of
sigma ``corr_sigma`` (per axis, uniform) and rescaled to its former standard deviation
before the offset and the clip at 0; the signal itself is not blurred, so labels stay
geometric.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage, signal

from napari_focusqa.training.simulate import Optics, psf_kernel, sample_log_uniform

#: noise-only patch types (targets are uniform: no defocus level is defined)
NOISE_TYPES = ("constant", "poisson", "gaussian", "speckle")


def _kernel_size(z_um: float, optics: Optics) -> int:
    size = int(np.ceil(1.4 * optics.blur_diameter_px(z_um) + 12))
    return size + 1 - size % 2


def pinhole_disc(diameter_px: float, size: int, oversample: int = 5) -> np.ndarray:
    """Pixel-averaged disc of ``diameter_px`` (unit sum, ``size`` x ``size``)."""
    sub = (np.arange(size * oversample) + 0.5) / oversample - size / 2.0
    yy, xx = np.meshgrid(sub, sub, indexing="ij")
    d = (np.hypot(yy, xx) <= max(diameter_px, 0.5) / 2.0).astype(np.float64)
    d = d.reshape(size, oversample, size, oversample).mean(axis=(1, 3))
    return d / d.sum()


def _raw_confocal(z_um: float, optics: Optics, pinhole_au: float, exc_ratio: float,
                  size: int) -> np.ndarray:
    exc = psf_kernel(z_um, replace(optics, wavelength_um=optics.wavelength_um * exc_ratio), size)
    em = psf_kernel(z_um, optics, size)
    ph = pinhole_disc(pinhole_au * optics.airy_diameter_px, size)
    det = signal.fftconvolve(em, ph, mode="same")
    return np.clip(exc * det, 0.0, None)


def confocal_kernel(z_um: float, optics: Optics, pinhole_au: float = 1.0,
                    exc_ratio: float = 0.9, size: int | None = None) -> np.ndarray:
    """Confocal 2D kernel of a thin layer at defocus ``z_um``.

    Normalised so that the in-focus (``z = 0``) kernel sums to 1; the sum at ``z`` is the
    fraction of the in-focus signal that reaches the detector (<= 1, falling with ``|z|``).

    Parameters
    ----------
    z_um : float
        Defocus (um).
    optics : Optics
        Emission optics (``wavelength_um`` is the emission wavelength).
    pinhole_au : float
        Pinhole diameter in Airy units (1 AU = ``optics.airy_diameter_px``).
    exc_ratio : float
        Excitation / emission wavelength ratio (Stokes shift), < 1.
    size : int, optional
        Odd kernel side in pixels (default covers the widefield blur at ``z_um``).
    """
    size = size or _kernel_size(z_um, optics)
    k = _raw_confocal(z_um, optics, pinhole_au, exc_ratio, size)
    k0 = _raw_confocal(0.0, optics, pinhole_au, exc_ratio, _kernel_size(0.0, optics))
    return k / k0.sum()


def sheet_attenuation(z_um: float, fwhm_um: float) -> float:
    """Relative illumination of a layer ``z_um`` from the centre of a Gaussian light sheet."""
    return float(np.exp(-4.0 * np.log(2.0) * (z_um / fwhm_um) ** 2))


def lightsheet_kernel(z_um: float, optics: Optics, fwhm_um: float) -> np.ndarray:
    """Widefield detection PSF at ``z_um`` scaled by the sheet profile (sum = attenuation)."""
    return psf_kernel(z_um, optics) * sheet_attenuation(z_um, fwhm_um)


@dataclass(frozen=True)
class DetectorModel:
    """Point-scanning detector (PMT / HyD): gain, signed offset, dark counts, clipped at 0.

    ``raw = clip(gain * Gamma(k kappa, 1/kappa) + offset + N(0, read * gain), 0)`` with
    ``k ~ Poisson(photons * clean + dark)``; ``photons``, ``gain``, ``dark`` and ``kappa``
    log-uniform and ``offset`` uniform in ``offset_frac * gain`` per patch. A negative
    offset makes photon-free pixels exactly 0.
    """

    photons: tuple[float, float] = (3.0, 300.0)
    gain: tuple[float, float] = (2.0, 200.0)
    offset_frac: tuple[float, float] = (-1.0, 0.3)
    dark: tuple[float, float] = (0.002, 1.0)
    read: tuple[float, float] = (0.02, 0.4)
    kappa: tuple[float, float] = (1.0, 20.0)
    corr_p: float = 0.0
    corr_sigma: tuple[float, float] = (0.3, 1.2)

    def apply(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Raw detector values for ``(N, H, W)`` clean patches (float32, >= 0)."""
        n = clean.shape[0]
        shape = (n,) + (1,) * (clean.ndim - 1)
        ph = np.reshape(sample_log_uniform(rng, *self.photons, size=n), shape)
        gain = np.reshape(sample_log_uniform(rng, *self.gain, size=n), shape)
        dark = np.reshape(sample_log_uniform(rng, *self.dark, size=n), shape)
        read = np.reshape(sample_log_uniform(rng, *self.read, size=n), shape)
        off = np.reshape(rng.uniform(*self.offset_frac, size=n), shape) * gain
        kappa = np.reshape(sample_log_uniform(rng, *self.kappa, size=n), shape)
        counts = rng.poisson(np.clip(clean, 0.0, None) * ph + dark)
        shape_k = counts * kappa
        pulses = np.where(counts > 0, rng.gamma(np.maximum(shape_k, 1e-9), 1.0 / kappa), 0.0)
        raw = gain * pulses + off + rng.standard_normal(clean.shape) * read * gain
        if self.corr_p > 0.0:
            expected = gain * (np.clip(clean, 0.0, None) * ph + dark) + off
            raw = correlate_noise(raw, expected, rng, self.corr_p, self.corr_sigma)
        return np.clip(raw, 0.0, 65535.0).astype(np.float32)


def correlate_noise(raw: np.ndarray, expected: np.ndarray | float, rng: np.random.Generator,
                    p: float, sigma: tuple[float, float]) -> np.ndarray:
    """``raw`` with the noise ``raw - expected`` of a random fraction ``p`` of the ``(N, H, W)``
    patches low-passed (anisotropic Gaussian, sigma per axis uniform in ``sigma``) and
    rescaled to its former standard deviation; float64 out, not clipped."""
    out = np.array(raw, dtype=np.float64)
    exp = np.broadcast_to(expected, out.shape)
    for i in np.flatnonzero(rng.random(out.shape[0]) < p):
        noise = out[i] - exp[i]
        sd = noise.std()
        if sd <= 0:
            continue
        sig = (float(rng.uniform(*sigma)), float(rng.uniform(*sigma)))
        smooth = ndimage.gaussian_filter(noise, sig, mode="reflect")
        out[i] = exp[i] + smooth * (sd / max(float(smooth.std()), 1e-12))
    return out


def noise_patches(n: int, rng: np.random.Generator, p: int = 84,
                  detector: DetectorModel | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` raw structure-free patches and their type index into :data:`NOISE_TYPES`.

    constant: a flat level (optionally with tiny read noise); poisson: Poisson photon noise
    on a flat level plus camera offset; gaussian: Gaussian noise on an offset; speckle: the
    point-scanning detector on an empty field (mostly exact zeros, sparse photon events).
    ``detector`` (default :class:`DetectorModel()`) makes the speckle patches; with its
    ``corr_p`` > 0 the poisson and gaussian noise is correlated the same way.
    """
    det = detector or DetectorModel()
    kinds = rng.integers(0, len(NOISE_TYPES), n)
    out = np.empty((n, p, p), np.float32)
    for i, t in enumerate(kinds):
        name = NOISE_TYPES[int(t)]
        if name == "constant":
            v = float(sample_log_uniform(rng, 1.0, 5e4))
            img = np.full((p, p), v, np.float32)
            if rng.random() < 0.5:
                img = img + rng.normal(0.0, 0.5, (p, p)).astype(np.float32)
        elif name == "poisson":
            lam = float(sample_log_uniform(rng, 0.05, 3000.0))
            gain = float(sample_log_uniform(rng, 0.2, 5.0))
            off = float(sample_log_uniform(rng, 1.0, 1000.0))
            img = gain * rng.poisson(lam, (p, p)).astype(np.float32) + off
            if det.corr_p > 0:
                img = correlate_noise(img[None], float(gain * lam + off), rng, det.corr_p,
                                      det.corr_sigma)[0]
        elif name == "gaussian":
            off = float(sample_log_uniform(rng, 1.0, 1000.0))
            sd = float(sample_log_uniform(rng, 0.5, 200.0))
            img = rng.normal(off, sd, (p, p)).astype(np.float32)
            if det.corr_p > 0:
                img = correlate_noise(img[None], float(off), rng, det.corr_p,
                                      det.corr_sigma)[0]
        else:
            img = det.apply(np.zeros((1, p, p), np.float32), rng)[0]
        out[i] = np.clip(img, 0.0, 65535.0)
    return out, kinds
