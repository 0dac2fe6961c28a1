"""The Born–Wolf defocus PSF and the camera noise model (napari_focusqa.training.simulate)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scipy")
from napari_focusqa.training.simulate import (  # noqa: E402
    LevelSpec,
    NoiseModel,
    Optics,
    fft_blur_bank,
    psf_direct,
    psf_kernel,
    psf_radial,
)


@pytest.mark.parametrize("z", [0.0, 2.75, 8.5, 19.2, -6.0])
@pytest.mark.parametrize("sa", [0.0, 0.5])
def test_psf_matches_direct_integration(z: float, sa: float) -> None:
    optics = Optics(sa_waves=sa)
    r = np.array([0.0, 0.3, 1.1, 2.9, 6.5, 11.0])
    fast = psf_radial(r, z, optics)
    ref = np.array([psf_direct(float(v), z, optics) for v in r])
    # relative to each value, and never worse than 1e-3 of the peak for the tiny ring minima
    rel = np.abs(fast - ref) / np.maximum(ref, 1e-3 * ref.max())
    assert rel.max() < 1e-3


def test_in_focus_psf_is_airy() -> None:
    """At z=0 the integral is the Airy pattern: intensity (J1(v)/v)^2, first zero at 3.8317."""
    from scipy import special

    o = Optics()
    v = np.linspace(0.05, 12.0, 50)
    r = v / (o.k * o.na / o.n)
    ours = psf_radial(r, 0.0, o)
    airy = (special.j1(v) / v) ** 2
    np.testing.assert_allclose(ours, airy, rtol=1e-6, atol=1e-12)


def _second_moment_radius(k: np.ndarray) -> float:
    c = k.shape[0] // 2
    yy, xx = np.mgrid[: k.shape[0], : k.shape[1]] - c
    return float(np.sqrt((k * (yy**2 + xx**2)).sum() / k.sum()))


def test_blur_grows_with_defocus() -> None:
    o = Optics()
    radii = [_second_moment_radius(psf_kernel(z, o, size=71)) for z in (0, 2, 5, 10, 15, 20)]
    assert all(b > a for a, b in zip(radii, radii[1:])), radii
    # symmetric without aberration
    np.testing.assert_allclose(psf_kernel(6.0, o, size=41), psf_kernel(-6.0, o, size=41), atol=1e-12)


def test_spherical_aberration_breaks_symmetry() -> None:
    o = Optics(sa_waves=0.5)
    kp = psf_kernel(6.0, o, size=41)
    km = psf_kernel(-6.0, o, size=41)
    assert np.abs(kp - km).sum() > 0.1
    assert kp.sum() == pytest.approx(1.0) and km.sum() == pytest.approx(1.0)


def test_levels_span_3_to_30_px() -> None:
    spec = LevelSpec(Optics())
    d = spec.diameters_px()
    z = spec.z_um()
    assert len(d) == 11 and d[0] == pytest.approx(3.78, abs=0.01) and d[-1] == pytest.approx(30.0)
    assert all(b > a for a, b in zip(z, z[1:]))
    for zi, di in zip(z, d):
        assert spec.optics.blur_diameter_px(zi) == pytest.approx(di)


def test_fft_blur_bank_matches_direct_convolution() -> None:
    from scipy import ndimage

    rng = np.random.default_rng(0)
    img = rng.random((64, 80)).astype(np.float32)
    k = psf_kernel(4.0, Optics(), size=15)
    out = fft_blur_bank(img, [k])[0]
    ref = ndimage.convolve(img.astype(np.float64), k, mode="reflect")
    # interior (reflect padding conventions differ by one pixel at the border)
    np.testing.assert_allclose(out[10:-10, 10:-10], ref[10:-10, 10:-10], atol=1e-5)


def test_noise_model_poisson_gain_offset() -> None:
    rng = np.random.default_rng(1)
    nm = NoiseModel(photons=(1000.0, 1000.0), gain=(2.0, 2.0), offset=(100.0, 100.0), read_noise=0.0)
    raw = nm.apply(np.full((4, 64, 64), 0.5, np.float32), rng)
    # mean = gain * photons * clean + offset, var = gain^2 * photons * clean
    assert raw.mean() == pytest.approx(2.0 * 500 + 100, rel=0.01)
    assert raw.var() == pytest.approx(4.0 * 500, rel=0.05)
    lo = NoiseModel().apply(np.zeros((2000, 1, 1), np.float32), rng)
    # offsets log-uniform in (1, 1000): median about sqrt(1000) ~ 32
    assert lo.min() >= 0.0 and lo.max() < 1000 + 10
    assert 15 < np.median(lo) < 70


# --- optically sectioned forward models ---------------------------------------------------
def test_confocal_signal_falls_with_defocus_while_widefield_is_conserved() -> None:
    from napari_focusqa.training.sectioning import confocal_kernel

    o = Optics()
    zs = LevelSpec(o).z_um()[:7]
    wide = [psf_kernel(z, o).sum() for z in zs]
    np.testing.assert_allclose(wide, 1.0, atol=1e-9)  # widefield: a blurred copy
    conf = np.array([confocal_kernel(z, o, 1.0).sum() for z in zs])
    assert conf[0] == pytest.approx(1.0, abs=1e-9)
    assert (np.diff(conf) < 0).all()  # sectioning: far layers send less light
    assert conf[-1] < 0.1
    # a smaller pinhole sections more strongly, a wider one less
    z = zs[2]
    small, wide_ph = confocal_kernel(z, o, 0.5).sum(), confocal_kernel(z, o, 2.0).sum()
    assert small < conf[2] < wide_ph
    # in focus, the confocal kernel is narrower than the widefield PSF (product of PSFs)
    def rms_radius(k: np.ndarray) -> float:
        c = (k.shape[0] - 1) / 2
        yy, xx = np.mgrid[: k.shape[0], : k.shape[1]]
        return float(np.sqrt((k * ((yy - c) ** 2 + (xx - c) ** 2)).sum() / k.sum()))

    k0 = confocal_kernel(0.0, o, 0.5)
    assert rms_radius(k0) < rms_radius(psf_kernel(0.0, o, size=k0.shape[0]))


def test_light_sheet_attenuates_by_the_sheet_profile() -> None:
    from napari_focusqa.training.sectioning import lightsheet_kernel, sheet_attenuation

    o = Optics()
    assert sheet_attenuation(0.0, 4.0) == 1.0
    assert sheet_attenuation(2.0, 4.0) == pytest.approx(0.5)  # FWHM
    assert sheet_attenuation(-3.0, 4.0) == sheet_attenuation(3.0, 4.0)
    for z in (0.0, 2.75, 4.84):
        k = lightsheet_kernel(z, o, 4.0)
        assert k.sum() == pytest.approx(sheet_attenuation(z, 4.0), rel=1e-9)
        np.testing.assert_allclose(k / k.sum(), psf_kernel(z, o))  # same blur as widefield


def test_point_scanning_detector_gives_zero_inflated_speckle() -> None:
    from napari_focusqa.training.sectioning import DetectorModel

    rng = np.random.default_rng(3)
    det = DetectorModel(offset_frac=(-1.0, -0.5), dark=(0.002, 0.3))
    empty = det.apply(np.zeros((8, 84, 84), np.float32), rng)
    zero = (empty == 0).mean(axis=(1, 2))
    assert (zero > 0.6).all()  # far planes: mostly exact zeros ...
    nz = empty[empty > 0]
    assert nz.size > 0 and np.median(nz) > 10 * np.median(np.abs(empty))  # ... and bright speckles
    bright = det.apply(np.full((4, 84, 84), 0.8, np.float32), rng)
    assert (bright == 0).mean() < 0.2 and bright.min() >= 0.0


def test_noise_patches_cover_every_type_without_structure() -> None:
    from napari_focusqa.training.sectioning import NOISE_TYPES, noise_patches

    raw, types = noise_patches(80, np.random.default_rng(0))
    assert set(np.unique(types)) == set(range(len(NOISE_TYPES)))
    assert raw.shape == (80, 84, 84) and raw.min() >= 0.0
    speckle = raw[types == NOISE_TYPES.index("speckle")]
    assert np.median((speckle == 0).mean(axis=(1, 2))) > 0.25  # zero-inflated (clipped)


def _lag1(x: np.ndarray, axis: int) -> float:
    a = np.moveaxis(x, axis, -1)
    return float(np.corrcoef(a[..., :-1].ravel(), a[..., 1:].ravel())[0, 1])


def test_correlated_detector_noise_like_a_resampled_point_scanner() -> None:
    """corr_p: the noise (not the signal) gets neighbour correlation like the NEUBIAS golgi
    background (0.3-0.5), keeps its standard deviation, and far planes stay zero-inflated."""
    from napari_focusqa.training.sectioning import DetectorModel, correlate_noise

    rng = np.random.default_rng(5)
    expected = np.zeros((6, 84, 84))
    expected[:, :, 40:] = 100.0  # a sharp edge
    white = expected + rng.normal(0.0, 10.0, expected.shape)
    out = correlate_noise(white, expected, rng, 1.0, (0.8, 1.2))
    noise = out - expected
    assert _lag1(white - expected, 2) == pytest.approx(0.0, abs=0.05)
    assert _lag1(noise, 2) > 0.5 and _lag1(noise, 1) > 0.5
    np.testing.assert_allclose(noise.std(axis=(1, 2)), (white - expected).std(axis=(1, 2)),
                               rtol=1e-6)
    # no noise -> the signal comes back untouched (labels stay geometric)
    np.testing.assert_array_equal(correlate_noise(expected, expected, rng, 1.0, (1.0, 1.0)),
                                  expected)
    det = DetectorModel(offset_frac=(-0.3, 0.0), corr_p=1.0)
    empty = det.apply(np.zeros((16, 84, 84), np.float32), rng)
    assert np.median((empty == 0).mean(axis=(1, 2))) > 0.3
    lag = [_lag1(p, 1) for p in empty if p.std() > 0]
    assert np.median(lag) > 0.2
    plain = DetectorModel(offset_frac=(-0.3, 0.0)).apply(np.zeros((16, 84, 84), np.float32), rng)
    assert np.median([_lag1(p, 1) for p in plain if p.std() > 0]) < 0.1
