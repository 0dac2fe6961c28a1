"""Certainty, aggregation, FocusResult and stacks (Yang et al. definitions)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_focusqa.core.assess import RECORD_COLUMNS, FocusResult, assess_image, certainty
from napari_focusqa.core.zstack import assess_stack
from napari_focusqa.io.sample_data import SAMPLE_FOCUS, make_sample_stack


def test_golden_two_patches() -> None:
    probs = np.array([[[1 / 3, 1 / 3, 1 / 3], [0.0, 0.2, 0.8]]])
    r = FocusResult(grid=None, probabilities=probs)
    assert r.predicted_level == 2
    np.testing.assert_allclose(r.probability, [0, 0.2, 0.8], atol=1e-12)
    assert r.mean_certainty == pytest.approx(0.272, abs=5e-4)
    assert r.aggregate_certainty == pytest.approx(0.545, abs=5e-4)
    assert r.patch_certainty[0, 0] == pytest.approx(0.0, abs=1e-12)
    assert r.expected_level == pytest.approx(1.8)


def test_certainty_extremes() -> None:
    assert certainty(np.eye(11)[3]) == pytest.approx(1.0)
    assert certainty(np.full(11, 1 / 11)) == pytest.approx(0.0, abs=1e-12)


@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(2, 11)),
              elements=st.floats(0, 1)))
@settings(max_examples=60, deadline=None)
def test_aggregate_is_a_distribution(raw: np.ndarray) -> None:
    raw = raw + 1e-9
    probs = raw / raw.sum(axis=-1, keepdims=True)
    r = FocusResult(grid=None, probabilities=probs)
    assert r.probability.sum() == pytest.approx(1.0)
    assert 0.0 <= r.mean_certainty <= 1.0
    assert 0.0 <= r.aggregate_certainty <= 1.0
    assert 0 <= r.predicted_level < probs.shape[-1]


def test_sharper_image_scores_lower_level(sharpness_model) -> None:
    sample = make_sample_stack()
    z0 = SAMPLE_FOCUS[1]
    sharp = assess_image(sample.data[0, z0, 1], sharpness_model)
    blurred = assess_image(sample.data[0, z0 + 6, 1], sharpness_model)
    assert sharp.expected_level < blurred.expected_level
    assert sharp.sf > blurred.sf
    assert sharp.grid.shape == (3, 4)  # 252x336 -> 3x4 patches of 84 px
    rec = sharp.to_record()
    assert list(rec)[: len(RECORD_COLUMNS)] == list(RECORD_COLUMNS)
    assert len(sharp.patch_table()) == 12


def test_no_model_gives_metrics_only() -> None:
    img = make_sample_stack().data[0, 10, 0]
    r = assess_image(img, None, metrics=("sf", "brenner"))
    assert r.predicted_level is None and r.in_focus is None
    assert r.sf > 0 and r.metrics["brenner"] > 0


def test_stack_best_slice_per_channel(sharpness_model) -> None:
    sample = make_sample_stack()
    seen = []
    res = assess_stack(sample.zcyx(), sharpness_model, z_step_um=sample.z_step_um,
                       channel_names=sample.channel_names, progress=lambda d, t: seen.append((d, t)))
    assert [c.stain for c in res.channels] == ["nucleus", "actin"]
    assert [c.best_z_index for c in res.channels] == list(SAMPLE_FOCUS)
    assert [c.best_z_index_model for c in res.channels] == list(SAMPLE_FOCUS)
    assert res.channels[1].best_z_um == pytest.approx(SAMPLE_FOCUS[1] * 0.5)
    assert seen[-1] == (42, 42)
    d = res.to_dict()
    assert len(d["channels"][0]["sf"]) == 21
    assert len(res.records()) == 42


def test_stack_cancel() -> None:
    from napari_focusqa.core.errors import Cancelled

    sample = make_sample_stack()
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled):
        assess_stack(sample.zcyx(), None, cancel=cancel)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((1, 1)), "too small"),
        (np.full((100, 100), np.nan), "NaN"),
        (np.zeros((100, 100, 3), np.uint8), "RGB"),
        (np.zeros((100, 100), complex), "dtype"),
        (np.zeros((2, 3, 4, 5, 6)), "2D"),
    ],
)
def test_assess_image_rejects(bad: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        assess_image(bad)


def test_smaller_than_patch_is_clear_error(sharpness_model) -> None:
    with pytest.raises(ValueError, match="smaller than one 84x84 patch"):
        assess_image(np.ones((50, 200)), sharpness_model)
