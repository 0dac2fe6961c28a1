"""Bad-input matrix for the core, the reader and the CLI.

Every input gets either a documented result (asserted here) or a clear error: a
:class:`FocusQAError` subclass whose message names the parameter (core) or the file
(reader, CLI), and for the CLI exit code 2 with one line on stderr. Never a crash,
a hang or a silent wrong answer.

Bugs this matrix found in the core, reader and CLI were fixed there (their tests were
first committed as ``xfail(strict=True)``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_focusqa.cli import main
from napari_focusqa.core import metrics
from napari_focusqa.core.assess import assess_image
from napari_focusqa.core.errors import FocusQAError, ImageError, ModelCardError
from napari_focusqa.core.model import load_model, write_card
from napari_focusqa.core.patches import make_grid
from napari_focusqa.core.zstack import assess_stack
from napari_focusqa.io import read_image

REPO = Path(__file__).resolve().parents[1]

INT_DTYPES = ("int8", "uint8", "int16", "uint16", "int32", "int64", "uint64")
FLOAT_DTYPES = ("float16", "float32", "float64")


def _base(shape=(100, 120), seed=0) -> np.ndarray:
    """Integer-valued image in [0, 100]: exactly representable in every real dtype."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]]
    img = 50 + 30 * np.sin(x / 3.0) * np.cos(y / 5.0) + rng.normal(0, 8, shape)
    return np.clip(np.round(img), 0, 100).astype(np.float64)


BASE = _base()


# =========================================================================== core
@pytest.mark.parametrize("dtype", INT_DTYPES + FLOAT_DTYPES)
def test_every_real_dtype_gives_the_float64_result(dtype, sharpness_model) -> None:
    """Same pixel values in any real dtype -> the same SF and model verdict."""
    ref = assess_image(BASE, sharpness_model, metrics=tuple(metrics.METRICS))
    got = assess_image(BASE.astype(dtype), sharpness_model, metrics=tuple(metrics.METRICS))
    assert got.predicted_level == ref.predicted_level
    np.testing.assert_allclose(got.probabilities, ref.probabilities, atol=1e-6)
    for name in metrics.METRICS:
        assert got.metrics[name] == pytest.approx(ref.metrics[name], rel=1e-5, abs=1e-9), name


def test_bool_image_is_assessed_as_0_1(sharpness_model) -> None:
    mask = BASE > 50
    got = assess_image(mask, sharpness_model)
    ref = assess_image(mask.astype(np.float32), sharpness_model)
    assert got.predicted_level == ref.predicted_level and got.sf == pytest.approx(ref.sf)
    assert 0 < got.sf < 2  # steps of 0/1 only


@pytest.mark.parametrize(
    "view",
    [
        lambda a: np.asfortranarray(a),
        lambda a: a[::-1, ::-1],
        lambda a: np.repeat(a, 2, axis=1)[:, ::2],
        lambda a: np.lib.stride_tricks.as_strided(a, a.shape, a.strides),
        lambda a: a.T.copy().T,
    ],
    ids=["fortran", "negative-stride", "step-2", "as_strided", "transposed-view"],
)
def test_non_contiguous_views_equal_their_copies(view, sharpness_model) -> None:
    v = view(BASE)
    ref = assess_image(np.ascontiguousarray(v), sharpness_model)
    got = assess_image(v, sharpness_model)
    np.testing.assert_array_equal(got.probabilities, ref.probabilities)
    assert got.sf == ref.sf
    assert metrics.spatial_frequency(v) == metrics.spatial_frequency(np.ascontiguousarray(v))


def test_negative_stride_flip_keeps_sf(sharpness_model) -> None:
    flipped = assess_image(BASE[::-1, ::-1], sharpness_model)
    assert flipped.sf == pytest.approx(assess_image(BASE, None).sf, rel=1e-6)  # SF is flip-invariant


