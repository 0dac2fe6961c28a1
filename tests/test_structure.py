"""The per-patch structure test and the ``no_structure`` verdict (core.structure, core.assess).

Blank, constant and pure-noise frames must come out ``no_structure`` -- never ``in_focus``
-- with the shipped model and without one; objects (cells, beads, spots) must count as
structure; empty patches are left out of the aggregate and drawn grey.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_focusqa.core.assess import PATCH_COLUMNS, RECORD_COLUMNS, FocusResult, assess_image
from napari_focusqa.core.colors import EMPTY_RGB, patch_colors, patch_colors_uint8
from napari_focusqa.core.model import default_model_id
from napari_focusqa.core.patches import make_grid
from napari_focusqa.core.structure import (
    MIN_STRUCTURED_FRACTION,
    is_no_structure,
    patch_structure,
    structured_fraction,
)
from napari_focusqa.io.sample_data import SAMPLE_FOCUS, make_sample_stack
from tests.conftest import require_shared

MODEL = default_model_id()
needs_model = pytest.mark.skipif(MODEL is None, reason="no shipped levels model installed")

DTYPES = ("uint8", "uint16", "float32", "float64")
sizes = st.integers(84, 240)


def _cast(img: np.ndarray, dtype: str) -> np.ndarray:
    if dtype.startswith("uint"):
        info = np.iinfo(np.dtype(dtype))
        return np.clip(np.round(img), 0, info.max).astype(dtype)
    return img.astype(dtype)


def _never_in_focus(img: np.ndarray) -> None:
    """No structure, without a model and with the shipped one."""
    sf_only = assess_image(img, None)
    assert sf_only.verdict == "no_structure", sf_only.structured_fraction
    assert sf_only.structured_fraction is not None
    assert is_no_structure(sf_only.structured_fraction)
    if MODEL is not None:
        r = assess_image(img, MODEL)
        assert r.verdict == "no_structure", (r.structured_fraction, r.expected_level)
        assert r.in_focus is False
        assert r.empty is not None and r.empty.all()


@given(h=sizes, w=sizes, value=st.floats(0, 60000), dtype=st.sampled_from(DTYPES))
@settings(max_examples=25, deadline=None)
def test_constant_image_is_no_structure(h: int, w: int, value: float, dtype: str) -> None:
    _never_in_focus(_cast(np.full((h, w), value), dtype))


@given(h=sizes, w=sizes, log_lam=st.floats(-3, 4), offset=st.integers(0, 1000),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**31))
@settings(max_examples=30, deadline=None)
def test_pure_poisson_noise_is_no_structure(
    h: int, w: int, log_lam: float, offset: int, dtype: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    img = rng.poisson(10.0**log_lam, (h, w)).astype(np.float64) + offset
    _never_in_focus(_cast(img, dtype))


@given(h=sizes, w=sizes, log_sigma=st.floats(-2, 4), mean=st.floats(0, 30000),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**31))
@settings(max_examples=30, deadline=None)
def test_pure_gaussian_noise_is_no_structure(
    h: int, w: int, log_sigma: float, mean: float, dtype: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    img = rng.normal(mean, 10.0**log_sigma, (h, w))
    _never_in_focus(_cast(img, dtype))


@given(h=sizes, w=sizes, density=st.floats(0.001, 0.9), scale=st.floats(1, 3000),
       dtype=st.sampled_from(("uint8", "uint16", "float32")), seed=st.integers(0, 2**31))
@settings(max_examples=30, deadline=None)
def test_zero_inflated_detector_speckle_is_no_structure(
    h: int, w: int, density: float, scale: float, dtype: str, seed: int
) -> None:
    """A point-scanning confocal's far plane: mostly exact zeros (offset clipped at 0)
    and isolated bright single-pixel photon events."""
    rng = np.random.default_rng(seed)
    img = (rng.random((h, w)) < density) * rng.exponential(scale, (h, w))
    _never_in_focus(_cast(img, dtype))


def test_hot_pixels_and_illumination_ramp_are_not_structure() -> None:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:336, :420]
    vignette = 2000.0 * (1.0 - 0.6 * ((yy - 168) ** 2 + (xx - 210) ** 2) / 210**2)
    img = rng.poisson(vignette).astype(np.float64)
    hot = rng.integers(0, img.size, 40)
    img.ravel()[hot] = 60000  # isolated saturated camera pixels
    _never_in_focus(img.astype(np.uint16))


def _spots(shape: tuple[int, int], centres: list[tuple[int, int]], amp: float,
           sigma_px: float, bg: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    clean = np.full(shape, bg, dtype=np.float64)
    for cy, cx in centres:
        clean += amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma_px**2))
    return rng.poisson(clean).astype(np.uint16)


def test_sparse_in_focus_spots_count_as_structure() -> None:
    # one diffraction-limited bead (sigma 1.5 px) in the top-left patch only, on a dark,
    # noisy background: that patch holds structure, the other patches do not
    img = _spots((168, 252), [(40, 40)], amp=60.0, sigma_px=1.5, bg=3.0, seed=1)
    s = patch_structure(img, make_grid(img.shape, 84))
    assert not s.empty[0, 0]
    assert s.empty.sum() == s.empty.size - 1
    assert s.structured_fraction == pytest.approx(1 / 6)
    r = assess_image(img, None)
    assert r.verdict is None  # structure but no model: no verdict
    assert r.structured_fraction == pytest.approx(1 / 6)


def test_faint_spot_below_noise_is_not_structure() -> None:
    img = _spots((168, 168), [(40, 40)], amp=2.0, sigma_px=1.5, bg=400.0, seed=2)
    assert patch_structure(img, make_grid(img.shape, 84)).empty.all()


def test_sample_cells_hold_structure_at_focus_and_far_from_it() -> None:
    """Widefield defocus blurs cells rather than erasing them: still structure."""
    sample = make_sample_stack()
    for z in (SAMPLE_FOCUS[0], 0):
        r = assess_image(sample.data[0, z, 0], None)
        assert r.structured_fraction is not None and r.structured_fraction > 0.5


@needs_model
def test_empty_patches_are_left_out_of_the_aggregate() -> None:
    k = 11
    probs = np.zeros((2, 2, k))
    probs[..., 0] = 1.0  # three empty patches would say "level 0, certain"
    probs[1, 1] = np.eye(k)[8]  # the one structured patch says level 8
    empty = np.array([[True, True], [True, False]])
    r = FocusResult(grid=None, probabilities=probs, in_focus_max_level=1, empty=empty)
    assert r.predicted_level == 8 and r.verdict == "out_of_focus" and r.in_focus is False
    assert r.structured_fraction == pytest.approx(0.25)
    assert r.mean_certainty == pytest.approx(1.0)
    plain = FocusResult(grid=None, probabilities=probs, in_focus_max_level=1)
    assert plain.predicted_level == 0 and plain.verdict == "in_focus"
    assert plain.structured_fraction is None
    all_empty = FocusResult(grid=None, probabilities=probs, empty=np.ones((2, 2), bool))
    assert all_empty.verdict == "no_structure" and all_empty.in_focus is False


def test_empty_mask_must_match_the_grid() -> None:
    with pytest.raises(ValueError, match="empty"):
        FocusResult(grid=None, probabilities=np.full((2, 2, 3), 1 / 3), empty=np.ones((3, 2)))


def test_structured_fraction_threshold() -> None:
    assert structured_fraction(np.ones((0,), bool)) == 0.0
    assert is_no_structure(0.0)
    assert not is_no_structure(MIN_STRUCTURED_FRACTION)
    assert structured_fraction(np.array([[True, False], [True, True]])) == 0.25


@needs_model
def test_records_and_patch_table_carry_the_verdict() -> None:
    img = make_sample_stack().data[0, SAMPLE_FOCUS[1], 1]
    r = assess_image(img, MODEL)
    rec = r.to_record()
    assert list(rec)[: len(RECORD_COLUMNS)] == list(RECORD_COLUMNS)
    assert rec["verdict"] in ("in_focus", "out_of_focus")
    assert 0.0 < rec["structured_fraction"] <= 1.0
    rows = r.to_dict(patches=True)["patches"]
    assert all(set(PATCH_COLUMNS) <= set(row) for row in rows)
    assert [row["empty"] for row in rows] == r.empty.ravel().tolist()
    blank = assess_image(np.zeros((100, 100), np.uint16), MODEL).to_record()
    assert blank["verdict"] == "no_structure" and blank["structured_fraction"] == 0.0


def test_empty_patches_are_drawn_grey() -> None:
    level = np.array([[0, 5], [10, 3]])
    cert = np.ones((2, 2))
    empty = np.array([[False, True], [False, True]])
    rgba = patch_colors(level, cert, empty)
    np.testing.assert_allclose(rgba[empty][:, :3], np.tile(EMPTY_RGB, (2, 1)))
    assert not np.allclose(rgba[~empty][:, :3], EMPTY_RGB)
    u8 = patch_colors_uint8(level, cert, empty)
    assert u8.dtype == np.uint8 and (u8[0, 1] == u8[1, 1]).all()
    assert (u8[0, 1, 0] == u8[0, 1, 1] == u8[0, 1, 2])  # grey: no hue


def test_real_airyscan_beads_structure_follows_focus() -> None:
    """Sub-resolution beads (mostly-zero uint8): the far planes are noise only, the planes
    around the bead focus (z ~ 22-24) hold structure."""
    import tifffile

    stack = tifffile.imread(require_shared("bian_beads_airyscan_zstack.tif"))
    frac = [assess_image(p, None).structured_fraction for p in stack]
    assert all(f == 1.0 for f in frac[19:28])
    assert all(f == 0.0 for f in frac[:6] + frac[-6:])


def test_real_confocal_grid_far_planes_have_no_structure() -> None:
    import tifffile

    stack = tifffile.imread(require_shared("bian_grid_confocal_1au_zstack.tif"))
    verdicts = [assess_image(p, None).verdict for p in stack]
    assert verdicts[:3] == ["no_structure"] * 3 and verdicts[-3:] == ["no_structure"] * 3
    assert all(v is None for v in verdicts[9:14])  # structure around the SF peak z ~ 11
