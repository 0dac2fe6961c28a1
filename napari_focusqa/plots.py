"""Figures shared by the CLI, the demo, the docs and the napari dock widgets.

Every drawing is a ``draw_*(ax, ...)`` function that takes a matplotlib ``Axes`` and
returns what it drew, so the same code makes the CLI's PNG/SVG files and the plots
embedded in the napari docks:

- :func:`draw_overlay` / :func:`draw_legend`: an image with its per-patch borders
  (hue = level, lightness = certainty, grey = no structure;
  :mod:`napari_focusqa.core.colors`) and the legend;
- :func:`draw_sf_curves` / :func:`draw_level_curves`: SF and model expected level vs z
  per channel with the best-focus marker; :func:`draw_stain_boxplot`: SF per stain;
- :func:`draw_level_histogram`, :func:`draw_plate`: batch QC histogram and plate map;
- :func:`draw_autofocus`: score vs z of an autofocus run.

The ``render_overlay``/``plot_focus_curves``/``per_stain_boxplot`` file writers wrap them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_focusqa.core.assess import FocusResult
from napari_focusqa.core.colors import EMPTY_RGB, level_colors, patch_colors
from napari_focusqa.core.zstack import ChannelCurve, StackResult


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def display_range(image: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(image, [0.5, 99.8])
    return float(lo), float(max(hi, lo + 1e-6))


def normalise(values: Any) -> np.ndarray:
    """Scale a curve to [0, 1] (min -> 0, max -> 1); a flat curve becomes 0."""
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return np.zeros_like(v)
    lo, span = float(finite.min()), float(np.ptp(finite))
    return (v - lo) / span if span > 0 else np.zeros_like(v)


@dataclass
class CurveSeries:
    """One channel's focus curve as plotted (from a ChannelCurve or a stored result)."""

    label: str
    x: np.ndarray
    sf: np.ndarray
    expected_level: np.ndarray | None
    best_sf: int
    best_model: int | None

    @classmethod
    def from_curve(cls, c: ChannelCurve) -> CurveSeries:
        x = np.asarray(c.z_um if c.z_um is not None else range(c.n_slices), dtype=float)
        return cls(f"{c.name or f'ch {c.channel}'} ({c.stain})", x, c.sf, c.expected_level,
                   c.best_z_index, c.best_z_index_model)


# ------------------------------------------------------------------ patch overlay
def draw_overlay(ax: Any, image: np.ndarray, result: FocusResult) -> int:
    """Image in grey with one coloured border per patch; returns the number of borders."""
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    img = np.asarray(image, dtype=np.float32)
    lo, hi = display_range(img)
    ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
    ax.set_axis_off()
    if result.grid is None or result.patch_level is None or result.patch_certainty is None:
        return 0
    k = result.num_classes or 11
    cols = patch_colors(result.patch_level, result.patch_certainty, result.empty,
                        k).reshape(-1, 4)
    boxes = result.grid.boxes().reshape(-1, 4)
    rects = [Rectangle((x0 - 0.5 + 1, y0 - 0.5 + 1), x1 - x0 - 2, y1 - y0 - 2)
             for y0, x0, y1, x1 in boxes]
    ax.add_collection(PatchCollection(rects, facecolor="none", edgecolor=cols, linewidth=1.6))
    return len(rects)


