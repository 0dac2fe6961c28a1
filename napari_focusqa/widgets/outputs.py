"""The "Focus outputs" dock widget: new layers made from an assessed z-stack.

Reads the image layers and the results "Assess focus" stored on them (best plane,
the ``<layer> patches`` features) and adds, through :mod:`napari_focusqa.outputs`:

- **Best-focus substack**: the best plane of each channel, or of a reference channel
  applied to all, ± N planes, one ``<layer> best focus`` layer per channel;
- **All-in-focus + height map**: per-patch best z (patch SF), smoothed, as the
  ``<layer> height map`` (µm when the z-step is known) and ``<layer> all-in-focus``;
- **Level map**: the model's expected level of every patch on every plane, at patch
  resolution (``<layer> level map``, hue = level as the borders; grey-free: NaN =
  no structure);
- **Montage**: per level, the most certain patches (``<layer> montage``, placed to the
  right of the image).

Settings are a persisted magicgui form; the work runs in the shared :class:`TaskRunner`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from magicgui import magicgui
from magicgui.widgets import Label, PushButton, Select
from qtpy.QtWidgets import QGridLayout, QVBoxLayout, QWidget

from napari_focusqa.core.errors import FocusQAError
from napari_focusqa.widgets._base import FocusDock
from napari_focusqa.widgets._results import AssessedChannel, patch_cube, result_of

OWN_BEST = "each channel's own"


def _options(reference: str = OWN_BEST, planes: int = 0, smooth: int = 1,
             per_level: int = 6) -> None:
    """Output settings (persisted)."""


_options.__annotations__ = {"reference": str, "planes": int, "smooth": int, "per_level": int,
                            "return": None}


def level_colormap(num_classes: int) -> Any:
    """napari colormap of the levels: the borders' hues at full certainty."""
    from napari.utils.colormaps import Colormap

    from napari_focusqa.core.colors import level_colors

    k = int(num_classes)
    return Colormap(level_colors(np.arange(k), np.ones(k), k), name=f"focusqa_levels_{k}",
                    interpolation="zero" if k > 1 else "linear")


