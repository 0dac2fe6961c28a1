"""The covering patch grid."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_focusqa.core.patches import make_grid


def test_grid_covers_edges() -> None:
    g = make_grid((201, 101), 84)
    assert g.row_starts.tolist() == [0, 84, 117]
    assert g.col_starts.tolist() == [0, 17]
    assert g.coverage().min() >= 1
    assert g.boxes()[-1, -1].tolist() == [117, 17, 201, 101]
    ov = g.overlap_fraction()
    assert ov[0, 0] == 0 and ov[2, 0] == pytest.approx((84 + 84 - 117) / 84)


def test_exact_multiple_has_no_overlap() -> None:
    g = make_grid((168, 252), 84)
    assert g.shape == (2, 3)
    assert g.overlap_fraction().max() == 0
    assert (g.coverage() == 1).all()


@given(st.integers(84, 400), st.integers(84, 400), st.integers(8, 84))
@settings(max_examples=50, deadline=None)
def test_grid_properties(h: int, w: int, p: int) -> None:
    g = make_grid((h, w), p)
    b = g.boxes()
    assert b[..., 0].min() == 0 and b[..., 2].max() == h
    assert b[..., 1].min() == 0 and b[..., 3].max() == w
    assert g.coverage().min() >= 1
    assert g.rows == -(-h // p) and g.cols == -(-w // p)


def test_extract_matches_slicing() -> None:
    img = np.arange(201 * 101, dtype=np.float32).reshape(201, 101)
    g = make_grid(img.shape, 84)
    patches = g.extract(img)
    assert patches.shape == (3, 2, 84, 84)
    for r in range(g.rows):
        for c in range(g.cols):
            y0, x0, y1, x1 = g.boxes()[r, c]
            np.testing.assert_array_equal(patches[r, c], img[y0:y1, x0:x1])
    stack = np.stack([img, img + 1])
    assert g.extract(stack).shape == (2, 3, 2, 84, 84)


@pytest.mark.parametrize("shape", [(83, 200), (200, 10), (1, 1)])
def test_too_small(shape: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="smaller than one 84x84 patch"):
        make_grid(shape, 84)


@pytest.mark.parametrize("p", [0, -3, 2.5, True])
def test_bad_patch_size(p: object) -> None:
    with pytest.raises(ValueError, match="patch_size"):
        make_grid((100, 100), p)  # type: ignore[arg-type]
