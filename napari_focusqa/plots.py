"""Static figures shared by the CLI, the demo and the docs (matplotlib, Agg backend).

- :func:`render_overlay` draws an image with the per-patch borders (hue = level,
  lightness = certainty, grey = no structure; :mod:`napari_focusqa.core.colors`) and a
  legend.
- :func:`plot_focus_curves` draws SF vs z (normalised) per stain/channel with the
  best-focus marker, and the model's expected level vs z when available.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from napari_focusqa.core.assess import FocusResult
from napari_focusqa.core.colors import EMPTY_RGB, level_colors, patch_colors
from napari_focusqa.core.zstack import StackResult


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def display_range(image: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(image, [0.5, 99.8])
    return float(lo), float(max(hi, lo + 1e-6))


def render_overlay(
    image: np.ndarray,
    result: FocusResult,
    out: str | os.PathLike[str],
    *,
    title: str | None = None,
    dpi: int = 110,
) -> Path:
    """Save ``image`` with its patch borders and a level/certainty legend as PNG."""
    plt = _plt()
    from matplotlib.patches import Rectangle

    img = np.asarray(image, dtype=np.float32)
    h, w = img.shape
    fig = plt.figure(figsize=(7.5, 7.5 * h / w * 0.82 + 1.2))
    ax = fig.add_axes((0.02, 0.16, 0.96, 0.76))
    lo, hi = display_range(img)
    ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
    k = result.num_classes or 11
    if result.grid is not None and result.patch_level is not None:
        assert result.patch_certainty is not None
        cols = patch_colors(result.patch_level, result.patch_certainty, result.empty, k)
        boxes = result.grid.boxes()
        for r in range(result.grid.rows):
            for c in range(result.grid.cols):
                y0, x0, y1, x1 = boxes[r, c]
                ax.add_patch(
                    Rectangle(
                        (x0 - 0.5 + 1, y0 - 0.5 + 1),
                        x1 - x0 - 2,
                        y1 - y0 - 2,
                        fill=False,
                        edgecolor=cols[r, c],
                        linewidth=1.6,
                    )
                )
    ax.set_axis_off()
    if title is None:
        title = _summary_title(result)
    ax.set_title(title, fontsize=9)
    # legend: levels along x, certainty along y
    lax = fig.add_axes((0.2, 0.03, 0.6, 0.08))
    lv, ce = np.meshgrid(np.arange(k), np.linspace(0, 1, 5))
    lax.imshow(level_colors(lv, ce, k), aspect="auto", origin="lower",
               extent=(-0.5, k - 0.5, 0, 1))
    lax.set_xticks(range(k))
    lax.set_xlabel("defocus level (0 = in focus)", fontsize=8)
    lax.set_yticks([0, 1])
    lax.set_ylabel("certainty", fontsize=7)
    lax.tick_params(labelsize=7)
    lax.text(k - 0.5 + 0.3, 0.5, "no structure", color=EMPTY_RGB, fontsize=7,
             va="center", ha="left", backgroundcolor="black", clip_on=False)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def _summary_title(result: FocusResult) -> str:
    """Two lines: which plane, then the verdict and the numbers behind it."""
    src = result.source
    head = [str(Path(src["file"]).name) if src.get("file") else "image"]
    if src.get("channel") is not None:
        head.append(f"ch {src['channel']}")
    if src.get("z_index") is not None:
        head.append(f"z {src['z_index']}")
    parts = []
    if result.verdict is not None:
        parts.append(result.verdict.replace("_", " "))
    if result.predicted_level is not None:
        parts.append(
            f"level {result.predicted_level} (exp {result.expected_level:.2f}), "
            f"certainty {result.mean_certainty:.2f}/{result.aggregate_certainty:.2f}"
        )
    if result.structured_fraction is not None:
        parts.append(f"structure {100 * result.structured_fraction:.0f} %")
    if result.sf is not None:
        parts.append(f"SF {result.sf:.1f}")
    return " · ".join(head) + ("\n" + " · ".join(parts) if parts else "")


def plot_focus_curves(
    stack: StackResult,
    out: str | os.PathLike[str],
    *,
    normalise: bool = True,
    title: str | None = None,
) -> Path:
    """SF (and model expected level) vs z per channel, best focus marked; PNG or SVG."""
    plt = _plt()
    have_model = any(c.expected_level is not None for c in stack.channels)
    fig, axes = plt.subplots(1, 2 if have_model else 1, figsize=(10 if have_model else 6, 4))
    axes = np.atleast_1d(axes)
    for i, c in enumerate(stack.channels):
        z = np.asarray(c.z_um if c.z_um is not None else range(c.n_slices), dtype=float)
        sf = c.sf
        y = (sf - sf.min()) / (np.ptp(sf) or 1.0) if normalise else sf
        label = f"{c.name or f'ch {c.channel}'} ({c.stain})"
        (line,) = axes[0].plot(z, y, "o-", ms=3, label=label, color=f"C{i}")
        b = c.best_z_index
        axes[0].axvline(z[b], color=line.get_color(), ls="--", lw=0.8)
        axes[0].plot([z[b]], [y[b]], "*", ms=12, color=line.get_color())
        lv = c.expected_level
        if have_model and lv is not None:
            axes[1].plot(z, lv, "o-", ms=3, label=label, color=line.get_color())
    xl = "z (µm)" if stack.z_step_um else "z index"
    axes[0].set_xlabel(xl)
    axes[0].set_ylabel("SF (normalised)" if normalise else "SF")
    axes[0].set_title("Spatial frequency vs z per stain (★ best focus)")
    axes[0].legend(fontsize=8)
    if have_model:
        axes[1].set_xlabel(xl)
        axes[1].set_ylabel("model expected defocus level")
        axes[1].set_title(f"Model {stack.model_id}")
        axes[1].invert_yaxis()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def per_stain_boxplot(
    values: dict[str, Sequence[float]], out: str | os.PathLike[str], ylabel: str = "SF"
) -> Path:
    """Box plot of a metric per stain (FluoCLIP Fig. 2 b–d style)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    names = list(values)
    ax.boxplot([list(values[n]) for n in names])
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
