"""Assessment results stored on the napari layers themselves.

The "Assess focus" widget writes one JSON-able dict per assessed image layer into
``layer.metadata["focusqa_result"]`` (the core's curve dict, the per-plane records and
how the layer's z maps to the viewer) and the per-patch table into the ``features`` of
its ``<layer> patches`` Points layer. The other widgets (curves, outputs) read them back
from the layers, so results survive a widget being closed and go wherever the layer
goes. Setting ``layer.metadata`` emits ``layer.events.metadata``, which is how the
curves widget learns about new results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

RESULT_KEY = "focusqa_result"


@dataclass
class AssessedChannel:
    """One assessed image layer, as stored in its metadata.

    Attributes
    ----------
    layer_name : str
    curve : dict
        :meth:`ChannelCurve.to_dict` (sf, expected_level, z_um, best z, stain, ...).
    records : list of dict
        One :meth:`FocusResult.to_record` per plane (the CLI's CSV rows).
    model_id : str or None
    z_axis : int or None
        World axis of the layer's z, counted from the end (None for a 2D image).
    z_scale, z_translate : float
        World coordinate of plane ``i`` is ``z_translate + i * z_scale``.
    leading : tuple of int
        Indices of the axes before z that were fixed (e.g. the time point).
    overlay : str or None
        Name of the patch-border Points layer (None without a model).
    """

    layer_name: str
    curve: dict[str, Any]
    records: list[dict[str, Any]]
    model_id: str | None
    z_axis: int | None
    z_scale: float = 1.0
    z_translate: float = 0.0
    leading: tuple[int, ...] = ()
    overlay: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------ curve access
    @property
    def n_slices(self) -> int:
        return len(self.curve["sf"])

    @property
    def stain(self) -> str:
        return str(self.curve.get("stain") or "generic")

    @property
    def sf(self) -> np.ndarray:
        return np.asarray(self.curve["sf"], dtype=np.float64)

    @property
    def expected_level(self) -> np.ndarray | None:
        lv = self.curve.get("expected_level")
        return None if lv is None else np.asarray(lv, dtype=np.float64)

    @property
    def z_um(self) -> list[float] | None:
        return self.curve.get("z_um")

    @property
    def z_step_um(self) -> float | None:
        return self.curve.get("z_step_um")

    @property
    def best_z_index(self) -> int:
        return int(self.curve["best_z_index"])

    @property
    def best_z_index_model(self) -> int | None:
        b = self.curve.get("best_z_index_model")
        return None if b is None else int(b)

    def x(self) -> np.ndarray:
        """Plot x of each plane: z in µm when the z-step is known, else the index."""
        zum = self.z_um
        return np.asarray(zum if zum is not None else range(self.n_slices), dtype=float)

    # ------------------------------------------------------------ z mapping
    def z_world(self, z_index: int) -> float:
        return self.z_translate + z_index * self.z_scale

    def z_index_of_world(self, value: float) -> int:
        """Nearest plane index of world coordinate ``value`` (clipped to the stack)."""
        i = int(round((value - self.z_translate) / (self.z_scale or 1.0)))
        return max(0, min(self.n_slices - 1, i))

    def current_z(self, viewer: Any) -> int | None:
        """Plane of this layer shown by ``viewer`` now (None for a 2D image)."""
        if self.z_axis is None:
            return None
        axis = viewer.dims.ndim + self.z_axis
        if axis < 0:
            return None
        return self.z_index_of_world(float(viewer.dims.point[axis]))

    def go_to(self, viewer: Any, z_index: int) -> None:
        """Move ``viewer`` to plane ``z_index`` of this layer."""
        if self.z_axis is None:
            return
        viewer.dims.set_point(viewer.dims.ndim + self.z_axis, self.z_world(z_index))

    # ------------------------------------------------------------ (de)serialise
    def to_meta(self) -> dict[str, Any]:
        return {
            "curve": self.curve,
            "records": self.records,
            "model": self.model_id,
            "z_axis": self.z_axis,
            "z_scale": self.z_scale,
            "z_translate": self.z_translate,
            "leading": list(self.leading),
            "overlay": self.overlay,
        }

    @classmethod
    def from_meta(cls, layer_name: str, d: dict[str, Any]) -> AssessedChannel:
        return cls(layer_name, d["curve"], list(d.get("records") or []), d.get("model"),
                   d.get("z_axis"), float(d.get("z_scale", 1.0)),
                   float(d.get("z_translate", 0.0)), tuple(d.get("leading") or ()),
                   d.get("overlay"))


def store_result(layer: Any, entry: AssessedChannel) -> None:
    """Put ``entry`` on its image layer (emits ``layer.events.metadata``)."""
    meta = dict(layer.metadata or {})
    meta[RESULT_KEY] = entry.to_meta()
    layer.metadata = meta


def result_of(layer: Any) -> AssessedChannel | None:
    """The assessment stored on ``layer`` (None when it has none)."""
    d = (getattr(layer, "metadata", None) or {}).get(RESULT_KEY)
    return None if not d else AssessedChannel.from_meta(layer.name, d)


def assessed_channels(viewer: Any) -> list[AssessedChannel]:
    """Every assessed image layer of ``viewer``, in layer-list order."""
    out = []
    for ly in viewer.layers:
        r = result_of(ly)
        if r is not None:
            out.append(r)
    return out


def patch_cube(layer: Any, column: str) -> np.ndarray:
    """``(Z, rows, cols)`` array of one feature column of a patch-border Points layer."""
    f = layer.features
    z = np.asarray(f["z"], dtype=np.int64)
    r = np.asarray(f["row"], dtype=np.int64)
    c = np.asarray(f["col"], dtype=np.int64)
    vals = np.asarray(f[column])
    shape = (int(z.max()) + 1, int(r.max()) + 1, int(c.max()) + 1)
    out = (np.zeros(shape, dtype=bool) if vals.dtype == bool
           else np.full(shape, np.nan, dtype=np.float64))
    out[z, r, c] = vals
    return out
