"""Warm start: load the weights of a shipped ONNX model back into its torch network.

The ONNX export folds every BatchNorm into the preceding convolution (``W' = W g / s``,
``b' = beta - mu g / s``). To fine-tune, the fused convolution weights go back into the
convolutions and each BatchNorm is *calibrated* on a batch of training patches: with the
batch mean ``m`` and variance ``v`` of the bias-free convolution output, ``weight =
sqrt(v + eps)``, ``bias = m + b'``, ``running_mean = m``, ``running_var = v`` makes the
BatchNorm the identity plus the fused bias, exactly in eval mode and on that batch in train
mode. Named initialisers (``net.head.0.weight``, FiLM, embeddings) load by name; the stain
model's constant-folded ordinal base cut-points load from the ``(1, K-1)`` initialiser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


def _onnx_weights(path: Path) -> tuple[dict[str, np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
    import onnx
    from onnx import numpy_helper

    g = onnx.load(str(path)).graph
    init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    convs = [(init[n.input[1]], init[n.input[2]]) for n in g.node if n.op_type == "Conv"]
    return init, convs


def load_onnx_into(net: nn.Module, onnx_path: str | Path, calib_x: torch.Tensor,
                   calib_stain: torch.Tensor | None = None) -> nn.Module:
    """Copy the weights of ``onnx_path`` into ``net`` (a LeanLevels / StainLevels).

    Parameters
    ----------
    net : nn.Module
        Freshly built network of the same architecture as the exported one.
    onnx_path : path
        The shipped model.
    calib_x : Tensor
        ``(N, 1, 84, 84)`` normalised training patches for the BatchNorm calibration.
    calib_stain : Tensor, optional
        ``(N,)`` stain indices (stain model).

    Returns
    -------
    nn.Module
        ``net`` (modified in place), in eval mode.
    """
    init, convs = _onnx_weights(Path(onnx_path))
    sd = net.state_dict()
    mod: Any = net  # LeanLevels / StainLevels attributes (backbone, emb, film, cut_base)
    with torch.no_grad():
        for name, arr in init.items():
            key = name[4:] if name.startswith("net.") else name
            if key in sd and tuple(sd[key].shape) == arr.shape:
                sd[key].copy_(torch.from_numpy(arr.copy()))
        if hasattr(mod, "cut_base"):
            base = [a for n, a in init.items() if not n.startswith("net.")
                    and a.shape == (1, mod.cut_base.shape[0])]
            if len(base) != 1:
                raise ValueError(f"{onnx_path}: cannot identify the ordinal base cut-points")
            mod.cut_base.copy_(torch.from_numpy(base[0][0].copy()))
        blocks = mod.backbone.blocks
        if len(convs) != len(blocks):
            raise ValueError(f"{onnx_path}: {len(convs)} convolutions, network has {len(blocks)}")
        net.eval()
        film = None
        if calib_stain is not None:
            e = mod.emb(calib_stain)
            film = [(1.0 + g, b) for g, b in (f(e).chunk(2, dim=1) for f in mod.film)]
        h = calib_x.float()
        for i, (blk, (w, b)) in enumerate(zip(blocks, convs)):
            conv, bn = blk[0], blk[1]
            conv.weight.copy_(torch.from_numpy(w.copy()))
            y = conv(h)
            m = y.mean(dim=(0, 2, 3))
            v = y.var(dim=(0, 2, 3), unbiased=False)
            bn.running_mean.copy_(m)
            bn.running_var.copy_(v)
            bn.weight.copy_(torch.sqrt(v + bn.eps))
            bn.bias.copy_(m + torch.from_numpy(b.copy()))
            h = blk(h)
            if film is not None:
                g, be = film[i]
                h = h * g[:, :, None, None] + be[:, :, None, None]
    return net