@pytest.mark.parametrize(
    ("name", "array", "match"),
    [
        ("0x0", np.zeros((0, 0)), r"image: .*too small"),
        ("0x100", np.zeros((0, 100)), r"image: .*too small"),
        ("1x1", np.ones((1, 1)), r"image: .*too small"),
        ("scalar", np.float64(3.0), r"image: expected a 2D"),
        ("1D", np.arange(100.0), r"image: expected a 2D"),
        ("3D", np.stack([BASE, BASE]), r"image: expected a 2D .*\(2, 100, 120\)"),
        ("5D", BASE[None, None, None], r"image: expected a 2D"),
        ("6D", BASE[None, None, None, None], r"image: expected a 2D"),
        ("RGB uint8", np.repeat(BASE[..., None], 3, -1).astype(np.uint8), r"image: looks like an RGB"),
        ("RGBA uint8", np.repeat(BASE[..., None], 4, -1).astype(np.uint8), r"image: looks like an RGB"),
        ("RGB uint16", np.repeat(BASE[..., None], 3, -1).astype(np.uint16), r"image: expected a 2D"),
        ("complex", BASE.astype(np.complex64), r"image: expected a real numeric array"),
        ("object", BASE.astype(object), r"image: expected a real numeric array"),
        ("str", np.full((100, 100), "a"), r"image: expected a real numeric array"),
        ("datetime", np.zeros((100, 100), "datetime64[s]"), r"image: expected a real numeric"),
        ("all-NaN", np.full((100, 120), np.nan), r"image: contains NaN"),
        ("one NaN", np.where(BASE == BASE.max(), np.nan, BASE), r"image: contains NaN"),
        ("+inf", np.full((100, 120), np.inf), r"image: contains infinite"),
        ("-inf", np.where(BASE > 60, -np.inf, BASE), r"image: contains infinite"),
        ("beyond float32", BASE * 1e300, r"image: contains infinite"),
    ],
)
def test_core_refuses_bad_images_naming_the_parameter(name, array, match, sharpness_model) -> None:
    for model in (None, sharpness_model):
        with pytest.raises(ImageError, match=match):
            assess_image(array, model)
    if np.ndim(array) == 2:
        with pytest.raises(ImageError):
            assess_stack(array[None], sharpness_model)


@pytest.mark.parametrize("shape", [(83, 200), (200, 83), (50, 50), (3, 3), (2, 500)])
def test_smaller_than_one_patch(shape, sharpness_model) -> None:
    img = _base(shape)
    with pytest.raises(ImageError, match=r"image: .*(smaller than one 84x84 patch|too small|3x3)"):
        assess_image(img, sharpness_model)
    with pytest.raises(ImageError, match=r"image: .*smaller than one 84x84 patch"):
        make_grid(shape)
    if min(shape) >= 3:  # documented: SF-only assessment needs no patch
        res = assess_image(img, None)
        assert res.sf == pytest.approx(float(metrics.spatial_frequency(img)))
        assert res.probability is None and res.predicted_level is None


def test_exactly_one_patch(sharpness_model) -> None:
    img = _base((84, 84))
    res = assess_image(img, sharpness_model)
    assert res.grid.shape == (1, 1)
    assert res.mean_certainty == pytest.approx(res.aggregate_certainty)


@pytest.mark.parametrize(
    "value", [0, 7, 65535], ids=["zeros", "constant", "saturated-uint16"]
)
def test_constant_and_saturated_images_documented(value, sharpness_model) -> None:
    """Flat images: SF (and every classic measure) is exactly 0; the model still returns
    a valid distribution (for the test model: the most defocused level)."""
    img = np.full((100, 120), value, np.uint16)
    res = assess_image(img, sharpness_model, metrics=tuple(metrics.METRICS))
    assert all(v == 0.0 for v in res.metrics.values()), res.metrics
    assert res.probability.sum() == pytest.approx(1.0)
    assert 0.0 <= res.mean_certainty <= 1.0
    stack = assess_stack(np.stack([img, img, img]), sharpness_model)
    assert stack.channels[0].best_z_index == 0  # ties -> first slice, documented
    assert np.all(stack.channels[0].sf == 0.0)


def test_partially_saturated_image_is_assessed(sharpness_model) -> None:
    img = (BASE * 600).astype(np.uint16)
    img[:40] = 65535
    res = assess_image(img, sharpness_model)
    assert np.isfinite(res.sf) and res.sf > 0
    np.testing.assert_allclose(res.probabilities.sum(-1), 1.0)


def test_extreme_integer_values_stay_finite() -> None:
    big = np.where(BASE > 50, np.iinfo(np.int64).max, 0)
    assert np.isfinite(assess_image(big, None).sf)


