"""Worker side of "Assess focus": napari layer -> pipeline -> core -> overlay layer.

No Qt widgets here. :func:`job_for` runs on the GUI thread and only reads the layer
(through :func:`napari_focusqa.pipeline.layer_to_stack`, THE rule for turning a napari
layer into a stack); :func:`run_jobs` runs in the :class:`TaskRunner` thread: it loads
the model (:func:`napari_focusqa.pipeline.resolve_model`), assesses every plane with the
core's :func:`assess_stack` and builds one patch-border ``Points`` layer per channel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_focusqa.widgets._results import AssessedChannel, store_result


@dataclass
class Job:
    """One image layer to assess (prepared on the GUI thread, run in the worker)."""

    layer_name: str
    zcyx: Any  # (Z, 1, Y, X) array-like (numpy or dask), read in the worker
    stain: str
    z_step_um: float | None
    leading: tuple[int, ...]
    scale: tuple[float, ...]
    translate: tuple[float, ...]
    two_d: bool
    source: dict[str, Any]
    airy_px: float | None = None  # the optics' in-focus blur: sets the verdict threshold

    @property
    def n_planes(self) -> int:
        return int(self.zcyx.shape[0])


def overlay_layer_name(image_layer_name: str) -> str:
    """Name of the patch-border layer of an image layer."""
    return f"{image_layer_name} patches"


def layer_step(layer: Any, viewer: Any) -> tuple[int, ...]:
    """The layer's data index shown by ``viewer`` now (one int per layer axis)."""
    nd = layer.ndim
    point = np.asarray(viewer.dims.point[-nd:], dtype=float)
    idx = np.round((point - np.asarray(layer.translate, dtype=float))
                   / np.asarray(layer.scale, dtype=float)).astype(int)
    shape = np.asarray(layer.data[0].shape if getattr(layer, "multiscale", False)
                       else layer.data.shape)[:nd]
    return tuple(int(i) for i in np.clip(idx, 0, shape - 1))


def job_for(layer: Any, viewer: Any, stain: str) -> Job:
    """Read one image layer into a :class:`Job` (FocusQAError on bad input)."""
    from napari_focusqa.pipeline import layer_to_stack

    ls = layer_to_stack(layer, current_step=layer_step(layer, viewer))
    return Job(layer.name, ls.zcyx, stain, ls.z_step_um, ls.leading_index,
               tuple(float(s) for s in layer.scale), tuple(float(t) for t in layer.translate),
               ls.two_d, ls.source, ls.airy_px)


def run_jobs(jobs: list[Job], model_ref: Any, *, emit: Callable[..., None],
             cancel: Callable[[], bool]) -> list[tuple[Job, Any, Any]]:
    """Worker body: ``[(job, StackResult, Points layer or None), ...]``."""
    from napari_focusqa.core.zstack import assess_stack
    from napari_focusqa.pipeline import resolve_model

    fm = resolve_model(model_ref)
    total = sum(j.n_planes for j in jobs)
    offset = 0
    out = []
    for job in jobs:
        def prog(done: int, _tot: int, base: int = offset) -> None:
            emit(base + done, total)

        sr = assess_stack(np.asarray(job.zcyx), fm, z_step_um=job.z_step_um,
                          channel_names=[job.layer_name], stains=[job.stain],
                          source=job.source, progress=prog, cancel=cancel,
                          airy_px=job.airy_px)
        offset += job.n_planes
        layer = overlay_layer(job, sr) if fm is not None else None
        out.append((job, sr, layer))
    return out


def overlay_layer(job: Job, sr: Any) -> Any:
    """napari ``Points`` layer of the patch borders of every plane of one channel."""
    from napari.layers import Points

    from napari_focusqa.widgets.overlay import build_overlay

    curve = sr.channels[0]
    ov = build_overlay(curve, leading=job.leading, two_d=job.two_d)
    meta = {"focusqa": {
        "kind": "patches",
        "image_layer": job.layer_name,
        "model": sr.model_id,
        "stain": job.stain,
        "num_classes": ov.num_classes,
        "patch_size": ov.patch_size,
        "patches_per_slice": ov.patches_per_slice,
        "best_z_index": curve.best_z_index,
        "best_z_index_model": curve.best_z_index_model,
    }}
    return Points(ov.coords, ndim=ov.coords.shape[-1], name=overlay_layer_name(job.layer_name),
                  scale=job.scale, translate=job.translate, opacity=1.0, metadata=meta,
                  **ov.layer_kwargs())


def entry_for(job: Job, sr: Any, overlay_name: str | None) -> AssessedChannel:
    """The result stored on the image layer of ``job``."""
    curve = sr.channels[0]
    return AssessedChannel(
        layer_name=job.layer_name,
        curve=curve.to_dict(),
        records=[s.to_record() for s in curve.slices],
        model_id=sr.model_id,
        z_axis=None if job.two_d else -3,
        z_scale=1.0 if job.two_d else job.scale[-3],
        z_translate=0.0 if job.two_d else job.translate[-3],
        leading=job.leading,
        overlay=overlay_name,
    )


def add_assessment(viewer: Any, out: list[tuple[Job, Any, Any]]) -> list[AssessedChannel]:
    """Put a :func:`run_jobs` result into ``viewer`` (GUI thread): the patch layers
    (replacing older ones; only the first channel's visible, since channels share one
    grid) and the results on the image layers. Returns the stored entries."""
    entries, n_shown = [], 0
    for job, sr, points in out:
        name = None
        if points is not None:
            name = points.name
            if name in viewer.layers:
                viewer.layers.remove(name)
            points.visible = n_shown == 0
            n_shown += 1
            viewer.add_layer(points)
        entry = entry_for(job, sr, name)
        if job.layer_name in viewer.layers:
            store_result(viewer.layers[job.layer_name], entry)
        entries.append(entry)
    first = next((e.overlay for e in entries if e.overlay), None)
    if first is not None:
        viewer.layers.selection.active = viewer.layers[first]
    return entries