class OutputsWidget(FocusDock):
    """Dock widget "Focus outputs" (see module docstring)."""

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(napari_viewer, parent, on_finished=self._on_finished)
        self.layers = Select(label="assessed layers", choices=self._assessed_choices,
                             allow_multiple=True)
        self.form = magicgui(_options, persist=True, call_button=False,
                             reference={"choices": self._reference_choices},
                             planes={"min": 0, "max": 50, "label": "± planes"},
                             smooth={"min": 0, "max": 5, "label": "smooth (3×3 median passes)"},
                             per_level={"min": 1, "max": 30, "label": "montage patches/level"})
        self.substack_btn = PushButton(text="Best-focus substack")
        self.composite_btn = PushButton(text="All-in-focus + height map")
        self.levelmap_btn = PushButton(text="Level map")
        self.montage_btn = PushButton(text="Montage")
        self.status = Label(value="Assess focus first; then pick layers and an output.")
        self.status.native.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(self.layers.native)
        lay.addWidget(self.form.native)
        grid = QGridLayout()
        for i, b in enumerate((self.substack_btn, self.composite_btn, self.levelmap_btn,
                               self.montage_btn)):
            grid.addWidget(b.native, i // 2, i % 2)
        lay.addLayout(grid)
        lay.addWidget(self.status.native)
        lay.addStretch(1)
        self.layers.native.setMaximumHeight(90)
        self.substack_btn.changed.connect(lambda: self.best_substack())
        self.composite_btn.changed.connect(lambda: self.composite())
        self.levelmap_btn.changed.connect(lambda: self.level_map())
        self.montage_btn.changed.connect(lambda: self.montage())
        self._connect(self.viewer.layers.events.inserted, self.refresh)
        self._connect(self.viewer.layers.events.removed, self.refresh)
        self.refresh()

    # ------------------------------------------------------------ choices
    def _assessed(self) -> list[Any]:
        return [ly for ly in self.viewer.layers if result_of(ly) is not None]

    def _assessed_choices(self, _w: Any = None) -> list[tuple[str, Any]]:
        return [(ly.name, ly) for ly in self._assessed()]

    def _reference_choices(self, _w: Any = None) -> list[str]:
        return [OWN_BEST, *(ly.name for ly in self._assessed())]

    def refresh(self, *_: Any) -> None:
        """Re-read which layers hold results (call after an assessment)."""
        was_all = len(self.layers.value) == len(self.layers.choices)
        keep = [ly for ly in self.layers.value if ly in self.viewer.layers]
        self.layers.reset_choices()
        self.form.reset_choices()
        self.layers.value = self._assessed() if was_all or not keep else keep

    def chosen(self) -> list[tuple[Any, AssessedChannel]]:
        self.refresh()
        out = []
        for ly in self.layers.value:
            r = result_of(ly)
            if r is not None:
                out.append((ly, r))
        if not out:
            raise FocusQAError("layers: no assessed image layer; run Assess focus first")
        return out

    def _chosen_or_notify(self) -> list[tuple[Any, AssessedChannel]] | None:
        """:meth:`chosen`, or None (and a notification) when no assessed layer is chosen."""
        try:
            return self.chosen()
        except FocusQAError as exc:
            self.runner.error(str(exc))
            return None

    @property
    def _buttons(self) -> tuple[Any, ...]:
        return (self.substack_btn, self.composite_btn, self.levelmap_btn, self.montage_btn)

    def _on_finished(self) -> None:
        for b in self._buttons:
            b.enabled = True

    def _start(self, fn: Any, *args: Any, desc: str) -> Any:
        w = self.runner.start(fn, *args, desc=desc, on_done=self._add_layers)
        if w is not None:
            for b in self._buttons:
                b.enabled = False
            self.status.value = desc + "…"
        return w

    def _add_layers(self, specs: list[tuple[Any, dict[str, Any], str]]) -> None:
        names = []
        for data, kwargs, kind in specs:
            name = kwargs["name"]
            if name in self.viewer.layers:
                self.viewer.layers.remove(name)
            self.viewer.add_layer(_make_layer(data, kwargs, kind))
            names.append(name)
        self.status.value = "Added: " + ", ".join(names)

    def _zyx(self, layer: Any, r: AssessedChannel) -> Any:
        data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
        if r.leading:
            data = data[tuple(r.leading)]
        return data[None] if data.ndim == 2 else data

    @staticmethod
    def _spatial(layer: Any) -> tuple[list[float], list[float]]:
        """(scale, translate) of the layer's last two axes (y, x): the 2D outputs are
        placed over the image's plane."""
        sc, tr = [float(s) for s in layer.scale], [float(t) for t in layer.translate]
        return sc[-2:], tr[-2:]

    # ------------------------------------------------------------ actions
    def best_substack(self) -> Any:
        """Best plane(s) of every chosen channel as new layers."""
        from napari_focusqa.outputs import extract_substack

        chosen = self._chosen_or_notify()
        if chosen is None:
            return None
        ref_name = self.form.reference.value
        ref_best = None
        if ref_name != OWN_BEST:
            ref = result_of(self.viewer.layers[ref_name]) if ref_name in self.viewer.layers else None
            if ref is None:
                self.runner.error(f"reference: {ref_name!r} has not been assessed")
                return None
            ref_best = ref.best_z_index
        planes = int(self.form.planes.value)
        jobs = [(ly.name, self._zyx(ly, r), r, *self._spatial(ly)) for ly, r in chosen]

        def work(*, emit: Any, cancel: Any) -> list[tuple[Any, dict[str, Any], str]]:
            specs = []
            for name, zyx, r, sc, tr in jobs:
                best = r.best_z_index if ref_best is None else ref_best
                sub = extract_substack(zyx[:, None], [best], planes=planes)
                data = sub.data[:, 0]
                z0 = sub.z_indices[0][0]
                kw = {"name": f"{name} best focus",
                      "scale": [r.z_scale, *sc] if data.shape[0] > 1 else sc,
                      "translate": ([r.z_world(z0), *tr] if data.shape[0] > 1 else tr),
                      "metadata": {"focusqa_substack": {"source": name,
                                                        "z_indices": sub.z_indices[0]}}}
                specs.append((data if data.shape[0] > 1 else data[0], kw, "image"))
            return specs

        return self._start(work, desc="FocusQA: best-focus substack")

    def composite(self) -> Any:
        """All-in-focus composite + height map of every chosen channel."""
        from napari_focusqa.outputs import composite_from_stack

        chosen = self._chosen_or_notify()
        if chosen is None:
            return None
        smooth = int(self.form.smooth.value)
        jobs = []
        for ly, r in chosen:
            ov = self.viewer.layers[r.overlay] if r.overlay in self.viewer.layers else None
            p = int(ov.metadata["focusqa"]["patch_size"]) if ov is not None else 84
            jobs.append((ly.name, self._zyx(ly, r), r, p, *self._spatial(ly)))

        def work(*, emit: Any, cancel: Any) -> list[tuple[Any, dict[str, Any], str]]:
            specs: list[tuple[Any, dict[str, Any], str]] = []
            for i, (name, zyx, r, p, sc, tr) in enumerate(jobs):
                comp, hp, _ = composite_from_stack(np.asarray(zyx), p, smooth=smooth)
                dz = r.z_step_um
                height = hp * dz if dz else hp
                specs.append((comp, {"name": f"{name} all-in-focus", "scale": sc,
                                     "translate": tr}, "image"))
                specs.append((height, {"name": f"{name} height map", "scale": sc,
                                       "translate": tr, "colormap": "viridis",
                                       "opacity": 0.6, "visible": False,
                                       "metadata": {"focusqa_height_unit":
                                                    "µm" if dz else "plane"}}, "image"))
                emit(i + 1, len(jobs))
            return specs

        return self._start(work, desc="FocusQA: all-in-focus composite")

    def _patch_layer(self, r: AssessedChannel) -> Any:
        if r.overlay is None or r.overlay not in self.viewer.layers:
            raise FocusQAError(f"layer: {r.layer_name!r} was assessed without a model "
                               "(SF only): the level map and montage need per-patch levels")
        return self.viewer.layers[r.overlay]

    def _with_patches(self) -> list[tuple[Any, AssessedChannel, Any]] | None:
        """Chosen (image layer, result, patch layer); None (and a notification) if any
        chosen layer lacks per-patch levels."""
        try:
            return [(ly, r, self._patch_layer(r)) for ly, r in self.chosen()]
        except FocusQAError as exc:
            self.runner.error(str(exc))
            return None

    def level_map(self) -> Any:
        """Patch-resolution expected level of every plane, as a layer per channel."""
        pls = self._with_patches()
        if pls is None:
            return None
        specs = []
        for ly, r, pl in pls:
            meta = pl.metadata["focusqa"]
            p, k = int(meta["patch_size"]), int(meta["num_classes"])
            lm = patch_cube(pl, "expected_level").astype(np.float32)
            lm[patch_cube(pl, "empty")] = np.nan
            sc, tr = self._spatial(ly)
            scale = [s * p for s in sc]
            trans = [t + s * (p - 1) / 2 for s, t in zip(sc, tr)]
            if r.z_axis is not None:
                scale, trans = [r.z_scale, *scale], [r.z_world(0), *trans]
            else:
                lm = lm[0]
            specs.append((lm, {"name": f"{ly.name} level map", "scale": scale,
                               "translate": trans, "colormap": level_colormap(k),
                               "contrast_limits": (0, k - 1), "opacity": 0.5,
                               "metadata": {"focusqa_level_map": {"patch_size": p,
                                                                  "num_classes": k}}},
                          "image"))
        self._add_layers(specs)
        return specs

    def montage(self) -> Any:
        """Most certain patches per level of every chosen channel, as a 2D layer."""
        from napari_focusqa.core.patches import make_grid
        from napari_focusqa.outputs import montage_from_arrays

        pls = self._with_patches()
        if pls is None:
            return None
        per_level = int(self.form.per_level.value)
        specs = []
        for ly, r, pl in pls:
            meta = pl.metadata["focusqa"]
            zyx = self._zyx(ly, r)
            grid = make_grid(tuple(zyx.shape[-2:]), int(meta["patch_size"]))
            m = montage_from_arrays(zyx, patch_cube(pl, "level"), patch_cube(pl, "certainty"),
                                    patch_cube(pl, "empty"), grid, int(meta["num_classes"]),
                                    per_level=per_level)
            sc, tr = self._spatial(ly)
            right = tr[1] + sc[1] * (zyx.shape[-1] + 20)  # beside the image, not over it
            specs.append((m.image, {"name": f"{ly.name} montage", "scale": sc,
                                    "translate": [tr[0], right],
                                    "metadata": {"focusqa_montage": {"cells": m.cells,
                                                                     "patch_size": m.patch_size}}},
                          "image"))
        self._add_layers(specs)
        return specs


def _make_layer(data: Any, kwargs: dict[str, Any], kind: str) -> Any:
    from napari.layers import Image

    if kind != "image":
        raise FocusQAError(f"layer kind {kind!r} is not supported")
    return Image(data, **kwargs)