def test_plls_of_huge_values_is_finite() -> None:
    big = np.where(BASE > 50, np.iinfo(np.int64).max, 0)
    assert np.isfinite(assess_image(big, None, metrics=("plls",)).metrics["plls"])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_metrics_refuse_non_finite_input(bad) -> None:
    img = BASE.copy()
    img[5, 5] = bad
    with pytest.raises(ImageError, match="image"):
        metrics.compute("sf", img)


def test_metrics_matrix() -> None:
    for name in metrics.METRICS:
        with pytest.raises(ImageError, match="image: need at least 3x3"):
            metrics.compute(name, np.ones((2, 5)))
        with pytest.raises(ImageError, match="image: expected at least 2 dimensions"):
            metrics.compute(name, np.ones(5))
        with pytest.raises(ImageError, match="image: expected a real numeric"):
            metrics.compute(name, BASE.astype(complex))
        # vectorised: a (2, 3, H, W) stack gives (2, 3) values equal to the single calls
        stack = np.stack([np.stack([BASE * (i + j + 1) for j in range(3)]) for i in range(2)])
        v = metrics.compute(name, stack)
        assert v.shape == (2, 3)
        assert v[1, 2] == pytest.approx(float(metrics.compute(name, BASE * 4)), rel=1e-5)
    with pytest.raises(ImageError, match="metric: unknown metric 'nope'"):
        metrics.compute("nope", BASE)
    with pytest.raises(ImageError, match="metric: unknown"):
        assess_image(BASE, None, metrics=("nope",))


@pytest.mark.parametrize(
    ("shape", "patch", "match"),
    [
        ((100,), 84, r"image: expected at least 2 dimensions"),
        ((), 84, r"image: expected at least 2 dimensions"),
        ((100, 100), 0, r"patch_size: expected a positive integer"),
        ((100, 100), -3, r"patch_size: expected a positive integer"),
        ((100, 100), 84.0, r"patch_size: expected a positive integer"),
        ((100, 100), True, r"patch_size: expected a positive integer"),
        ((100, 100), "84", r"patch_size: expected a positive integer"),
        ((0, 100), 84, r"image: 0x100 pixels is smaller"),
    ],
)
def test_make_grid_bad_arguments(shape, patch, match) -> None:
    with pytest.raises(ImageError, match=match):
        make_grid(shape, patch)


def test_make_grid_5d_shape_uses_last_two_axes() -> None:
    g = make_grid((2, 3, 4, 200, 170), 84)
    assert g.image_shape == (200, 170) and g.shape == (3, 3)
    assert g.extract(np.zeros((2, 200, 170))).shape == (2, 3, 3, 84, 84)
    with pytest.raises(ImageError, match="image: shape"):
        g.extract(np.zeros((201, 170)))


def test_assess_stack_bad_arguments(sharpness_model) -> None:
    stack = np.stack([BASE, BASE])
    with pytest.raises(ImageError, match=r"stack: expected \(Z, \[C,\] Y, X\)"):
        assess_stack(BASE[None, None, None], sharpness_model)
    with pytest.raises(ImageError, match="z_step_um"):
        assess_stack(stack, None, z_step_um=-1.0)
    with pytest.raises(ImageError, match="z_step_um"):
        assess_stack(stack, None, z_step_um=float("nan"))
    with pytest.raises(ImageError, match="channel_names"):
        assess_stack(stack, None, channel_names=["a", "b"])
    with pytest.raises(ImageError, match="channels: index 3"):
        assess_stack(stack, None, channels=[3])


def test_assess_stack_zero_slices_refused_up_front() -> None:
    with pytest.raises(ImageError, match="stack: no slices"):
        assess_stack(np.zeros((0, 100, 120)), None)


# =========================================================================== models
def _model_copy(tmp_path: Path, card_path: Path, name: str) -> Path:
    from napari_focusqa.testing import build_sharpness_model

    return build_sharpness_model(tmp_path / name, f"m-{name}")


def _edit_card(card: Path, **changes) -> Path:
    c = json.loads(card.read_text())
    for k, v in changes.items():
        if v is _DELETE:
            del c[k]
        else:
            c[k] = v
    write_card(c, card)
    return card


_DELETE = object()


