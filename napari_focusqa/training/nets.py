"""Networks: the lean level classifier, the Yang et al. baseline, the stain-conditioned
ordinal model and the spatio-spectral distance regressor; plus losses and a MAC counter."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _block(cin: int, cout: int, k: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class LeanBackbone(nn.Module):
    """Four strided conv blocks (84 -> 42 -> 21 -> 11 -> 6) and mean+max pooling.

    Parameters
    ----------
    widths : tuple of int
        Channels of the four blocks.
    """

    def __init__(self, widths: tuple[int, ...] = (16, 24, 48, 64)) -> None:
        super().__init__()
        w = widths
        self.blocks = nn.ModuleList(
            [_block(1, w[0], 5, 2), _block(w[0], w[1], 3, 2), _block(w[1], w[2], 3, 2),
             _block(w[2], w[3], 3, 2)]
        )
        self.out_dim = 2 * w[3]
        self.widths = tuple(w)

    def forward(self, x: torch.Tensor, film: list[tuple[torch.Tensor, torch.Tensor]] | None = None
                ) -> torch.Tensor:
        for i, b in enumerate(self.blocks):
            x = b(x)
            if film is not None:
                g, be = film[i]
                x = x * g[:, :, None, None] + be[:, :, None, None]
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)


class LeanLevels(nn.Module):
    """Lean 11-level classifier (logits)."""

    def __init__(self, num_classes: int = 11, widths: tuple[int, ...] = (16, 24, 48, 64),
                 hidden: int = 64) -> None:
        super().__init__()
        self.backbone = LeanBackbone(widths)
        self.head = nn.Sequential(nn.Linear(self.backbone.out_dim, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


class YangNet(nn.Module):
    """Yang et al. 2018: conv32 5x5, maxpool, conv64 5x5, maxpool, fc1024, dropout .5, fc11."""

    def __init__(self, num_classes: int = 11, patch: int = 84) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        q = patch // 4
        self.fc1 = nn.Linear(64 * q * q, 1024)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.drop(F.relu(self.fc1(x.flatten(1))))
        return self.fc2(x)


def ordinal_probs(score: torch.Tensor, scale: torch.Tensor, cuts: torch.Tensor) -> torch.Tensor:
    """Cumulative-link probabilities ``P(y <= k) = sigmoid((cut_k - score) / scale)``.

    Parameters
    ----------
    score : Tensor
        ``(N,)`` latent defocus.
    scale : Tensor
        ``(N,)`` positive spread (large = uncertain, e.g. background).
    cuts : Tensor
        ``(N, K-1)`` increasing cut-points.

    Returns
    -------
    Tensor
        ``(N, K)`` probabilities summing to 1.
    """
    cdf = torch.sigmoid((cuts - score[:, None]) / scale[:, None])
    zeros = torch.zeros_like(cdf[:, :1])
    ones = torch.ones_like(cdf[:, :1])
    full = torch.cat([zeros, cdf, ones], dim=1)
    return (full[:, 1:] - full[:, :-1]).clamp_min(1e-7)


class StainLevels(nn.Module):
    """Stain-conditioned ordinal level model.

    A learned stain embedding produces FiLM scale/shift for every backbone block and
    stain-specific offsets of the ordinal cut-points (``cuts = base + delta[stain]``, made
    increasing by a cumulative softplus). Output: probabilities ``(N, K)``.
    """

    def __init__(self, num_classes: int = 11, num_stains: int = 7,
                 widths: tuple[int, ...] = (16, 24, 48, 64), emb: int = 16, hidden: int = 64) -> None:
        super().__init__()
        self.backbone = LeanBackbone(widths)
        self.emb = nn.Embedding(num_stains, emb)
        self.film = nn.ModuleList([nn.Linear(emb, 2 * c) for c in widths])
        for f in self.film:
            assert isinstance(f, nn.Linear)
            nn.init.zeros_(f.weight)
            nn.init.zeros_(f.bias)
        self.head = nn.Sequential(nn.Linear(self.backbone.out_dim + emb, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, 2))
        k = num_classes
        init = torch.full((k - 1,), float(np.log(np.expm1(1.0))))  # softplus^-1(1): unit steps
        init[0] = -(k - 2) / 2.0
        self.cut_base = nn.Parameter(init)
        self.cut_delta = nn.Embedding(num_stains, k - 1)
        nn.init.zeros_(self.cut_delta.weight)
        self.num_classes = k

    def cuts(self, stain: torch.Tensor) -> torch.Tensor:
        raw = self.cut_base[None] + self.cut_delta(stain)
        first = raw[:, :1]
        steps = F.softplus(raw[:, 1:]) + 1e-3
        return torch.cat([first, first + torch.cumsum(steps, dim=1)], dim=1)

    def forward(self, x: torch.Tensor, stain: torch.Tensor) -> torch.Tensor:
        e = self.emb(stain)
        film = []
        for f in self.film:
            gb = f(e)
            g, b = gb.chunk(2, dim=1)
            film.append((1.0 + g, b))
        h = self.backbone(x, film)
        out = self.head(torch.cat([h, e], dim=1))
        score = out[:, 0]
        scale = F.softplus(out[:, 1]) + 0.05
        return ordinal_probs(score, scale, self.cuts(stain))


class SpectralFeatures(nn.Module):
    """Log radial power spectrum of a Hann-windowed patch, as fixed matrix products.

    The DFT is written as real matrix multiplications so that it exports to any ONNX
    opset and runs in onnxruntime without the DFT operator.
    """

    def __init__(self, patch: int = 84, bins: int = 24) -> None:
        super().__init__()
        n = patch
        j = np.arange(n)
        cols = np.arange(n // 2 + 1)
        win = np.hanning(n)
        w2 = np.outer(win, win)
        ang = 2 * np.pi * np.outer(j, j) / n
        angc = 2 * np.pi * np.outer(j, cols) / n
        self.register_buffer("win", torch.tensor(w2, dtype=torch.float32))
        self.register_buffer("c_rows", torch.tensor(np.cos(ang), dtype=torch.float32))
        self.register_buffer("s_rows", torch.tensor(np.sin(ang), dtype=torch.float32))
        self.register_buffer("c_cols", torch.tensor(np.cos(angc), dtype=torch.float32))
        self.register_buffer("s_cols", torch.tensor(np.sin(angc), dtype=torch.float32))
        fy = np.fft.fftfreq(n)[:, None]
        fx = cols[None, :] / n
        fr = np.sqrt(fy**2 + fx**2)
        edges = np.linspace(0.0, 0.5, bins + 1)
        idx = np.digitize(fr, edges) - 1
        m = np.zeros((n * len(cols), bins), np.float32)
        for b in range(bins):
            sel = (idx == b).ravel()
            m[sel, b] = 1.0 / max(sel.sum(), 1)
        self.register_buffer("binning", torch.tensor(m))
        self.bins = bins

    win: torch.Tensor
    c_rows: torch.Tensor
    s_rows: torch.Tensor
    c_cols: torch.Tensor
    s_cols: torch.Tensor
    binning: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, 0] * self.win
        xc = x @ self.c_cols
        xs = x @ self.s_cols
        re = self.c_rows @ xc - self.s_rows @ xs
        im = self.s_rows @ xc + self.c_rows @ xs
        power = (re * re + im * im).flatten(1)
        return torch.log(power @ self.binning + 1e-3)


class DistanceNet(nn.Module):
    """Signed single-shot defocus (DeepAf idea): spatial CNN + spectral branch.

    Outputs ``(distance, confidence_logit)``; distance in depths of field.
    """

    def __init__(self, widths: tuple[int, ...] = (16, 24, 48, 64), bins: int = 24,
                 hidden: int = 96) -> None:
        super().__init__()
        self.backbone = LeanBackbone(widths)
        self.spectral = SpectralFeatures(84, bins)
        self.spec_mlp = nn.Sequential(nn.Linear(bins, 64), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Linear(self.backbone.out_dim + 64, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.spec_mlp(self.spectral(x))
        out = self.head(torch.cat([self.backbone(x), s], dim=1))
        return out[:, 0], out[:, 1]


def rps_loss(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Ranked probability score: mean over samples of ``sum_k (CDF_pred_k - CDF_true_k)^2``.

    Parameters
    ----------
    probs : Tensor
        ``(N, K)`` predicted probabilities.
    target : Tensor
        ``(N,)`` int64 true class; ``-1`` means "no level defined" (background / pure
        noise): the target is then the uniform distribution (CDF ``(k+1)/K``), whose RPS
        is minimised by predicting the uniform distribution (maximum entropy, certainty 0).

    Returns
    -------
    Tensor
        Scalar loss; 0 for a perfect one-hot prediction, larger for errors further away.
    """
    k = probs.shape[1]
    cdf = torch.cumsum(probs, dim=1)[:, :-1]
    ar = torch.arange(k - 1, device=probs.device)[None]
    true_cdf = (ar >= target[:, None]).to(probs.dtype)
    uniform = ((ar + 1).to(probs.dtype) / k).expand_as(true_cdf)
    true_cdf = torch.where((target < 0)[:, None], uniform, true_cdf)
    return ((cdf - true_cdf) ** 2).sum(dim=1).mean()


