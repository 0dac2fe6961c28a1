"""Put a card's input normalisation inside the ONNX graph.

The bioimage.io spec (0.5) has no logarithm among its pre-processing operations, so the
``log-zscore`` normalisation of FocusQA's models (``log1p`` of the clipped intensities,
then a per-patch z-score with ``eps``; numerically flat patches become exactly 0) cannot
be written in ``bioimageio.yaml``. The exported weights therefore take raw intensities:
this module prepends the normalisation to the network as ONNX nodes, so every
bioimage.io consumer (bioimageio.core, deepImageJ, ilastik) gets FocusQA's numbers
without a FocusQA-specific step. The network's own nodes and weights are unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_focusqa.core.errors import ModelCardError

_NORMALISED = "focusqa_normalised_patches"


def _const(name: str, value: float) -> Any:
    from onnx import helper, numpy_helper

    return helper.make_node("Constant", [], [name],
                            value=numpy_helper.from_array(np.asarray(value, np.float32), name))


def normalisation_nodes(spec: dict[str, Any], raw: str, out: str) -> list[Any]:
    """ONNX nodes computing ``normalise_patches(raw, spec)`` over the last two axes."""
    from onnx import helper

    method = spec.get("method", "none")
    n = helper.make_node
    if method == "none":
        return [n("Identity", [raw], [out])]
    if method == "scale":
        return [_const("fq_gain", spec.get("scale", 1.0)), _const("fq_off", spec.get("offset", 0.0)),
                n("Mul", [raw, "fq_gain"], ["fq_scaled"]), n("Add", ["fq_scaled", "fq_off"], [out])]
    if method not in ("zscore", "log-zscore"):
        raise ModelCardError(f"input_normalisation.method: cannot export {method!r}")
    nodes = [_const("fq_zero", 0.0), _const("fq_one", 1.0),
             _const("fq_eps", float(spec.get("eps", 1e-6))), _const("fq_tiny", 1e-6)]
    src = raw
    if method == "log-zscore":
        nodes += [n("Max", [raw, "fq_zero"], ["fq_clipped"]),
                  n("Add", ["fq_clipped", "fq_one"], ["fq_plus1"]),
                  n("Log", ["fq_plus1"], ["fq_log"])]
        src = "fq_log"
    nodes += [
        # shift by the patch minimum first: a constant patch then centres to exact zeros
        # (onnxruntime's float32 ReduceMean of 7056 equal values is not exact)
        n("ReduceMin", [src], ["fq_min"], axes=[-2, -1], keepdims=1),
        n("Sub", [src, "fq_min"], ["fq_shifted"]),
        n("ReduceMean", ["fq_shifted"], ["fq_shift_mean"], axes=[-2, -1], keepdims=1),
        n("Sub", ["fq_shifted", "fq_shift_mean"], ["fq_centred"]),
        n("Add", ["fq_shift_mean", "fq_min"], ["fq_mean"]),
        n("Mul", ["fq_centred", "fq_centred"], ["fq_sq"]),
        n("ReduceMean", ["fq_sq"], ["fq_var"], axes=[-2, -1], keepdims=1),
        n("Sqrt", ["fq_var"], ["fq_std"]),
        n("Add", ["fq_std", "fq_eps"], ["fq_denom"]),
        n("Div", ["fq_centred", "fq_denom"], ["fq_z"]),
        # (numerically) constant patches carry no structure: exactly 0, as in the core
        n("Abs", ["fq_mean"], ["fq_absmean"]),
        n("Max", ["fq_absmean", "fq_one"], ["fq_level"]),
        n("Mul", ["fq_level", "fq_tiny"], ["fq_flat_limit"]),
        n("LessOrEqual", ["fq_std", "fq_flat_limit"], ["fq_flat"]),
        n("Where", ["fq_flat", "fq_zero", "fq_z"], [out]),
    ]
    return nodes


def with_normalisation(model: Any, spec: dict[str, Any], patch_input: str) -> Any:
    """A copy of ONNX ``model`` whose input ``patch_input`` takes raw intensities."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    if patch_input not in {i.name for i in g.input}:
        raise ModelCardError(f"ONNX model has no input {patch_input!r}")
    for node in g.node:
        for i, name in enumerate(node.input):
            if name == patch_input:
                node.input[i] = _NORMALISED
    for out in g.output:
        if out.name == patch_input:
            raise ModelCardError(f"ONNX model returns its input {patch_input!r} unchanged")
    nodes = normalisation_nodes(spec, patch_input, _NORMALISED)
    old = list(g.node)
    del g.node[:]
    g.node.extend(nodes + old)
    onnx.checker.check_model(m)
    return m
