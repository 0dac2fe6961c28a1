"""Focus measures: ranking of a Born–Wolf defocus series of a real image, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_shared
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_focusqa.core import metrics
from napari_focusqa.core.patches import make_grid


@pytest.fixture(scope="module")
def defocus_series() -> list[np.ndarray]:
    """BBBC006 Hoechst field a01 blurred with the Yang Born–Wolf PSF at the 11 levels.

    Poisson noise at a high photon count (1e6 at the brightest pixel), where every
    measure, PLLS included, is expected to rank the levels.
    """
    import tifffile
    from scipy.signal import fftconvolve

    from napari_focusqa.training.simulate import LevelSpec, Optics, psf_kernel

    img = tifffile.imread(require_shared("bbbc006_hoechst_infocus_9fields.tif"))[0]
    img = img[:256, :256].astype(np.float64)
    img = (img - img.min()) / np.ptp(img)
    spec = LevelSpec(Optics())
    rng = np.random.default_rng(0)
    series = []
    for z in spec.z_um():
        k = psf_kernel(z, spec.optics)
        blurred = fftconvolve(np.pad(img, k.shape[0], mode="reflect"), k, mode="same")
        blurred = blurred[k.shape[0] : -k.shape[0], k.shape[0] : -k.shape[0]]
        noisy = rng.poisson(np.clip(blurred, 0, None) * 1e6 + 20) + 100
        series.append(noisy.astype(np.uint32))
    return series


@pytest.mark.parametrize("name", sorted(metrics.METRICS))
def test_metric_ranks_born_wolf_series(name: str, defocus_series: list[np.ndarray]) -> None:
    vals = [float(metrics.compute(name, im)) for im in defocus_series]
    # strictly decreasing with defocus level (level 0 sharpest). The blur effect
    # re-blurs with an 11-px box, so it saturates once the PSF is wider than that (its
    # authors' and scikit-image's documented asymptote): levels 8-10 all read ~0.29.
    n = 8 if name == "blur_sharpness" else len(vals)
    assert all(a > b for a, b in zip(vals[:n], vals[1:n])), (name, vals)
    if name == "blur_sharpness":
        assert max(vals[n:]) - min(vals[n:]) < 0.01 and max(vals[n:]) < vals[n - 2]


@pytest.mark.parametrize("name", sorted(metrics.METRICS))
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32, np.float64, bool])
def test_constant_image_gives_zero(name: str, dtype: type) -> None:
    img = np.full((40, 50), 1 if dtype is bool else 7, dtype=dtype)
    v = metrics.compute(name, img)
    assert np.isfinite(v) and float(v) == 0.0


@pytest.mark.parametrize("name", sorted(metrics.METRICS))
def test_patch_grid_vectorised_equals_per_patch(name: str) -> None:
    rng = np.random.default_rng(1)
    img = rng.poisson(200, size=(200, 260)).astype(np.uint16)
    grid = make_grid(img.shape, 84)
    patches = grid.extract(img)
    vec = metrics.compute(name, patches)
    assert vec.shape == grid.shape
    loop = np.array([[float(metrics.compute(name, patches[r, c])) for c in range(grid.cols)]
                     for r in range(grid.rows)])
    np.testing.assert_allclose(vec, loop, rtol=1e-6)


def test_sf_matches_fluoclip_definition() -> None:
    rng = np.random.default_rng(2)
    img = rng.random((13, 17)) * 1000
    m, n = img.shape
    rf = np.sqrt(sum((img[i + 1, j] - img[i, j]) ** 2 for i in range(m - 1) for j in range(n)) / ((m - 1) * n))
    cf = np.sqrt(sum((img[i, j + 1] - img[i, j]) ** 2 for i in range(m) for j in range(n - 1)) / (m * (n - 1)))
    assert metrics.row_frequency(img) == pytest.approx(rf, rel=1e-5)
    assert metrics.column_frequency(img) == pytest.approx(cf, rel=1e-5)
    assert metrics.spatial_frequency(img) == pytest.approx(np.hypot(rf, cf), rel=1e-5)


@given(
    st.integers(3, 40),
    st.integers(3, 40),
    st.sampled_from(["uint8", "uint16", "int16", "float32", "float64"]),
)
@settings(max_examples=40, deadline=None)
def test_metrics_finite_any_shape_dtype(h: int, w: int, dtype: str) -> None:
    rng = np.random.default_rng(h * 100 + w)
    img = (rng.random((h, w)) * 100).astype(dtype)
    for name in metrics.METRICS:
        v = metrics.compute(name, img)
        assert np.isfinite(v), name


def test_metric_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.compute("nope", np.zeros((5, 5)))
    with pytest.raises(ValueError, match="3x3"):
        metrics.spatial_frequency(np.zeros((1, 1)))
    with pytest.raises(ValueError, match="dtype"):
        metrics.spatial_frequency(np.zeros((5, 5), complex))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float64", "float32"])
@pytest.mark.parametrize("shape", [(4, 4), (9, 5), (84, 84), (131, 77)])
def test_blur_effect_equals_scikit_image(dtype: str, shape: tuple[int, int]) -> None:
    skimage_measure = pytest.importorskip("skimage.measure")
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    scale = 200 if dtype != "float32" else 1.0
    img = (rng.gamma(2.0, 1.0, shape) * scale).astype(dtype)
    ref = skimage_measure.blur_effect(img)  # computes float32 input in float32
    tol = 1e-6 if dtype == "float32" else 1e-12
    assert float(metrics.blur_effect(img)) == pytest.approx(ref, abs=tol)
    assert float(metrics.compute("blur_sharpness", img)) == pytest.approx(1 - ref, abs=tol)


def test_blur_effect_on_real_defocus_and_patch_grid(defocus_series: list[np.ndarray]) -> None:
    skimage_measure = pytest.importorskip("skimage.measure")
    for im in defocus_series[::3]:
        assert float(metrics.blur_effect(im)) == pytest.approx(
            skimage_measure.blur_effect(im), abs=1e-12)
    grid = make_grid(defocus_series[0].shape, 84)
    patches = grid.extract(defocus_series[0])
    vec = metrics.blur_effect(patches)
    ref = [[skimage_measure.blur_effect(patches[r, c]) for c in range(grid.cols)]
           for r in range(grid.rows)]
    np.testing.assert_allclose(vec, ref, atol=1e-12)
