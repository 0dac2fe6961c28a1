"""Property-based fuzzing of the core with hypothesis.

Default runs use a few dozen examples per property; ``-m slow`` adds the >= 1,000-example
run. Properties: only documented exceptions (:class:`ImageError`); probabilities sum to 1;
certainties within [0, 1]; levels within range; results invariant to dtype conversion
where the pixel values are exactly representable; patch grids cover every pixel.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from napari_focusqa.core import metrics
from napari_focusqa.core.assess import aggregate, assess_image, certainty
from napari_focusqa.core.errors import ImageError
from napari_focusqa.core.patches import make_grid

FAST = settings(max_examples=30, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SLOW = settings(max_examples=1000, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])

REAL_DTYPES = ["bool", "int8", "uint8", "int16", "uint16", "int32", "int64", "uint64",
               "float16", "float32", "float64"]
ALL_DTYPES = [*REAL_DTYPES, "complex64", "object", "U1", "datetime64[s]"]


@st.composite
def images(draw, min_side: int = 84, max_side: int = 200, dtypes=REAL_DTYPES):
    """Images of a real dtype: random noise, smooth structure, flat or saturated."""
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    h = draw(st.integers(min_side, max_side))
    w = draw(st.integers(min_side, max_side))
    seed = draw(st.integers(0, 2**32 - 1))
    kind = draw(st.sampled_from(["noise", "smooth", "flat", "saturated", "sparse"]))
    rng = np.random.default_rng(seed)
    if dtype.kind == "b":
        return rng.random((h, w)) > draw(st.floats(0, 1))
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = float(max(info.min, -(2**31))), float(min(info.max, 2**31))
    else:
        lo, hi = -1e4, 6e4
    if kind == "noise":
        img = rng.uniform(lo, hi, (h, w))
    elif kind == "smooth":
        y, x = np.mgrid[:h, :w]
        f = draw(st.floats(0.01, 1.0))
        img = (np.sin(x * f) * np.cos(y * f) + 1) / 2 * (hi - lo) + lo
    elif kind == "flat":
        img = np.full((h, w), draw(st.floats(lo, hi)))
    elif kind == "saturated":
        img = np.where(rng.random((h, w)) > 0.5, hi, rng.uniform(lo, hi, (h, w)))
    else:
        img = np.where(rng.random((h, w)) > 0.99, hi, lo)
    img = np.clip(img, lo, hi)
    if dtype.kind in "iu":
        img = np.floor(img)
    return img.astype(dtype)


def _check_result(res, num_classes: int = 11) -> None:
    p = res.probabilities
    assert p.shape == (*res.grid.shape, num_classes)
    assert np.all(p >= 0) and np.allclose(p.sum(-1), 1.0, atol=1e-6)
    assert res.probability.sum() == pytest.approx(1.0, abs=1e-9)
    assert np.all((res.patch_certainty >= 0) & (res.patch_certainty <= 1))
    assert 0.0 <= res.mean_certainty <= 1.0 and 0.0 <= res.aggregate_certainty <= 1.0
    assert 0 <= res.predicted_level < num_classes
    assert 0.0 <= res.expected_level <= num_classes - 1
    assert np.all((res.patch_level >= 0) & (res.patch_level < num_classes))
    assert np.isfinite(res.sf) and res.sf >= 0
    rec = res.to_record()
    assert len(rec["probabilities"]) == num_classes


def _assess_props(img: np.ndarray, model) -> None:
    res = assess_image(img, model)
    _check_result(res)
    flat = np.ptp(img.astype(np.float64)) == 0
    if flat:
        assert res.sf == 0.0


@FAST
@given(img=images())
def test_fuzz_assess_image_properties(img, sharpness_model) -> None:
    _assess_props(img, sharpness_model)


@pytest.mark.slow
@SLOW
@given(img=images(max_side=130))
def test_fuzz_assess_image_properties_1000(img, sharpness_model) -> None:
    _assess_props(img, sharpness_model)


@st.composite
def anything(draw):
    """Arrays of any shape (0..4 dims, possibly empty), any dtype, with NaN/inf."""
    dtype = draw(st.sampled_from(ALL_DTYPES))
    ndim = draw(st.integers(0, 4))
    shape = tuple(draw(st.lists(st.integers(0, 100 if ndim <= 2 else 6), min_size=ndim,
                                max_size=ndim)))
    if int(np.prod(shape)) > 20000:
        shape = shape[:-1] + (1,)
    if dtype in ("object", "U1", "datetime64[s]"):
        return np.zeros(shape, dtype=dtype)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    arr = rng.normal(0, 100, shape)
    if np.dtype(dtype).kind == "f" and arr.size and draw(st.booleans()):
        arr.flat[draw(st.integers(0, arr.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    if np.dtype(dtype).kind in "iub":
        arr = np.abs(arr) if np.dtype(dtype).kind == "u" else arr
    with np.errstate(invalid="ignore", over="ignore"):
        return arr.astype(dtype)


def _only_documented_errors(arr, model) -> None:
    try:
        res = assess_image(arr, model)
    except ImageError as exc:
        assert str(exc).startswith(("image:", "patch_size:")), str(exc)
        return
    assert arr.ndim == 2
    if model is None:
        assert np.isfinite(res.sf)
    else:
        _check_result(res)


@FAST
@given(arr=anything(), use_model=st.booleans())
def test_fuzz_only_documented_errors(arr, use_model, sharpness_model) -> None:
    _only_documented_errors(arr, sharpness_model if use_model else None)


@pytest.mark.slow
@SLOW
@given(arr=anything(), use_model=st.booleans())
def test_fuzz_only_documented_errors_1000(arr, use_model, sharpness_model) -> None:
    _only_documented_errors(arr, sharpness_model if use_model else None)


@st.composite
def small_int_images(draw):
    """Integer pixel values in [0, 127]: exact in every real dtype (float16 included)."""
    h = draw(st.integers(84, 170))
    w = draw(st.integers(84, 170))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.integers(1, 127))
    return np.floor(rng.random((h, w)) * scale).astype(np.uint8)


def _dtype_invariance(img: np.ndarray, model) -> None:
    ref = assess_image(img.astype(np.float64), model, metrics=("sf", "brenner", "var_laplacian"))
    for dt in ("int8", "uint8", "int16", "uint16", "int32", "float16", "float32"):
        got = assess_image(img.astype(dt), model, metrics=("sf", "brenner", "var_laplacian"))
        np.testing.assert_allclose(got.probabilities, ref.probabilities, atol=1e-6)
        assert got.predicted_level == ref.predicted_level
        for k, v in ref.metrics.items():
            assert got.metrics[k] == pytest.approx(v, rel=1e-5, abs=1e-9), (dt, k)


@FAST
@given(img=small_int_images())
def test_fuzz_dtype_conversion_invariance(img, sharpness_model) -> None:
    _dtype_invariance(img, sharpness_model)


@st.composite
def prob_arrays(draw):
    k = draw(st.integers(2, 16))
    n = draw(st.integers(1, 20))
    raw = draw(hnp.arrays(np.float64, (n, k), elements=st.floats(0, 1e6, allow_subnormal=True)))
    s = raw.sum(-1, keepdims=True)
    return np.where(s > 0, raw / np.where(s > 0, s, 1), 1.0 / k)


def _certainty_props(p: np.ndarray) -> None:
    c = certainty(p)
    assert c.shape == p.shape[:-1]
    assert np.all((c >= 0) & (c <= 1)) and np.all(np.isfinite(c))
    whole, pc = aggregate(p)
    assert whole.sum() == pytest.approx(1.0) and np.all(whole >= 0)
    np.testing.assert_allclose(pc, c)
    k = p.shape[-1]
    assert certainty(np.eye(k)).min() == pytest.approx(1.0)
    assert certainty(np.full(k, 1.0 / k)) == pytest.approx(0.0, abs=1e-12)


@FAST
@given(p=prob_arrays())
def test_fuzz_certainty_and_aggregate(p) -> None:
    _certainty_props(p)


def _grid_props(h: int, w: int, patch: int) -> None:
    if h < patch or w < patch:
        with pytest.raises(ImageError, match="smaller than one"):
            make_grid((h, w), patch)
        return
    g = make_grid((h, w), patch)
    cov = g.coverage()
    assert cov.min() >= 1
    b = g.boxes()
    assert b[..., 0].min() == 0 and b[..., 2].max() == h and b[..., 3].max() == w
    assert g.rows == -(-h // patch) and g.cols == -(-w // patch)
    ov = g.overlap_fraction()
    assert np.all((ov >= 0) & (ov < 1))


@FAST
@given(h=st.integers(1, 400), w=st.integers(1, 400), patch=st.integers(1, 128))
def test_fuzz_make_grid_covers_every_pixel(h, w, patch) -> None:
    _grid_props(h, w, patch)


def _metric_props(img: np.ndarray) -> None:
    for name in metrics.METRICS:
        v = float(metrics.compute(name, img))
        assert np.isfinite(v), name
        if name not in ("plls", "vollath_f4"):  # those two are signed by definition
            assert v >= 0, name
    # SF is translation-invariant in intensity and scales linearly
    sf = float(metrics.spatial_frequency(img))
    assert float(metrics.spatial_frequency(img + 10.0)) == pytest.approx(sf, rel=1e-3, abs=1e-3)
    assert float(metrics.spatial_frequency(img * 2.0)) == pytest.approx(2 * sf, rel=1e-5, abs=1e-6)


@FAST
@given(img=hnp.arrays(np.float32, st.tuples(st.integers(3, 40), st.integers(3, 40)),
                      elements=st.floats(0, 1000, width=32)))
def test_fuzz_metrics_finite_and_scaling(img) -> None:
    _metric_props(img)


@pytest.mark.slow
@SLOW
@given(
    p=prob_arrays(),
    h=st.integers(1, 400),
    w=st.integers(1, 400),
    patch=st.integers(1, 128),
    img=hnp.arrays(np.float32, st.tuples(st.integers(3, 40), st.integers(3, 40)),
                   elements=st.floats(0, 1000, width=32)),
)
def test_fuzz_certainty_grid_metrics_1000(p, h, w, patch, img) -> None:
    _certainty_props(p)
    _grid_props(h, w, patch)
    _metric_props(img)
