"""Helpers for tests and examples: a tiny but *real* ONNX focus model.

:func:`build_sharpness_model` writes an ONNX graph (built with ``onnx.helper``) that
maps an 84×84 patch to 11 level probabilities from its normalised Laplacian energy:
sharper patches get lower levels. It is not a trained model; it lets the core, the CLI
and the front ends be tested end to end before (and independently of) the shipped
models. Requires the ``onnx`` package.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def build_sharpness_model(
    folder: str | Path,
    model_id: str = "test-sharpness",
    *,
    patch_size: int = 84,
    num_classes: int = 11,
    stain_input: bool = False,
) -> Path:
    """Write ``<id>.onnx`` and ``<id>.json`` into ``folder``; returns the card path."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from napari_focusqa.core.model import write_card

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lap = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32).reshape(1, 1, 3, 3)
    # level centres along log Laplacian energy: sharper (higher energy) -> lower level
    centres = np.linspace(-1.0, -7.0, num_classes).astype(np.float32).reshape(1, num_classes)
    inits = [
        numpy_helper.from_array(lap, "lap_w"),
        numpy_helper.from_array(centres, "centres"),
        numpy_helper.from_array(np.array([6.0], np.float32), "sharp"),
        numpy_helper.from_array(np.array([1e-6], np.float32), "eps"),
        numpy_helper.from_array(np.array([-1.0], np.float32), "neg1"),
    ]
    nodes = [
        helper.make_node("AveragePool", ["patches"], ["smooth"], kernel_shape=[3, 3]),
        helper.make_node("Conv", ["smooth", "lap_w"], ["lapc"]),
        helper.make_node("Mul", ["lapc", "lapc"], ["lap2"]),
        helper.make_node("ReduceMean", ["lap2"], ["energy"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Add", ["energy", "eps"], ["energy_e"]),
        helper.make_node("Log", ["energy_e"], ["loge"]),
        helper.make_node("Unsqueeze", ["loge", "one_axis"], ["loge2"]),
        helper.make_node("Sub", ["loge2", "centres"], ["d"]),
        helper.make_node("Mul", ["d", "d"], ["d2"]),
        helper.make_node("Mul", ["d2", "sharp"], ["d2s"]),
        helper.make_node("Mul", ["d2s", "neg1"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    inits.append(numpy_helper.from_array(np.array([1], np.int64), "one_axis"))
    inputs = [helper.make_tensor_value_info("patches", TensorProto.FLOAT, ["N", 1, patch_size, patch_size])]
    if stain_input:
        inputs.append(helper.make_tensor_value_info("stain", TensorProto.INT64, ["N"]))
    graph = helper.make_graph(
        nodes,
        model_id,
        inputs,
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", num_classes])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx_path = folder / f"{model_id}.onnx"
    onnx.save(model, onnx_path)
    card = {
        "format_version": 1,
        "id": model_id,
        "task": "levels-stain" if stain_input else "levels",
        "description": "untrained test model: Laplacian energy -> level (tests only)",
        "onnx": onnx_path.name,
        "sha256": "",
        "patch_size": patch_size,
        "num_classes": num_classes,
        "blur_diameter_px": [round(3 + 2.7 * i, 1) for i in range(num_classes)],
        "in_focus_max_level": 2,
        "input_normalisation": {"method": "zscore", "eps": 1e-6},
        "inputs": {"patches": "patches", "stain": "stain" if stain_input else None},
        "outputs": {"probabilities": "probabilities"},
        "stains": ["generic", "nucleus", "actin", "tubulin", "mitochondria", "membrane", "puncta"],
        "training_data": {"note": "not trained; analytic graph for tests"},
        "metrics": {},
    }
    card_path = folder / f"{model_id}.json"
    write_card(card, card_path)
    json.loads(card_path.read_text())
    return card_path


def blob_image(rng: np.random.Generator, shape: tuple[int, int] = (168, 200),
               sigma: float = 0.0, n: int = 50) -> np.ndarray:
    """Bright blobs ("cells") on a dim noisy background, optionally blurred by ``sigma``;
    uint16. For tests that need in- and out-of-focus looking images."""
    from scipy import ndimage

    img = np.zeros(shape, np.float32)
    img[rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)] = 4000.0
    img = ndimage.gaussian_filter(img, 2.0) * 20
    if sigma:
        img = ndimage.gaussian_filter(img, sigma)
    return np.clip(img + rng.normal(100, 3, shape), 0, 65535).astype(np.uint16)


def write_small_images(folder: str | Path, n: int, size: int = 96, seed: int = 0) -> list[Path]:
    """``n`` small uint16 TIFFs (blobs on noise, some blurred) named like an IXM plate.

    Files are ``P1_<well>_s<site>_w1.tif`` over a 384-well plate (site = i // 384 + 1),
    in order; for load tests.
    """
    import tifffile
    from scipy import ndimage

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    bases = []
    for sigma in (0.0, 2.0, 5.0):
        img = np.zeros((size, size), np.float32)
        img[rng.integers(0, size, size // 3), rng.integers(0, size, size // 3)] = 4000.0
        img = ndimage.gaussian_filter(img, 1.5) * 20
        bases.append(ndimage.gaussian_filter(img, sigma) if sigma else img)
    paths = []
    for i in range(n):
        w = i % 384
        p = folder / f"P1_{chr(65 + w // 24)}{w % 24 + 1:02d}_s{i // 384 + 1}_w1.tif"
        noise = rng.normal(100, 3, (size, size))
        tifffile.imwrite(p, np.clip(bases[i % 3] + noise, 0, 65535).astype(np.uint16))
        paths.append(p)
    return paths


def kill_busy_worker(client: object) -> int:
    """SIGKILL one dask worker process that is running a task; returns its pid (0: none busy).

    A real fault: the process dies mid-task (as on an out-of-memory kill); the nanny
    starts a new one and the scheduler deals with the lost tasks.
    """
    import os
    import signal

    processing = client.processing()  # type: ignore[attr-defined]
    busy = [addr for addr, keys in processing.items() if keys]
    if not busy:
        return 0
    for addr in busy:
        try:
            pids = client.run(os.getpid, workers=[addr])  # type: ignore[attr-defined]
            pid = int(pids[addr])
            os.kill(pid, signal.SIGKILL)
        except (OSError, KeyError, ValueError):
            # that worker is already going away (e.g. the last kill's nanny restart):
            # distributed's CommClosedError is an OSError; try the next one, or later
            continue
        return pid
    return 0