def count_macs(model: nn.Module, example: tuple[torch.Tensor, ...]) -> int:
    """Multiply-accumulates per sample of Conv2d, Linear and matmul-style buffers (approx.)."""
    macs = [0]

    def conv_hook(m: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        assert isinstance(m, nn.Conv2d)
        kh, kw = m.kernel_size
        macs[0] += int(out[0].numel() * (m.in_channels // m.groups) * kh * kw)

    def lin_hook(m: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        assert isinstance(m, nn.Linear)
        macs[0] += int(m.in_features * m.out_features)

    def spec_hook(m: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        assert isinstance(m, SpectralFeatures)
        n = int(m.c_rows.shape[0])
        c = int(m.c_cols.shape[1])
        macs[0] += 2 * n * n * c + 4 * n * n * c + n * c * int(m.bins)

    hooks = []
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            hooks.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, nn.Linear):
            hooks.append(mod.register_forward_hook(lin_hook))
        elif isinstance(mod, SpectralFeatures):
            hooks.append(mod.register_forward_hook(spec_hook))
    was = model.training
    model.eval()
    with torch.no_grad():
        model(*[e[:1] for e in example])
    model.train(was)
    for h in hooks:
        h.remove()
    return macs[0]


def count_params(model: nn.Module) -> int:
    """Number of trainable and fixed parameters (buffers excluded)."""
    return int(sum(p.numel() for p in model.parameters()))
