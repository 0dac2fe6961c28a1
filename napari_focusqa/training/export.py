"""ONNX export (opset 17, dynamic batch) and model-card writing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from napari_focusqa.core.model import write_card

OPSET = 17


class _LevelsGraph(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(patches), dim=1)


class _StainGraph(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, patches: torch.Tensor, stain: torch.Tensor) -> torch.Tensor:
        p = self.net(patches, stain)
        return p / p.sum(dim=1, keepdim=True)


class _DistanceGraph(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d, c = self.net(patches)
        return d, torch.sigmoid(c)


def graph_for(task: str, net: nn.Module) -> nn.Module:
    """The exported module (softmax / normalisation / sigmoid inside) for ``task``."""
    g = {"levels": _LevelsGraph, "levels-stain": _StainGraph, "distance": _DistanceGraph}[task](net)
    return g.eval()


def export_onnx(task: str, net: nn.Module, path: str | Path, patch: int = 84) -> Path:
    """Export ``net`` for ``task`` to ``path`` with inputs/outputs named as in the card spec."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    g = graph_for(task, net.float().eval())
    x = torch.zeros(2, 1, patch, patch)
    if task == "levels-stain":
        args: tuple[Any, ...] = (x, torch.zeros(2, dtype=torch.int64))
        inputs = ["patches", "stain"]
        outputs = ["probabilities"]
        dyn = {"patches": {0: "N"}, "stain": {0: "N"}, "probabilities": {0: "N"}}
    elif task == "distance":
        args = (x,)
        inputs = ["patches"]
        outputs = ["distance", "confidence"]
        dyn = {"patches": {0: "N"}, "distance": {0: "N"}, "confidence": {0: "N"}}
    else:
        args = (x,)
        inputs = ["patches"]
        outputs = ["probabilities"]
        dyn = {"patches": {0: "N"}, "probabilities": {0: "N"}}
    with torch.no_grad():
        torch.onnx.export(g, args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=dyn, opset_version=OPSET, dynamo=False)
    import onnx

    onnx.checker.check_model(onnx.load(str(path)))
    return path


def torch_outputs(task: str, net: nn.Module, x: np.ndarray, stain: np.ndarray | None = None
                  ) -> dict[str, np.ndarray]:
    """Reference outputs of the exported graph computed in torch (float32)."""
    g = graph_for(task, net.float().eval())
    with torch.no_grad():
        t = torch.from_numpy(np.asarray(x, np.float32))
        if task == "levels-stain":
            s = torch.from_numpy(np.asarray(stain, np.int64))
            return {"probabilities": g(t, s).numpy()}
        if task == "distance":
            d, c = g(t)
            return {"distance": d.numpy(), "confidence": c.numpy()}
        return {"probabilities": g(t).numpy()}


def onnx_outputs(path: str | Path, x: np.ndarray, stain: np.ndarray | None = None,
                 threads: int = 1) -> dict[str, np.ndarray]:
    """Run an exported model in onnxruntime on already-normalised ``(N, 1, P, P)`` input."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = {"patches": np.asarray(x, np.float32)}
    if stain is not None:
        feed["stain"] = np.asarray(stain, np.int64)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feed)))


def save_card(card: dict[str, Any], models_dir: str | Path) -> Path:
    """Write ``<models_dir>/<id>.json`` through the core's ``write_card`` (fills sha256)."""
    path = Path(models_dir) / f"{card['id']}.json"
    card = dict(card)
    card.setdefault("sha256", "")
    write_card(card, path)
    return path