def _bad_models(tmp_path: Path, good: Path) -> dict[str, tuple[Path | str, str]]:
    out: dict[str, tuple[Path | str, str]] = {}
    out["wrong path"] = (tmp_path / "nowhere" / "m.json", r"model: no model card found")
    out["unknown id"] = ("no-such-model", r"model: unknown model id 'no-such-model'")
    out["folder"] = (tmp_path, r"model: unknown model id|no model card")
    c = _model_copy(tmp_path, good, "corrupt")
    c.with_suffix(".onnx").write_bytes(b"\x08garbage" * 50)
    out["corrupt onnx"] = (_edit_card(c), r"model: cannot load .*\.onnx")
    c = _model_copy(tmp_path, good, "sha")
    c.with_suffix(".onnx").write_bytes(c.with_suffix(".onnx").read_bytes() + b"\0")
    out["sha mismatch"] = (c, r"sha256 mismatch")
    out["patch mismatch"] = (
        _edit_card(_model_copy(tmp_path, good, "patch"), patch_size=64),
        r"patch_size 64 does not match ONNX input shape",
    )
    out["classes mismatch"] = (
        _edit_card(_model_copy(tmp_path, good, "ncls"), num_classes=5),
        r"num_classes 5 but ONNX outputs 11",
    )
    out["input name"] = (
        _edit_card(_model_copy(tmp_path, good, "inp"), inputs={"patches": "x"}),
        r"ONNX has no input 'x'",
    )
    out["output name"] = (
        _edit_card(_model_copy(tmp_path, good, "outp"), outputs={"probabilities": "p"}),
        r"ONNX has no output 'p'",
    )
    out["normalisation"] = (
        _edit_card(_model_copy(tmp_path, good, "norm"), input_normalisation={"method": "odd"}),
        r"input_normalisation.method must be one of",
    )
    out["missing field"] = (
        _edit_card(_model_copy(tmp_path, good, "field"), task=_DELETE),
        r"missing field 'task'",
    )
    out["bad task"] = (
        _edit_card(_model_copy(tmp_path, good, "task"), task="segment"),
        r"task must be one of",
    )
    c = _model_copy(tmp_path, good, "json")
    c.write_text("{not json")
    out["bad json"] = (c, r"cannot read JSON")
    c = _model_copy(tmp_path, good, "empty")
    c.write_text("")
    out["empty card"] = (c, r"cannot read JSON")
    c = _model_copy(tmp_path, good, "list")
    c.write_text("[1, 2]")
    out["json list"] = (c, r"expected a JSON object")
    c = _model_copy(tmp_path, good, "noonnx")
    c.with_suffix(".onnx").unlink()
    out["missing onnx"] = (c, r"ONNX file .* does not exist")
    return out


BAD_MODEL_NAMES = [
    "wrong path", "unknown id", "folder", "corrupt onnx", "sha mismatch", "patch mismatch",
    "classes mismatch", "input name", "output name", "normalisation", "missing field",
    "bad task", "bad json", "empty card", "json list", "missing onnx",
]


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory, sharpness_model):
    return _bad_models(tmp_path_factory.mktemp("bad_models"), sharpness_model)


@pytest.mark.parametrize("case", BAD_MODEL_NAMES)
def test_bad_models_give_model_card_errors(case, bad_models) -> None:
    model, match = bad_models[case]
    with pytest.raises(ModelCardError, match=match):
        load_model(model)
    with pytest.raises(ModelCardError, match=match):
        assess_image(BASE, model)
    with pytest.raises(ModelCardError, match=match):
        assess_stack(np.stack([BASE, BASE]), model)