def draw_legend(ax: Any, num_classes: int = 11) -> None:
    """Level (x) × certainty (y) colour grid of the patch borders."""
    k = int(num_classes)
    lv, ce = np.meshgrid(np.arange(k), np.linspace(0, 1, 5))
    ax.imshow(level_colors(lv, ce, k), aspect="auto", origin="lower",
              extent=(-0.5, k - 0.5, 0, 1))
    ax.set_xticks(range(k))
    ax.set_xlabel("defocus level (0 = in focus)", fontsize=8)
    ax.set_yticks([0, 1])
    ax.set_ylabel("certainty", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.text(k - 0.5 + 0.3, 0.5, "no structure", color=EMPTY_RGB, fontsize=7,
            va="center", ha="left", backgroundcolor="black", clip_on=False)


# ------------------------------------------------------------------ focus curves
def draw_sf_curves(ax: Any, series: Sequence[CurveSeries], *, normalised: bool = True,
                   xlabel: str = "z (µm)") -> list[Any]:
    """SF vs z per channel with a ★ on the best plane; returns one Line2D per channel."""
    lines = []
    for i, s in enumerate(series):
        y = normalise(s.sf) if normalised else np.asarray(s.sf, dtype=float)
        color = f"C{i % 10}"
        (ln,) = ax.plot(s.x, y, "o-", ms=3, lw=1.2, color=color, label=s.label)
        b = s.best_sf
        ax.plot([s.x[b]], [y[b]], "*", ms=13, color=color, mec="k", mew=0.5)
        lines.append(ln)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("SF (normalised)" if normalised else "SF")
    ax.set_title("Spatial frequency vs z (★ best focus)", fontsize=10)
    if series:
        ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    return lines


def draw_level_curves(ax: Any, series: Sequence[CurveSeries], *, model: str = "",
                      xlabel: str = "z (µm)") -> dict[int, Any]:
    """Model expected level vs z (axis inverted, ★ = model's best); {index: Line2D}."""
    lines = {}
    for i, s in enumerate(series):
        if s.expected_level is None:
            continue
        color = f"C{i % 10}"
        (ln,) = ax.plot(s.x, s.expected_level, "o-", ms=3, lw=1.2, color=color, label=s.label)
        if s.best_model is not None:
            b = s.best_model
            ax.plot([s.x[b]], [s.expected_level[b]], "*", ms=13, color=color, mec="k", mew=0.5)
        lines[i] = ln
    ax.set_xlabel(xlabel)
    ax.set_ylabel("expected level")
    ax.set_title(f"Model {model}: expected defocus level".replace("Model :", "Model:"),
                 fontsize=10)
    if not ax.yaxis_inverted():
        ax.invert_yaxis()
    ax.grid(alpha=0.3)
    return lines


def draw_stain_boxplot(ax: Any, groups: Mapping[str, Sequence[float]],
                       ylabel: str = "SF") -> list[str]:
    """Box plot of a metric per stain (FluoCLIP Fig. 2 b–d style); returns the stains."""
    names = sorted(groups)
    if names:
        ax.boxplot([list(groups[n]) for n in names])
        ax.set_xticks(range(1, len(names) + 1), [f"{n}\n(n={len(groups[n])})" for n in names])
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    return names


# ------------------------------------------------------------------ batch QC
def draw_level_histogram(ax: Any, levels: Sequence[int], sf: Sequence[float] = (),
                         num_classes: int = 11) -> None:
    """Planes per predicted level in the level colours (an SF histogram without levels)."""
    if len(levels):
        k = max(num_classes, int(max(levels)) + 1)
        lv = np.arange(k)
        heights = np.bincount(np.asarray(levels, dtype=int), minlength=k)
        ax.bar(lv, heights, color=level_colors(lv, np.ones(k), num_classes=k))
        ax.set_xlabel("predicted focus level (0 = in focus)")
        ax.set_xticks(lv)
    else:
        if len(sf):
            ax.hist(list(sf), bins=min(30, max(5, len(sf) // 3)), color="0.5")
        ax.set_xlabel("spatial frequency (SF)")
    ax.set_ylabel("planes")


def draw_plate(ax: Any, values: np.ndarray, row_labels: Sequence[str],
               col_labels: Sequence[str], *, num_classes: int = 11,
               title: str = "") -> Any:
    """Well-grid heatmap of a per-well level (NaN = no image); returns the AxesImage."""
    from matplotlib.colors import ListedColormap

    k = int(num_classes)
    cmap = ListedColormap(level_colors(np.arange(k), np.ones(k), num_classes=k))
    cmap.set_bad("0.85")
    im = ax.imshow(np.ma.masked_invalid(np.asarray(values, dtype=float)), cmap=cmap,
                   vmin=-0.5, vmax=k - 0.5, interpolation="nearest")
    ax.set_xticks(range(len(col_labels)), list(col_labels), fontsize=7)
    ax.set_yticks(range(len(row_labels)), list(row_labels), fontsize=7)
    ax.tick_params(top=True, labeltop=True, bottom=False, labelbottom=False)
    if title:
        ax.set_title(title, fontsize=9)
    return im


# ------------------------------------------------------------------ autofocus
def draw_autofocus(ax: Any, z: Sequence[float], scores: Sequence[float], *,
                   chosen_z: float | None = None, score_name: str | None = None) -> None:
    """Score of every acquisition vs z (numbered in order) and the chosen z."""
    za, sa = np.asarray(z, dtype=float), np.asarray(scores, dtype=float)
    if za.size:
        ax.plot(za, sa, "o", color="#1f77b4", label="acquisitions")
        for i, (zi, si) in enumerate(zip(za, sa)):
            ax.annotate(str(i + 1), (zi, si), textcoords="offset points", xytext=(3, 3),
                        fontsize=7)
    if chosen_z is not None:
        ax.axvline(chosen_z, color="#d62728", ls="--", label="chosen z")
    ax.set_xlabel("z (µm)")
    ax.set_ylabel(score_name or "score")
    if za.size or chosen_z is not None:
        ax.legend(fontsize=7, loc="best")


# ------------------------------------------------------------------ file writers
def _save(fig: Any, out: str | os.PathLike[str], dpi: int = 110) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    _plt().close(fig)
    return out


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
    h, w = np.asarray(image).shape
    fig = plt.figure(figsize=(7.5, 7.5 * h / w * 0.82 + 1.2))
    ax = fig.add_axes((0.02, 0.16, 0.96, 0.76))
    draw_overlay(ax, image, result)
    ax.set_title(_summary_title(result) if title is None else title, fontsize=9)
    draw_legend(fig.add_axes((0.2, 0.03, 0.6, 0.08)), result.num_classes or 11)
    return _save(fig, out, dpi)


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
    series = [CurveSeries.from_curve(c) for c in stack.channels]
    have_model = any(s.expected_level is not None for s in series)
    fig, axes = plt.subplots(1, 2 if have_model else 1, figsize=(10 if have_model else 6, 4))
    axes = np.atleast_1d(axes)
    xl = "z (µm)" if stack.z_step_um else "z index"
    draw_sf_curves(axes[0], series, normalised=normalise, xlabel=xl)
    if have_model:
        draw_level_curves(axes[1], series, model=str(stack.model_id), xlabel=xl)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out)


def per_stain_boxplot(
    values: dict[str, Sequence[float]], out: str | os.PathLike[str], ylabel: str = "SF"
) -> Path:
    """Box plot of a metric per stain (FluoCLIP Fig. 2 b–d style)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    draw_stain_boxplot(ax, values, ylabel)
    fig.tight_layout()
    return _save(fig, out)
