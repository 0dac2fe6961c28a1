"""Defocus simulation: the Born–Wolf PSF of Yang et al. (2018) and the camera noise model.

The PSF is

.. math::

    h(x, y, z) = \\left| C \\int_0^1 J_0\\!\\left(k \\tfrac{NA}{n} r \\rho\\right)
    \\exp\\!\\left(-\\tfrac12 j k \\rho^2 z (NA/n)^2 + j\\,2\\pi\\, W_{sa}\\,
    (6\\rho^4 - 6\\rho^2 + 1)\\right) \\rho\\, d\\rho \\right|^2

with :math:`k = 2\\pi/\\lambda` and :math:`r = \\sqrt{x^2 + y^2}`. The optional spherical
aberration term (``sa_waves``, in waves, Zernike :math:`Z_4^0` form) is not in the paper; it
is zero by default and makes the PSF at ``+z`` and ``-z`` differ, which the signed
single-shot distance model needs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import special

#: defaults of Yang et al. 2018 (lambda 500 nm, NA 0.5, n 1.0); BBBC006 pixel 0.645 um
YANG_OPTICS = {"wavelength_um": 0.5, "na": 0.5, "n": 1.0, "pixel_um": 0.645, "sa_waves": 0.0}


@dataclass(frozen=True)
class Optics:
    """Imaging parameters of the simulated widefield microscope.

    Attributes
    ----------
    wavelength_um : float
        Emission wavelength in micrometres.
    na : float
        Numerical aperture.
    n : float
        Refractive index of the immersion medium.
    pixel_um : float
        Pixel size in the sample plane, micrometres.
    sa_waves : float
        Spherical aberration (Zernike Z40 coefficient) in waves; 0 gives the paper's PSF.
    """

    wavelength_um: float = 0.5
    na: float = 0.5
    n: float = 1.0
    pixel_um: float = 0.645
    sa_waves: float = 0.0

    @property
    def k(self) -> float:
        """Wave number ``2 pi / lambda`` in 1/um."""
        return 2.0 * np.pi / self.wavelength_um

    @property
    def dof_um(self) -> float:
        """Wave-optical depth of field ``lambda n / NA^2`` (um)."""
        return self.wavelength_um * self.n / self.na**2

    @property
    def airy_diameter_px(self) -> float:
        """Diameter of the Airy disc (first zero, ``1.22 lambda / NA`` radius) in pixels."""
        return 2.44 * self.wavelength_um / self.na / self.pixel_um

    def geometric_diameter_px(self, z_um: float) -> float:
        """Paraxial geometric blur diameter ``2 |z| NA / n`` in pixels."""
        return 2.0 * abs(z_um) * self.na / self.n / self.pixel_um

    def blur_diameter_px(self, z_um: float) -> float:
        """Approximate blur diameter: Airy and geometric diameters added in quadrature."""
        return float(np.hypot(self.airy_diameter_px, self.geometric_diameter_px(z_um)))

    def z_for_diameter(self, diameter_px: float) -> float:
        """Defocus (um, >= 0) whose :meth:`blur_diameter_px` equals ``diameter_px``."""
        geo = np.sqrt(max(diameter_px**2 - self.airy_diameter_px**2, 0.0))
        return float(geo * self.pixel_um * self.n / (2.0 * self.na))

    def to_dict(self) -> dict[str, Any]:
        """Fields plus the derived ``dof_um`` (for model cards)."""
        d = asdict(self)
        d["dof_um"] = self.dof_um
        return d


def _pupil_phase(rho: Any, z_um: float, optics: Optics) -> Any:
    """Phase (radians) of the pupil function at normalised radius ``rho``."""
    s = optics.na / optics.n
    phase = -0.5 * optics.k * rho**2 * z_um * s**2
    if optics.sa_waves:
        phase = phase + 2.0 * np.pi * optics.sa_waves * (6 * rho**4 - 6 * rho**2 + 1)
    return phase


@lru_cache(maxsize=8)
def _leggauss(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights (an eigenproblem: computed once per ``nodes``)."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    x.flags.writeable = False
    w.flags.writeable = False
    return x, w


def psf_radial(r_um: np.ndarray, z_um: float, optics: Optics, nodes: int = 600) -> np.ndarray:
    """Un-normalised Born–Wolf intensity ``|int_0^1 J0(k NA/n r rho) e^{j phase} rho drho|^2``.

    Evaluated with Gauss–Legendre quadrature (``nodes`` points on [0, 1]), which converges
    quickly for the smooth, band-limited integrand.

    Parameters
    ----------
    r_um : ndarray
        Radial distances from the optical axis (um).
    z_um : float
        Defocus (um); the sign matters only when ``optics.sa_waves != 0``.
    optics : Optics
        Imaging parameters.
    nodes : int
        Quadrature nodes.

    Returns
    -------
    ndarray
        Intensity at each ``r_um`` with ``C = 1``.
    """
    x, w = _leggauss(nodes)
    rho = 0.5 * (x + 1.0)
    w = 0.5 * w
    r = np.asarray(r_um, dtype=np.float64)
    arg = optics.k * optics.na / optics.n * r.reshape(-1, 1) * rho.reshape(1, -1)
    pupil = np.exp(1j * _pupil_phase(rho, z_um, optics)) * rho * w
    amp = special.j0(arg) @ pupil
    return (np.abs(amp) ** 2).reshape(r.shape)


def psf_direct(r_um: float, z_um: float, optics: Optics) -> float:
    """Reference value of :func:`psf_radial` by adaptive quadrature (``scipy.integrate.quad``).

    Slow; used in tests to check the fast quadrature.
    """
    from scipy import integrate

    a = optics.k * optics.na / optics.n * r_um

    def re(rho: float) -> float:
        return float(special.j0(a * rho) * np.cos(_pupil_phase(rho, z_um, optics)) * rho)

    def im(rho: float) -> float:
        return float(special.j0(a * rho) * np.sin(_pupil_phase(rho, z_um, optics)) * rho)

    vr = integrate.quad(re, 0.0, 1.0, limit=500, epsabs=1e-13, epsrel=1e-11)[0]
    vi = integrate.quad(im, 0.0, 1.0, limit=500, epsabs=1e-13, epsrel=1e-11)[0]
    return vr * vr + vi * vi


def psf_kernel(
    z_um: float, optics: Optics, size: int | None = None, oversample: int = 3
) -> np.ndarray:
    """2D PSF kernel (pixel-integrated, sums to 1) for defocus ``z_um``.

    Parameters
    ----------
    z_um : float
        Defocus in um.
    optics : Optics
        Imaging parameters.
    size : int, optional
        Odd kernel side in pixels; default covers 1.4x the blur diameter plus the Airy rings.
    oversample : int
        Sub-pixel samples per pixel and axis (the kernel is averaged over each pixel).

    Returns
    -------
    ndarray
        ``(size, size)`` float64 kernel, normalised to unit sum.
    """
    if size is None:
        size = int(np.ceil(1.4 * optics.blur_diameter_px(z_um) + 8))
        size += 1 - size % 2
    half = size // 2
    # radial profile on a fine grid, then interpolated onto sub-pixel positions
    r_max = np.sqrt(2.0) * (half + 1) * optics.pixel_um
    r_fine = np.linspace(0.0, r_max, int(r_max / optics.pixel_um * 16) + 2)
    prof = psf_radial(r_fine, z_um, optics)
    sub = (np.arange(size * oversample) + 0.5) / oversample - size / 2.0
    yy, xx = np.meshgrid(sub, sub, indexing="ij")
    rr = np.hypot(yy, xx) * optics.pixel_um
    k = np.interp(rr, r_fine, prof).reshape(size, oversample, size, oversample).mean(axis=(1, 3))
    return k / k.sum()


@dataclass
class LevelSpec:
    """The 11 (or ``num_levels``) defocus levels, equally spaced in blur diameter.

    Level 0 is in focus (``z = 0``, Airy disc); level ``i >= 1`` has blur diameter
    ``d0 + i * step`` pixels (defaults 3 + 2.7 i, i.e. about 3 to 30 px as in Yang et al.).
    """

    optics: Optics = field(default_factory=Optics)
    num_levels: int = 11
    d0_px: float = 3.0
    step_px: float = 2.7

    def diameters_px(self) -> list[float]:
        """Blur diameter of every level in pixels."""
        d = [self.optics.blur_diameter_px(0.0)]
        d += [self.d0_px + i * self.step_px for i in range(1, self.num_levels)]
        return [float(v) for v in d]

    def z_um(self) -> list[float]:
        """Unsigned defocus of each level (um)."""
        return [0.0] + [self.optics.z_for_diameter(d) for d in self.diameters_px()[1:]]


def sample_log_uniform(rng: np.random.Generator, lo: float, hi: float, size: Any = None) -> Any:
    """Log-uniform samples in ``[lo, hi)``."""
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size=size))


@dataclass(frozen=True)
class NoiseModel:
    """Camera model: Poisson photon noise, then gain, offset and Gaussian read noise.

    ``raw = gain * Poisson(photons * clean) + offset + N(0, read_noise)`` where ``clean`` is
    the blurred image scaled to about [0, 1]. ``photons``, ``gain`` and ``offset`` are drawn
    log-uniformly per patch (Yang et al.: gain in (0.2, 5), offset in (1, 1000)).
    """

    photons: tuple[float, float] = (30.0, 3000.0)
    gain: tuple[float, float] = (0.2, 5.0)
    offset: tuple[float, float] = (1.0, 1000.0)
    read_noise: float = 1.0

    def apply(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Noisy raw intensities for ``(N, H, W)`` clean patches (float32)."""
        n = clean.shape[0]
        shape = (n,) + (1,) * (clean.ndim - 1)
        ph = sample_log_uniform(rng, *self.photons, size=n).reshape(shape)
        gain = sample_log_uniform(rng, *self.gain, size=n).reshape(shape)
        off = sample_log_uniform(rng, *self.offset, size=n).reshape(shape)
        counts = rng.poisson(np.clip(clean, 0.0, None) * ph).astype(np.float32)
        raw = gain * counts + off
        if self.read_noise:
            raw = raw + rng.normal(0.0, self.read_noise, size=clean.shape)
        return np.clip(raw, 0.0, 65535.0).astype(np.float32)