@pytest.mark.parametrize("case", ["corrupt onnx", "sha mismatch", "patch mismatch", "unknown id"])
def test_cli_bad_model_exit_2_one_line(case, bad_models, tmp_path, capsys) -> None:
    img = tmp_path / "good.tif"
    tifffile.imwrite(img, BASE.astype(np.uint16))
    model, match = bad_models[case]
    assert main(["assess", str(img), "--model", str(model)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("focusqa assess: error: ")
    assert __import__("re").search(match, err)


@pytest.mark.parametrize("field_value", [("patch_size", "abc"), ("num_classes", None)])
def test_card_fields_with_wrong_types(field_value, tmp_path, sharpness_model) -> None:
    key, value = field_value
    card = _edit_card(_model_copy(tmp_path, sharpness_model, "types"), **{key: value})
    with pytest.raises(ModelCardError, match=key):
        load_model(card)


def test_model_by_onnx_path_uses_its_card(sharpness_model) -> None:
    fm = load_model(sharpness_model.with_suffix(".onnx"))
    assert fm.id == "test-sharpness" and fm is load_model(sharpness_model)


def test_model_patch_size_mismatch_at_assess(sharpness_model) -> None:
    with pytest.raises(ImageError, match="patch_size: model test-sharpness was trained on 84px"):
        assess_image(BASE, sharpness_model, patch_size=64)


# =========================================================================== reader
def _write_reader_cases(d: Path) -> dict[str, Path]:
    d.mkdir(parents=True, exist_ok=True)
    f: dict[str, Path] = {}

    def tif(name, arr, **kw):
        p = d / name
        tifffile.imwrite(p, arr, **kw)
        f[name] = p

    tif("good.tif", BASE.astype(np.uint16))
    whole = f["good.tif"].read_bytes()
    for name, data in {
        "empty.tif": b"",
        "truncated.tif": whole[: len(whole) // 2],
        "header-only.tif": whole[:8],
        "zeros.tif": b"\0" * 500,
        "bad-ifd.tif": b"II*\x00" + b"\xff" * 100,
        "text.tif": b"hello, I am not a TIFF\n" * 10,
        "fake.png": b"not a png",
    }.items():
        (d / name).write_bytes(data)
        f[name] = d / name
    tif("rgb8.tif", np.repeat(BASE[..., None], 3, -1).astype(np.uint8), photometric="rgb")
    tif("rgb16.tif", np.repeat(BASE[..., None], 3, -1).astype(np.uint16), photometric="rgb")
    tif("complex.tif", BASE.astype(np.complex64))
    tif("bool.tif", BASE > 50)
    for dt in INT_DTYPES[:5] + FLOAT_DTYPES:
        tif(f"{dt}.tif", BASE.astype(dt))
    tif("nan.tif", np.full((100, 120), np.nan, np.float32))
    tif("inf.tif", np.where(BASE > 60, np.inf, BASE).astype(np.float32))
    tif("1x1.tif", np.ones((1, 1), np.uint16))
    tif("small.tif", BASE[:50, :50].astype(np.uint16))
    tif("constant.tif", np.full((100, 120), 9, np.uint16))
    tif("5d.tif", np.broadcast_to(BASE.astype(np.uint16), (2, 2, 2, 100, 120)).copy(),
        imagej=True, metadata={"axes": "TZCYX"})
    tif("7d.tif", np.broadcast_to(BASE.astype(np.uint16), (2, 1, 2, 1, 2, 100, 120)).copy())
    Image.fromarray(BASE.astype(np.uint8)).save(d / "grey.png")
    f["grey.png"] = d / "grey.png"
    rgb = np.random.default_rng(0).integers(0, 255, (100, 120, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(d / "rgb.png")
    f["rgb.png"] = d / "rgb.png"
    (d / "folder.tif").mkdir(exist_ok=True)
    f["folder.tif"] = d / "folder.tif"
    f["missing.tif"] = d / "missing.tif"
    return f


#: file -> reader error pattern (None: read OK, see READ_OK for the shape)
READ_ERRORS = {
    "empty.tif": r"file is empty",
    "truncated.tif": r"not a readable TIFF",
    "header-only.tif": r"TIFF contains no image series|not a readable TIFF",
    "zeros.tif": r"not a readable TIFF",
    "bad-ifd.tif": r"TIFF contains no image series|not a readable TIFF",
    "text.tif": r"not a readable TIFF",
    "fake.png": r"not a readable image",
    "rgb8.tif": r"RGB\(A\) image",
    "rgb.png": r"RGB image",
    "complex.tif": r"unsupported pixel type complex64",
    "7d.tif": r"cannot interpret axes|unsupported axis",
    "folder.tif": r"is a folder",
    "missing.tif": r"file does not exist",
}
#: file -> canonical TZCYX shape (documented results)
READ_OK = {
    "good.tif": (1, 1, 1, 100, 120),
    "rgb16.tif": (1, 1, 3, 100, 120),  # 16-bit "RGB" = 3 channels (tifffile default), documented
    "bool.tif": (1, 1, 1, 100, 120),
    "nan.tif": (1, 1, 1, 100, 120),  # readable; refused by the core (see the CLI matrix)
    "1x1.tif": (1, 1, 1, 1, 1),
    "5d.tif": (2, 2, 2, 100, 120),
    "grey.png": (1, 1, 1, 100, 120),
    **{f"{dt}.tif": (1, 1, 1, 100, 120) for dt in INT_DTYPES[:5] + FLOAT_DTYPES},
}


@pytest.fixture(scope="module")
def reader_files(tmp_path_factory):
    return _write_reader_cases(tmp_path_factory.mktemp("reader"))


@pytest.mark.parametrize("name", sorted(READ_ERRORS))
def test_reader_refuses_with_the_file_name(name, reader_files) -> None:
    path = reader_files[name]
    with pytest.raises(ImageError, match=READ_ERRORS[name]) as info:
        read_image(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name", sorted(READ_OK))
def test_reader_documented_results(name, reader_files) -> None:
    img = read_image(reader_files[name])
    assert img.data.shape == READ_OK[name]
    if name.split(".")[0] in INT_DTYPES + FLOAT_DTYPES:
        assert img.data.dtype == np.dtype(name.split(".")[0])
        np.testing.assert_array_equal(img.data[0, 0, 0].astype(np.float64), BASE)


#: file -> (exit code, stderr pattern) of `focusqa assess FILE --model <test model>`
CLI_CASES = {
    **{k: (2, v) for k, v in READ_ERRORS.items()},
    "nan.tif": (2, r"contains NaN"),
    "inf.tif": (2, r"contains infinite"),
    "1x1.tif": (2, r"too small"),
    "small.tif": (2, r"smaller than one 84x84 patch"),
    "good.tif": (0, None),
    "constant.tif": (0, None),
    "5d.tif": (0, None),
    "bool.tif": (0, None),
    "float16.tif": (0, None),
    "int8.tif": (0, None),
}


@pytest.mark.parametrize("name", sorted(CLI_CASES))
def test_cli_assess_matrix(name, reader_files, sharpness_model, capsys) -> None:
    code, pattern = CLI_CASES[name]
    rc = main(["assess", str(reader_files[name]), "--model", str(sharpness_model),
               "--json", "-"])
    cap = capsys.readouterr()
    assert rc == code, cap.err
    if code == 2:
        err = cap.err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("focusqa assess: error: "), err
        assert __import__("re").search(pattern, err), err
        assert cap.out == ""
    else:
        recs = json.loads(cap.out)
        assert len(recs) == int(np.prod(read_image(reader_files[name]).data.shape[:3]))
        for r in recs:
            assert sum(r["probabilities"]) == pytest.approx(1.0, abs=1e-5)
            assert 0.0 <= r["mean_certainty"] <= 1.0


@pytest.mark.parametrize("name", ["nan.tif", "1x1.tif", "small.tif"])
def test_cli_errors_from_the_core_name_the_file(name, reader_files, sharpness_model, capsys) -> None:
    rc = main(["assess", str(reader_files[name]), "--model", str(sharpness_model)])
    assert rc == 2
    assert str(reader_files[name]) in capsys.readouterr().err


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "napari_focusqa", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_cli_subprocess_truncated_tiff_exit_2(reader_files) -> None:
    r = _run_cli("assess", str(reader_files["truncated.tif"]), "--model", "none")
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "truncated.tif" in lines[0] and "Traceback" not in r.stderr


def test_cli_subprocess_corrupt_header_one_line(reader_files) -> None:
    r = _run_cli("assess", str(reader_files["bad-ifd.tif"]), "--model", "none")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_zstack_cli_on_a_single_plane_is_refused(reader_files, capsys) -> None:
    assert main(["zstack", str(reader_files["good.tif"]), "--model", "none"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a z-stack" in err and len(err.splitlines()) == 1


def test_batch_turns_every_bad_file_into_an_error_row(reader_files, sharpness_model, tmp_path) -> None:
    """The batch front end never stops on a bad file: one row per input, errors named."""
    from napari_focusqa import batch

    files = [p for n, p in reader_files.items() if n not in ("folder.tif", "missing.tif")]
    s = batch.run_batch(files, tmp_path / "b.csv", model=sharpness_model, workers=0,
                        progress=False, log=None)
    rows = batch.read_results(tmp_path / "b.csv")
    names = {Path(r["file"]).name for r in rows}
    assert names == {p.name for p in files}
    failed = {Path(r["file"]).name for r in rows if r["error"]}
    expected_failed = {n for n, (c, _) in CLI_CASES.items() if c == 2} - {"folder.tif", "missing.tif"}
    assert failed == expected_failed
    assert s.files_failed == len(expected_failed) and s.exit_code == batch.EXIT_SOME_FAILED
    # a damaged file fails the same way next time: permanent, not retried by --resume
    assert {r["error_kind"] for r in rows if r["error"]} == {batch.PERMANENT}
    assert s.files_transient == 0
    assert isinstance(ImageError("x"), FocusQAError)


def test_focusqa_console_script_bad_file_exit_2(reader_files) -> None:
    exe = Path(sys.executable).with_name("focusqa")
    if not exe.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    r = subprocess.run([str(exe), "assess", str(reader_files["empty.tif"])], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == f"focusqa assess: error: {reader_files['empty.tif']}: file is empty"


def _bomb_tiff(path: Path, side: int = 1_000_000) -> Path:
    """A 10x10 TIFF whose header claims ``side`` x ``side`` pixels (corrupt / hostile)."""
    import struct

    tifffile.imwrite(path, np.zeros((10, 10), np.uint16))
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        offsets = [(tags[n].valueoffset, tags[n].dtype) for n in ("ImageWidth", "ImageLength")]
    for off, dtype in offsets:
        fmt = "<I" if int(dtype) == 4 else "<H"
        data[off : off + struct.calcsize(fmt)] = struct.pack(fmt, min(side, 65535) if fmt == "<H" else side)
    path.write_bytes(bytes(data))
    return path


def test_batch_survives_a_tiff_claiming_huge_dimensions(tmp_path) -> None:
    from napari_focusqa import batch

    bomb = _bomb_tiff(tmp_path / "bomb.tif")
    good = tmp_path / "good.tif"
    tifffile.imwrite(good, BASE.astype(np.uint16))
    s = batch.run_batch([bomb, good], tmp_path / "b.csv", workers=0, progress=False, log=None)
    rows = {Path(r["file"]).name: r for r in batch.read_results(tmp_path / "b.csv")}
    assert rows["good.tif"]["error"] is None and rows["good.tif"]["sf"] > 0
    assert rows["bomb.tif"]["error"] and s.files_failed == 1
    assert rows["bomb.tif"]["error_kind"] == batch.PERMANENT  # refused up front, not an OOM


def test_tiff_claiming_huge_dimensions_is_an_image_error(tmp_path, capsys) -> None:
    bomb = _bomb_tiff(tmp_path / "bomb.tif")
    with pytest.raises(ImageError, match="bomb.tif"):
        read_image(bomb)
    assert main(["assess", str(bomb), "--model", "none"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def _corrupt_compressed(tmp_path: Path, comp: str, kind: str) -> Path:
    """A compressed TIFF whose payload is cut in half (``cut``) or scrambled (``flip``)."""
    src = tmp_path / f"src_{comp}.tif"
    img = (np.random.default_rng(0).random((300, 300)) * 1000).astype(np.uint16)
    tifffile.imwrite(src, img, compression=comp)
    b = src.read_bytes()
    mid = len(b) // 2
    data = b[:mid] if kind == "cut" else b[:mid] + bytes(x ^ 0x5A for x in b[mid : mid + 200]) + b[mid + 200 :]
    out = tmp_path / f"{kind}_{comp}.tif"
    out.write_bytes(data)
    return out


COMPRESSED_BAD = [("zlib", "cut"), ("zlib", "flip"), ("lzw", "flip"), ("packbits", "cut"),
                  ("packbits", "flip"), ("lzma", "flip"), ("zstd", "cut")]


@pytest.mark.parametrize(("comp", "kind"), COMPRESSED_BAD)
def test_corrupt_compressed_tiff_is_an_image_error(comp, kind, tmp_path, capsys) -> None:
    path = _corrupt_compressed(tmp_path, comp, kind)
    with pytest.raises(ImageError, match=path.name):
        read_image(path)
    assert main(["assess", str(path), "--model", "none"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and path.name in err


def test_batch_rows_for_corrupt_compressed_tiffs(tmp_path) -> None:
    from napari_focusqa import batch

    files = [_corrupt_compressed(tmp_path, c, k) for c, k in COMPRESSED_BAD]
    s = batch.run_batch(files, tmp_path / "b.csv", workers=0, progress=False, log=None)
    rows = batch.read_results(tmp_path / "b.csv")
    assert len(rows) == len(files) and all(r["error"] for r in rows)
    assert s.files_failed == len(files) and s.exit_code == batch.EXIT_SOME_FAILED
