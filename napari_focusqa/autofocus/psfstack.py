"""Focal stacks simulated from an in-focus image with the training PSF (for tests and
the benchmark: a known instrument, a documented focus at z = 0, unseen textures).

The PSF is the Born–Wolf model of :mod:`napari_focusqa.training.simulate` (the one the
levels model was trained with), optionally with spherical aberration (``sa_waves``),
which makes the PSF differ above and below focus as on a real objective used away from
its design conditions. Edges are reflect-padded so no dark border grows with defocus.
"""

from __future__ import annotations

import numpy as np

from napari_focusqa.autofocus.optics import Optics


def defocus_stacks(images: list[np.ndarray], z_um: np.ndarray, optics: Optics, *,
                   sa_waves: float = 0.0) -> list[np.ndarray]:
    """``(Z, Y, X)`` float32 stacks: each image blurred by the PSF at each ``z_um`` (the
    kernels are computed once for all images)."""
    from scipy.signal import fftconvolve

    from napari_focusqa.training.simulate import Optics as PsfOptics
    from napari_focusqa.training.simulate import psf_kernel

    if optics.pixel_size_um is None:
        raise ValueError("optics.pixel_size_um: needed to simulate a stack")
    po = PsfOptics(wavelength_um=optics.wavelength_nm / 1000.0, na=optics.na,
                   n=optics.immersion_n, pixel_um=float(optics.pixel_size_um),
                   sa_waves=sa_waves)
    imgs = [np.asarray(im, dtype=np.float64) for im in images]
    outs = [np.empty((len(z_um),) + im.shape, dtype=np.float32) for im in imgs]
    for i, z in enumerate(np.asarray(z_um, dtype=np.float64)):
        k = psf_kernel(float(z), po)
        h = k.shape[0] // 2
        for im, out in zip(imgs, outs):
            out[i] = fftconvolve(np.pad(im, h, mode="reflect"), k, mode="valid")
    return outs


def astigmatic_stack(image: np.ndarray, z_um: np.ndarray, *, sigma0_px: float,
                     px_per_um: float, astig_um: float) -> np.ndarray:
    """``(Z, Y, X)`` float32: an astigmatic instrument (Gaussian blur whose x and y
    widths are smallest at ``z = -astig_um`` and ``z = +astig_um``; the circle of least
    confusion, the documented focus, at ``z = 0``). Blur sigma per axis:
    ``hypot(sigma0_px, px_per_um * |z ∓ astig_um|)``. The side of focus shows as
    x/y anisotropy, as in astigmatic autofocus systems."""
    from scipy.ndimage import gaussian_filter

    img = np.asarray(image, dtype=np.float64)
    out = np.empty((len(z_um),) + img.shape, dtype=np.float32)
    for i, z in enumerate(np.asarray(z_um, dtype=np.float64)):
        sy = float(np.hypot(sigma0_px, px_per_um * abs(z - astig_um)))
        sx = float(np.hypot(sigma0_px, px_per_um * abs(z + astig_um)))
        out[i] = gaussian_filter(img, (sy, sx), mode="reflect")
    return out
