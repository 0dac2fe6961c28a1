"""The one public door from a file or a napari layer to a FocusQA result.

Every front end (the ``focusqa`` CLI, batch, the Fiji bridge, the napari widgets,
acquisition) turns its input into results through these functions, so the same file
gives the same numbers everywhere:

- :func:`resolve_model` -- a model reference (id, card path, loaded model, ``"none"``,
  or nothing for the default) to a :class:`~napari_focusqa.core.model.FocusModel`.
- :func:`iter_planes` / :func:`assess_file` -- a file to :class:`FocusResult` per 2D plane
  (``mode="planes"``) or :class:`StackResult` per series and time point
  (``mode="stack"``). Nothing is silently dropped: every series and every time point
  is assessed unless ``series=`` / ``t=`` pick one.
- :func:`layer_to_stack` -- a napari layer (or its data, scale and metadata) to a
  ``(Z, C, Y, X)`` stack with its z-step: the single rule all widgets use.

This module imports no Qt, napari or Java; it is plain Python over the core and io.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import numpy as np

from napari_focusqa.core.assess import FocusResult, assess_image
from napari_focusqa.core.errors import FocusQAError, ImageError
from napari_focusqa.core.metrics import spatial_frequency
from napari_focusqa.core.model import FocusModel, default_model_id, load_model
from napari_focusqa.core.validate import as_image2d
from napari_focusqa.core.zstack import StackResult, assess_stack, plane_source, sf_ratios

__all__ = [
    "LayerStack",
    "assess_file",
    "iter_images",
    "iter_planes",
    "layer_to_stack",
    "resolve_model",
]

ModelRef = str | os.PathLike[str] | FocusModel | None


def resolve_model(ref: ModelRef = None, *, threads: int | None = None) -> FocusModel | None:
    """Resolve a model reference to a loaded, validated model.

    Parameters
    ----------
    ref : str, path, FocusModel or None
        ``None`` or ``""``: the default installed model (``fqa-levels``), or None when no
        model is installed (classic metrics only). ``"none"`` (any case): no model.
        Otherwise a model id, a card (``.json``) or ONNX path, a bioimage.io model
        package (folder, ``bioimageio.yaml``/``rdf.yaml`` or zip; see
        :mod:`napari_focusqa.bioimageio.loader`), or a loaded model.
    threads : int, optional
        onnxruntime intra-op threads for a newly loaded session.

    Raises
    ------
    ModelCardError
        Unknown id, missing or corrupt card or ONNX file, sha256 or shape mismatch --
        always naming the model and the problem.
    """
    if isinstance(ref, FocusModel):
        return ref
    if ref is None or (isinstance(ref, str) and ref.strip() == ""):
        default = default_model_id()
        return None if default is None else load_model(default, threads=threads)
    if isinstance(ref, str) and ref.strip().lower() == "none":
        return None
    from napari_focusqa.bioimageio.loader import is_package, load_package

    if is_package(ref):  # a bioimage.io package: folder, bioimageio.yaml/rdf.yaml or zip
        return load_package(ref, threads=threads)
    return load_model(ref, threads=threads)


def _model_for(model: ModelRef | Literal["default"]) -> FocusModel | None:
    """File functions follow the core: None = no model (classic metrics only)."""
    if model is None:
        return None
    return resolve_model(None if model == "default" else model)


# --------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------
def iter_images(
    path: str | os.PathLike[str], *, series: int | None = None
) -> Iterator[tuple[int | None, Any]]:
    """Yield ``(series_index, ImageData)`` for every series of a file (or the one asked;
    :func:`~napari_focusqa.io.read_image` refuses an index out of range).

    ``series_index`` is None for files with a single series, so single-series results
    carry no ``series`` field.
    """
    from napari_focusqa.io import read_image

    # one series in memory at a time; series 0 tells how many the file holds
    img = read_image(path, series=0 if series is None else series)
    n = int(img.n_series)
    if series is not None:
        yield (series if n > 1 else None), img
        return
    yield (0 if n > 1 else None), img
    for s in range(1, n):
        yield s, read_image(path, series=s)


def _t_indices(path: str | os.PathLike[str], n_t: int, t: int | None) -> list[int]:
    if t is None:
        return list(range(n_t))
    if isinstance(t, bool) or not isinstance(t, int | np.integer) or not 0 <= int(t) < n_t:
        raise ImageError(f"{path}: t: time index {t!r} out of range (0..{n_t - 1})")
    return [int(t)]


def _file_source(path: str | os.PathLike[str], series: int | None, t_index: int,
                 tag_t: bool) -> dict[str, Any]:
    """``source`` of one (series, t) of a file: ``t_index`` when the file is a time-lapse
    or a t was asked for, ``series`` when the file holds several."""
    src: dict[str, Any] = {"file": str(path)}
    if tag_t:
        src["t_index"] = t_index
    if series is not None:
        src["series"] = series
    return src


def _stains_of(path: str | os.PathLike[str], img: Any,
               stains: Sequence[str | None] | None) -> list[str]:
    """Stain per channel: from the channel names, unless ``stains`` names one
    (``None``/``""``/``"auto"`` keep the channel-name rule for that channel)."""
    from napari_focusqa.core.stains import STAIN_CLASSES

    auto = list(img.stains)
    if stains is None:
        return auto
    if len(stains) != len(auto):
        raise ImageError(f"{path}: stains: expected {len(auto)} (one per channel), got {len(stains)}")
    out = []
    for a, s in zip(auto, stains):
        if s in (None, "", "auto"):
            out.append(a)
        elif s in STAIN_CLASSES:
            out.append(str(s))
        else:
            raise FocusQAError(f"stains: unknown stain {s!r} (expected auto or one of "
                               f"{', '.join(STAIN_CLASSES)})")
    return out


def airy_px_of(info: Any, pixel_size_um: float | None,
               optics: Mapping[str, Any] | None = None) -> float | None:
    """The Airy disc diameter (px) of an image whose description ``info`` (ImageJ
    ``Info``, the reader's ``metadata["info"]``, or the optics text the CZI/OME readers
    put in ``metadata["optics"]``) names an NA (``NA 1.45``, ``50x/1.2``; the emission
    wavelength if given, else 520 nm) and whose pixel size is known; None otherwise. It
    sets the verdict threshold for that instrument
    (:func:`~napari_focusqa.core.assess.in_focus_max_level_for`; docs/verdicts.md).

    ``optics`` (``na``, ``wavelength_nm``, ``pixel_size_um``; the CLI's
    ``--na/--wavelength-nm/--pixel-size-um``): each given field overrides the recorded one.

    Raises
    ------
    FocusQAError
        An override that is not a positive number (NA also below 1.8), named.
    """
    from napari_focusqa.autofocus.optics import DEFAULT_WAVELENGTH_NM, optics_from_info
    from napari_focusqa.core.assess import airy_diameter_px

    given = check_optics(optics)
    px = given.get("pixel_size_um") or pixel_size_um
    recorded = optics_from_info(str(info) if info else None, px)
    na = given.get("na") or (None if recorded is None else recorded.na)
    if na is None:
        return None
    wl = given.get("wavelength_nm") or (
        DEFAULT_WAVELENGTH_NM if recorded is None else recorded.wavelength_nm)
    return airy_diameter_px(na, wl, px)


def _optics_text(meta: Mapping[str, Any]) -> Any:
    """What a reader recorded of the optics: its optics text, else the description."""
    return meta.get("optics") or meta.get("info")


def image_airy_px(img: Any, optics: Mapping[str, Any] | None = None) -> float | None:
    """:func:`airy_px_of` an :class:`~napari_focusqa.io.ImageData` (its optics text or
    description, and its pixel size), ``optics`` overriding."""
    return airy_px_of(_optics_text(img.metadata or {}), img.pixel_size_um, optics)


OPTICS_KEYS = ("na", "wavelength_nm", "pixel_size_um")


def check_optics(optics: Mapping[str, Any] | None) -> dict[str, float]:
    """The given optics overrides (None values dropped), validated."""
    out: dict[str, float] = {}
    for k, v in dict(optics or {}).items():
        if k not in OPTICS_KEYS:
            raise FocusQAError(f"optics: unknown field {k!r} (expected {', '.join(OPTICS_KEYS)})")
        if v is None:
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise FocusQAError(f"{k}: expected a number, got {v!r}") from None
        if not (np.isfinite(f) and f > 0) or (k == "na" and f >= 1.8):
            raise FocusQAError(f"{k}: expected a positive number{' below 1.8' if k == 'na' else ''}"
                               f", got {v!r}")
        out[k] = f
    return out


def iter_planes(
    path: str | os.PathLike[str],
    model: ModelRef | Literal["default"] = "default",
    *,
    t: int | None = None,
    series: int | None = None,
    metrics: Sequence[str] = ("sf",),
    stains: Sequence[str | None] | None = None,
    optics: Mapping[str, Any] | None = None,
) -> Iterator[tuple[np.ndarray, FocusResult]]:
    """Assess every 2D plane (all series, T, Z, C) of one file.

    Yields ``(plane, FocusResult)``; the result's ``source`` names the file, channel,
    stain, ``z_index``/``z_um`` and, when the file has them, ``t_index`` and ``series``.
    When the file names the optics (an NA in its description and a pixel size) the
    verdict threshold is that instrument's (:func:`airy_px_of`). Planes of a z-stack
    (more than one z) keep their stack context, as in
    :func:`assess_file` ``mode="stack"``: ``stack_sf_ratio`` is the plane's SF over the best
    SF of its channel at that series and t, so a plane far less sharp than the best one of
    its own stack is never ``in_focus`` (:data:`~napari_focusqa.core.assess.MIN_STACK_SF_RATIO`).
    This costs one SF pass over the stack before the planes are assessed.
    ``model``: ``"default"`` (the default installed model), None (no model: classic
    metrics only, as in the core), or anything else :func:`resolve_model` takes.
    ``stains``: per-channel stain classes overriding the channel-name rule (see
    :func:`assess_file`). ``optics``: overrides of the recorded optics
    (:func:`image_airy_px`).
    """
    check_optics(optics)
    fm = _model_for(model)
    wanted = stains
    for s, img in iter_images(path, series=series):
        t_n, z_n, c_n = img.data.shape[:3]
        stains = _stains_of(path, img, wanted)
        airy = image_airy_px(img, optics)
        for ti in _t_indices(path, t_n, t):
            ratio = _stack_sf_ratios(path, img.data, ti) if z_n > 1 else None
            for z in range(z_n):
                for c in range(c_n):
                    src = plane_source(_file_source(path, s, ti, t_n > 1 or t is not None),
                                       c, img.channel_names[c], stains[c], z, img.z_step_um)
                    plane = np.asarray(img.data[ti, z, c])
                    try:
                        res = assess_image(plane, fm, stain=stains[c], metrics=metrics,
                                           source=src, airy_px=airy)
                    except ImageError as exc:
                        raise ImageError(f"{path}: {exc}") from exc
                    if ratio is not None and np.isfinite(ratio[z, c]):
                        res.stack_sf_ratio = float(ratio[z, c])
                    yield plane, res


def _stack_sf_ratios(path: str | os.PathLike[str], data: Any, ti: int) -> np.ndarray:
    """``(Z, C)`` SF of each plane at ``t = ti`` over its channel's best
    (:func:`~napari_focusqa.core.zstack.sf_ratios`, the rule ``assess_stack`` applies);
    the same SF as :func:`assess_image` computes."""
    z_n, c_n = int(data.shape[1]), int(data.shape[2])
    sf = np.full((z_n, c_n), np.nan)
    for z in range(z_n):
        for c in range(c_n):
            try:
                sf[z, c] = float(spatial_frequency(as_image2d(np.asarray(data[ti, z, c]))))
            except ImageError as exc:
                raise ImageError(f"{path}: {exc}") from exc
    return sf_ratios(sf)


def _stack_results(
    path: str | os.PathLike[str],
    fm: FocusModel | None,
    *,
    t: int | None,
    series: int | None,
    channel: int | None,
    metrics: Sequence[str],
    stains: Sequence[str | None] | None = None,
    optics: Mapping[str, Any] | None = None,
) -> list[StackResult]:
    out = []
    for s, img in iter_images(path, series=series):
        img_stains = _stains_of(path, img, stains)
        airy = image_airy_px(img, optics)
        if img.n_slices < 2:
            raise ImageError(f"{path}: not a z-stack (1 slice); use `focusqa assess`")
        t_n = int(img.data.shape[0])
        for ti in _t_indices(path, t_n, t):
            src = _file_source(path, s, ti, t_n > 1 or t is not None)
            try:
                out.append(
                    assess_stack(
                        img.zcyx(ti),
                        fm,
                        z_step_um=img.z_step_um,
                        channel_names=img.channel_names,
                        stains=img_stains,
                        channels=None if channel is None else [channel],
                        metrics=metrics,
                        source=src,
                        airy_px=airy,
                    )
                )
            except ImageError as exc:
                raise ImageError(f"{path}: {exc}") from exc
    return out


@overload
def assess_file(
    path: str | os.PathLike[str],
    model: ModelRef | Literal["default"] = ...,
    mode: Literal["planes"] = ...,
    *,
    t: int | None = ...,
    series: int | None = ...,
    channel: int | None = ...,
    metrics: Sequence[str] = ...,
    stains: Sequence[str | None] | None = ...,
    optics: Mapping[str, Any] | None = ...,
) -> list[FocusResult]: ...


@overload
def assess_file(
    path: str | os.PathLike[str],
    model: ModelRef | Literal["default"],
    mode: Literal["stack"],
    *,
    t: int | None = ...,
    series: int | None = ...,
    channel: int | None = ...,
    metrics: Sequence[str] = ...,
    stains: Sequence[str | None] | None = ...,
    optics: Mapping[str, Any] | None = ...,
) -> list[StackResult]: ...


def assess_file(
    path: str | os.PathLike[str],
    model: ModelRef | Literal["default"] = "default",
    mode: Literal["planes", "stack"] = "planes",
    *,
    t: int | None = None,
    series: int | None = None,
    channel: int | None = None,
    metrics: Sequence[str] = ("sf",),
    stains: Sequence[str | None] | None = None,
    optics: Mapping[str, Any] | None = None,
) -> list[FocusResult] | list[StackResult]:
    """Assess one image file.

    Parameters
    ----------
    path : file readable by :func:`napari_focusqa.io.read_image`
    model : ``"default"`` (default installed model), None (no model, classic metrics
        only) or any other reference :func:`resolve_model` takes
    mode : ``"planes"`` gives one :class:`FocusResult` per 2D plane; ``"stack"`` one
        :class:`StackResult` per series and time point (best slice per channel).
    t, series : restrict to one time point / series (default: all of them)
    channel : ``mode="stack"`` only: assess just this channel index
    stains : one stain class per channel overriding the rule that derives it from the
        channel name (``None``, ``""`` or ``"auto"`` keep that rule for a channel)
    optics : ``na``, ``wavelength_nm``, ``pixel_size_um`` overriding what the file records
        (they set the verdict threshold: :func:`image_airy_px`)

    Raises
    ------
    ImageError
        Unreadable file, a single plane in ``"stack"`` mode, an index out of range.
    """
    if mode == "planes":
        if channel is not None:
            raise FocusQAError("channel: only supported with mode='stack'")
        return [res for _plane, res in iter_planes(path, model, t=t, series=series,
                                                    metrics=metrics, stains=stains,
                                                    optics=optics)]
    if mode == "stack":
        fm = _model_for(model)
        check_optics(optics)
        return _stack_results(path, fm, t=t, series=series, channel=channel, metrics=metrics,
                              stains=stains, optics=optics)
    raise FocusQAError(f"mode: expected 'planes' or 'stack', got {mode!r}")


# --------------------------------------------------------------------------------------
# napari layers (duck-typed: no napari import)
# --------------------------------------------------------------------------------------
@dataclass
class LayerStack:
    """A layer turned into what the core assesses, by :func:`layer_to_stack`."""

    zcyx: Any  # (Z, C, Y, X) array-like; lazy (dask) layers stay lazy
    z_step_um: float | None
    channel_names: list[str | None]
    stains: list[str] | None
    leading_index: tuple[int, ...] = ()
    two_d: bool = False
    source: dict[str, Any] = field(default_factory=dict)
    #: Airy disc diameter (px) when the metadata names the optics (:func:`airy_px_of`)
    airy_px: float | None = None

    @property
    def n_slices(self) -> int:
        return int(self.zcyx.shape[0])


def _focusqa_meta(metadata: Any) -> dict[str, Any]:
    meta = dict(metadata or {})
    fq = meta.get("focusqa") or {}
    merged = {k: v for k, v in meta.items() if k != "focusqa"}
    merged.update(fq if isinstance(fq, dict) else {})
    return merged


def layer_to_stack(
    layer_or_data: Any,
    *,
    scale: Sequence[float] | None = None,
    metadata: dict[str, Any] | None = None,
    current_step: Sequence[float] | None = None,
    name: str | None = None,
) -> LayerStack:
    """Turn a napari image layer (or its data) into a ``(Z, C, Y, X)`` stack.

    The one rule every widget uses:

    - multiscale data: the full-resolution level;
    - RGB layers are refused (FocusQA assesses grey fluorescence channels);
    - 2D: one plane; 3D: ``(Z, Y, X)``; more dimensions: the leading axes (all but the
      last three, e.g. T or position) are taken at ``current_step`` -- data indices,
      e.g. ``layer.world_to_data(viewer.dims.point)`` -- and at 0 when not given;
    - z-step: ``metadata["focusqa"]["z_step_um"]`` (or ``metadata["z_step_um"]``, as the
      FocusQA reader writes it), else the layer's z scale when it is not the default
      1.0, else unknown (None);
    - channel name and stain from the same metadata when present;
    - the optics (``info`` naming an NA, ``pixel_size_um``, as the reader writes them)
      give ``airy_px``, the verdict threshold's input (:func:`airy_px_of`).
    """
    data = layer_or_data
    is_layer = hasattr(layer_or_data, "data") and hasattr(layer_or_data, "scale")
    if is_layer:
        layer = layer_or_data
        if getattr(layer, "rgb", False):
            raise FocusQAError(
                f"layer: {getattr(layer, 'name', '?')!r} is an RGB image; FocusQA assesses grey "
                "fluorescence channels (split the channels first: right-click > Split RGB)"
            )
        data = layer.data
        if getattr(layer, "multiscale", False):
            data = data[0]
        scale = tuple(float(s) for s in layer.scale) if scale is None else scale
        metadata = getattr(layer, "metadata", None) if metadata is None else metadata
        name = getattr(layer, "name", None) if name is None else name
    elif isinstance(data, list | tuple):  # multiscale data passed directly
        data = data[0]
    if not hasattr(data, "shape") or not hasattr(data, "ndim"):
        data = np.asarray(data)
    nd = int(data.ndim)
    if nd < 2:
        raise ImageError(f"layer: expected an image with at least 2 dimensions, got {nd}")
    meta = _focusqa_meta(metadata)
    leading: tuple[int, ...] = ()
    if nd > 3:
        n_lead = nd - 3
        step = [] if current_step is None else [float(v) for v in current_step]
        step = step[-nd:] if len(step) >= nd else step[:n_lead]
        idx = []
        for ax in range(n_lead):
            v = step[ax] if ax < len(step) else 0
            i = int(np.clip(int(round(float(v))), 0, int(data.shape[ax]) - 1))
            idx.append(i)
        leading = tuple(idx)
        data = data[leading]
    two_d = data.ndim == 2
    zyx = data[None] if two_d else data
    zcyx = zyx[:, None]
    z_step = meta.get("z_step_um")
    if z_step is not None:
        try:
            z_step = float(z_step)
        except (TypeError, ValueError):
            raise FocusQAError(f"layer metadata: z_step_um must be a number, got {z_step!r}") from None
    elif not two_d and scale is not None and len(scale) >= 3:
        s = float(scale[-3])
        z_step = s if s > 0 and s != 1.0 else None
    ch = meta.get("channel_name") or meta.get("channel")
    stain = meta.get("stain")
    src = {"file": meta.get("source"), "layer": name}
    return LayerStack(
        zcyx=zcyx,
        z_step_um=z_step,
        channel_names=[None if ch is None else str(ch)],
        stains=None if stain is None else [str(stain)],
        leading_index=leading,
        two_d=two_d,
        source=src,
        airy_px=_layer_airy_px(meta),
    )


def _layer_airy_px(meta: dict[str, Any]) -> float | None:
    try:
        px = meta.get("pixel_size_um")
        return airy_px_of(_optics_text(meta), None if px is None else float(px))
    except (TypeError, ValueError):
        return None