def fft_blur_bank(image: np.ndarray, kernels: list[np.ndarray]) -> np.ndarray:
    """Convolve one image with several kernels via one forward FFT (reflect-padded).

    Returns a ``(len(kernels), H, W)`` float32 stack of blurred images.
    """
    img = np.asarray(image, dtype=np.float32)
    h, w = img.shape
    pad = max(k.shape[0] for k in kernels) // 2 + 1
    padded = np.pad(img, pad, mode="reflect")
    ph, pw = padded.shape
    fh, fw = _fast_len(ph), _fast_len(pw)
    spec = np.fft.rfft2(padded, s=(fh, fw))
    out = np.empty((len(kernels), h, w), dtype=np.float32)
    for i, k in enumerate(kernels):
        kk = np.zeros((fh, fw), dtype=np.float64)
        s = k.shape[0]
        kk[:s, :s] = k
        kk = np.roll(kk, (-(s // 2), -(s // 2)), axis=(0, 1))
        res = np.fft.irfft2(spec * np.fft.rfft2(kk), s=(fh, fw))
        out[i] = res[pad : pad + h, pad : pad + w]
    return out


def _fast_len(n: int) -> int:
    """Next FFT-friendly length >= n."""
    from scipy import fft as sfft

    return int(sfft.next_fast_len(n, real=True))
