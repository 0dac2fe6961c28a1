"""The fast paths of the core (patch normalisation in core.normalise, the blocked SF, the
parallel assessment) give the numbers of the straightforward implementations, on real
images.

``_reference`` below is the whole-array implementation that shipped before the chunked,
table-driven one (kept here as the oracle: one readable numpy expression per step).
8/16-bit images and floats holding integers must match it bit for bit; other floats
within a few float32 ulps (the vectorised log1p). The end-to-end checks run the shipped
model on the oracle's normalisation directly and compare probabilities, levels and
verdicts with ``assess_image``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

from napari_focusqa.core.assess import assess_image
from napari_focusqa.core.model import FocusModel, default_model_id, load_model
from napari_focusqa.core.normalise import _log1p_into, normalise_patches
from napari_focusqa.core.patches import make_grid
from napari_focusqa.core.structure import patch_structure
from napari_focusqa.io.sample_data import make_sample_stack
from tests.conftest import require_shared

MODEL = default_model_id()
needs_model = pytest.mark.skipif(MODEL is None, reason="no shipped levels model installed")
LOG = {"method": "log-zscore", "eps": 0.01}
ZS = {"method": "zscore", "eps": 1e-6}


def _reference(patches: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    x = np.array(patches, dtype=np.float32)
    if spec["method"] == "log-zscore":
        np.maximum(x, 0.0, out=x)
        np.log1p(x, out=x)
    mean = x.mean(axis=(-2, -1), keepdims=True)
    x -= mean
    std = np.sqrt(np.einsum("...ij,...ij->...", x, x) / np.float32(x.shape[-1] * x.shape[-2]))
    std = std[..., None, None]
    flat = std <= 1e-6 * np.maximum(1.0, np.abs(mean))
    x /= std + np.float32(spec["eps"])
    x[np.broadcast_to(flat, x.shape)] = 0.0
    return x


@functools.cache
def _real_planes() -> list[tuple[str, np.ndarray]]:
    """One embedded and several real planes of different dtypes and contents."""
    from napari_focusqa.io.reader import read_image

    planes = [("sample", make_sample_stack().data[0, 10, 1])]
    for name, z in (("deconwolf_dapi_widefield_zstack.tif", 19),
                    ("neubias_golgi_bfa_zstack.tif", 2),
                    ("bian_grid_confocal_1au_zstack.tif", 0)):
        img = read_image(str(require_shared(name)))
        planes.append((f"{name}[{z}]", np.asarray(img.zcyx(0))[z, 0]))
    return planes


def _patches(img: np.ndarray) -> np.ndarray:
    p = min(84, *img.shape)
    return make_grid(img.shape, p).extract(img).reshape(-1, p, p)


def test_log1p_table_and_vectorised_log1p_match_numpy() -> None:
    ints = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    out = np.empty(ints.shape, np.float32)
    _log1p_into(ints, out)
    assert np.array_equal(out, np.log1p(ints.astype(np.float32)))  # the table: exact
    _log1p_into(ints.astype(np.float64), out)  # integers held as floats: the table too
    assert np.array_equal(out, np.log1p(ints.astype(np.float32)))
    rng = np.random.default_rng(1)
    x = np.concatenate([10.0 ** rng.uniform(-12, 30, 200_000), rng.random(50_000) * 1e5,
                        [0.0, 1e-45, 6e-8, 1.0, 65535.5, 3.4e38]]).astype(np.float32)
    got = np.empty_like(x)
    _log1p_into(x, got)
    want = np.log1p(x)
    assert np.all(np.isfinite(got))
    rel = np.abs(got.astype(np.float64) - want) / np.maximum(np.abs(want), 1e-45)
    assert rel.max() < 6e-7  # a few float32 ulps (eps = 1.19e-7)
    neg = np.array([-5.0, -0.5, 0.0], np.float32)
    _log1p_into(neg, got[:3])
    assert np.array_equal(got[:3], [0.0, 0.0, 0.0])  # max(x, 0) first


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32])
def test_integer_images_normalise_bit_for_bit(dtype: type) -> None:
    for name, img in _real_planes():
        if np.issubdtype(dtype, np.integer) and img.max() > np.iinfo(dtype).max:
            img = img // 256  # fit 16-bit data into 8 bits
        p = _patches(np.asarray(img).astype(dtype))
        for spec in (LOG, ZS):
            assert np.array_equal(normalise_patches(p, spec), _reference(p, spec)), name


def test_non_integer_floats_normalise_within_float32_ulps() -> None:
    rng = np.random.default_rng(2)
    for name, img in _real_planes():
        x = img.astype(np.float64) * rng.uniform(0.37, 0.43) + rng.normal(0, 0.1, img.shape)
        for dtype in (np.float32, np.float64):
            p = _patches(x.astype(dtype))
            np.testing.assert_allclose(normalise_patches(p, LOG), _reference(p, LOG),
                                       rtol=0, atol=2e-5, err_msg=name)
            assert np.array_equal(normalise_patches(p, ZS), _reference(p, ZS)), name
    tiny = rng.random((3, 84, 84)).astype(np.float32) * np.float32(1e-6)
    np.testing.assert_allclose(normalise_patches(tiny, LOG), _reference(tiny, LOG), atol=2e-5)


def test_constant_patches_and_out_buffer() -> None:
    p = np.zeros((40, 84, 84), np.uint16)
    p[:20] = 300
    p[25] = np.arange(84, dtype=np.uint16)[None, :]
    out = np.full(p.shape, np.nan, np.float32)
    got = normalise_patches(p, LOG, out=out)
    assert got is out
    assert np.array_equal(got, _reference(p, LOG))
    assert not got[:25].any() and got[25].std() > 0.9
    with pytest.raises(ValueError, match="out: expected"):
        normalise_patches(p, LOG, out=np.empty((40, 84, 84), np.float64))
    s = normalise_patches(p, {"method": "scale", "scale": 0.5, "offset": -1.0})
    assert s.dtype == np.float32 and s[0, 0, 0] == 149.0


@needs_model
def test_assess_image_matches_the_reference_path_on_real_planes() -> None:
    """Probabilities of the shipped model on the oracle normalisation (one batch, no
    threads) against ``assess_image`` on 1 and 2 threads: same levels and verdicts."""
    base = load_model(MODEL)
    for name, img in _real_planes():
        grid = make_grid(img.shape, base.patch_size)
        x = _reference(grid.extract(img).reshape(-1, 84, 84), base.card["input_normalisation"])
        raw = base.session.run(None, {"patches": x[:, None]})[0].astype(np.float64)
        want = (raw / raw.sum(-1, keepdims=True)).reshape(grid.rows, grid.cols, -1)
        empty = patch_structure(img, grid).empty
        results = []
        for threads in (1, 2):
            m = FocusModel(card=base.card, onnx_path=base.onnx_path, threads=threads)
            r = assess_image(img, m)
            np.testing.assert_allclose(r.probabilities, want, atol=1e-5, err_msg=name)
            assert np.array_equal(r.patch_level, want.argmax(-1)), name
            assert np.array_equal(r.empty, empty)
            results.append(r)
        a, b = results
        assert a.verdict == b.verdict and a.predicted_level == b.predicted_level
        assert a.sf == b.sf and a.structured_fraction == b.structured_fraction
        np.testing.assert_allclose(a.expected_level, b.expected_level, atol=1e-6)
        assert a.to_record()["verdict"] == b.to_record()["verdict"]


@needs_model
def test_skipping_the_structure_test_changes_only_the_empty_mask() -> None:
    img = make_sample_stack().data[0, 10, 1]
    with_test = assess_image(img, MODEL)
    without = assess_image(img, MODEL, structure_test=False)
    assert without.empty is None and with_test.empty is not None
    np.testing.assert_allclose(without.probabilities, with_test.probabilities, atol=1e-6)
    assert without.sf == with_test.sf


def test_prepared_input_gives_the_same_probabilities(sharpness_model: Any) -> None:
    m = load_model(sharpness_model)
    p = np.random.default_rng(3).poisson(100, (300, 84, 84)).astype(np.uint16)
    x = m.prepare(p)
    assert x.shape == (300, 1, 84, 84) and x.dtype == np.float32
    assert np.array_equal(m.predict_proba(x, prepared=True, batch_size=128),
                          m.predict_proba(p, batch_size=128))
    with pytest.raises(Exception, match="prepared"):
        m.run(p, prepared=True)


def _reference_sf(image: np.ndarray) -> float:
    """SF as the blocked loop computed it before its buffers were reused (oracle)."""
    dt = np.float64 if image.dtype.kind in "iu" and image.dtype.itemsize > 2 else np.float32
    h, w = image.shape
    sr = sc = 0.0
    for y in range(0, h, 128):
        a = image[y : y + 129].astype(dt)
        d, e = a[1:] - a[:-1], a[:128, 1:] - a[:128, :-1]
        sr += float(np.einsum("ij,ij->", d, d))
        sc += float(np.einsum("ij,ij->", e, e))
    return float(np.sqrt(sr / ((h - 1) * w) + sc / (h * (w - 1))))


def test_blocked_sf_is_bit_for_bit_the_reference() -> None:
    from napari_focusqa.core.metrics import spatial_frequency

    rng = np.random.default_rng(4)
    for name, img in _real_planes():
        big = np.tile(img, (2, 2))[:, : img.shape[1] + 77]  # > 2 blocks, ragged last block
        if big.shape[0] <= 256:
            continue
        for x in (big, big.astype(np.float64) * 0.3 + rng.normal(0, 1, big.shape),
                  big.astype(np.int32) * 1000):
            assert float(spatial_frequency(x)) == _reference_sf(np.asarray(x)), name
    one = np.ones((257 + 128, 300), np.uint16)
    one[::2] = 3  # the last block holds one row
    assert float(spatial_frequency(one)) == _reference_sf(one)


def _reference_pair_sums(x: np.ndarray, b: int, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """The structure test's block sums as computed over whole arrays (oracle)."""
    hb, wb = x.shape[0] // b, x.shape[1] // b
    rows = x[: hb * b].reshape(hb, b, -1).sum(axis=1, dtype=dtype)[:, : wb * b]
    e, o = rows[:, 0::2], rows[:, 1::2]
    pair, d = e + o, (o - e) ** 2
    if b == 2:
        return pair, d
    return pair[:, 0::2] + pair[:, 1::2], d[:, 0::2] + d[:, 1::2]


def test_strip_wise_block_sums_are_bit_for_bit_the_reference() -> None:
    from napari_focusqa.core.structure import _pair_sums

    rng = np.random.default_rng(5)
    for name, img in _real_planes():
        big = np.tile(img, (3, 1))[:, : img.shape[1] - 3]  # several strips, ragged edges
        for x in (big, big.astype(np.float32) * 0.3 + rng.normal(0, 1, big.shape).astype(np.float32),
                  big.astype(np.float64).T):
            for b in (2, 4):
                for dtype in (np.float32, np.float64):
                    got = _pair_sums(np.asarray(x), b, dtype)
                    want = _reference_pair_sums(np.ascontiguousarray(x), b, dtype)
                    assert all(np.array_equal(g, w) for g, w in zip(got, want)), (name, b)


def test_map_chunks_covers_every_chunk_and_stops_at_the_first_error() -> None:
    import threading

    from napari_focusqa.core.parallel import map_chunks

    seen: list[tuple[int, int, str]] = []

    def fn(start: int, worker: int) -> int:
        seen.append((start, worker, threading.current_thread().name))
        return start * 2

    got = map_chunks(fn, list(range(0, 100, 10)), 2)
    assert got == {s: 2 * s for s in range(0, 100, 10)}
    assert {w for _, w, _ in seen} <= {0, 1}
    calls = []

    def boom(start: int, worker: int) -> int:
        calls.append(start)
        if start == 2:
            raise ValueError("chunk 2")
        return start

    with pytest.raises(ValueError, match="chunk 2"):
        map_chunks(boom, list(range(1000)), 2)
    assert len(calls) < 1000  # no new chunk after the failure
    assert map_chunks(fn, [5], 4) == {5: 10} and map_chunks(fn, [], 2) == {}


@needs_model
def test_two_one_thread_sessions_give_the_numbers_of_one_session() -> None:
    from napari_focusqa.core.errors import Cancelled

    base = load_model(MODEL)
    img = _real_planes()[1][1]
    p = make_grid(img.shape, 84).extract(img).reshape(-1, 84, 84)
    one = FocusModel(card=base.card, onnx_path=base.onnx_path, threads=1)
    two = FocusModel(card=base.card, onnx_path=base.onnx_path, threads=2)
    want = one.predict_proba(p)
    assert np.array_equal(two.predict_proba(p), want)  # raw patches, per-thread buffers
    assert np.array_equal(two.predict_proba(two.prepare(p), prepared=True), want)
    assert np.array_equal(two.predict_proba(p[:5]), want[:5])  # one chunk
    many = np.concatenate([p] * (200 // len(p) + 1))  # several chunks
    calls = iter(range(1000))
    with pytest.raises(Cancelled):
        two.predict_proba(many, cancel=lambda: next(calls) >= 3)
