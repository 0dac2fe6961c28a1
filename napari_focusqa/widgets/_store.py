"""Per-viewer store of assessment results shared by the FocusQA dock widgets.

The "Assess focus" widget puts one :class:`AssessedChannel` per assessed image layer
here; the "Focus curves" widget listens to :attr:`ResultStore.changed` and redraws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psygnal import Signal

from napari_focusqa.core.zstack import ChannelCurve


@dataclass
class AssessedChannel:
    """One assessed image layer: the core's curve plus how its z maps to the viewer.

    Attributes
    ----------
    layer_name : str
        Name of the assessed image layer.
    curve : ChannelCurve
        The core result (per-slice :class:`FocusResult`, SF, expected level, best z).
    model_id : str or None
        Model used (None: SF only).
    z_axis : int or None
        World axis of the layer's z (None for a 2D image).
    z_scale, z_translate : float
        World coordinate of slice ``i`` is ``z_translate + i * z_scale``.
    leading : tuple of int
        Indices of axes before z that were fixed (e.g. the time point).
    shapes_layer_name : str or None
        Name of the patch-border Shapes layer (None without a model).
    """

    layer_name: str
    curve: ChannelCurve
    model_id: str | None
    z_axis: int | None
    z_scale: float = 1.0
    z_translate: float = 0.0
    leading: tuple[int, ...] = ()
    shapes_layer_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.layer_name

    def z_world(self, z_index: int) -> float:
        """World coordinate of slice ``z_index``."""
        return self.z_translate + z_index * self.z_scale

    def z_index_of_world(self, value: float) -> int:
        """Nearest slice index of world coordinate ``value`` (clipped to the stack)."""
        i = int(round((value - self.z_translate) / (self.z_scale or 1.0)))
        return max(0, min(self.curve.n_slices - 1, i))


class ResultStore:
    """Ordered results for one viewer; emits :attr:`changed` after every update."""

    changed = Signal()

    def __init__(self) -> None:
        self._entries: dict[str, AssessedChannel] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[AssessedChannel]:
        return list(self._entries.values())

    def set(self, items: list[AssessedChannel]) -> None:
        """Add or replace results (keyed by layer name) and notify listeners once."""
        for it in items:
            self._entries.pop(it.key, None)
            self._entries[it.key] = it
        self.changed.emit()

    def prune(self, keep: set[str]) -> None:
        """Drop results of image layers not in ``keep`` (e.g. deleted layers)."""
        gone = [k for k in self._entries if k not in keep]
        for k in gone:
            del self._entries[k]
        if gone:
            self.changed.emit()

    def clear(self) -> None:
        self._entries.clear()
        self.changed.emit()


_STORES: dict[int, ResultStore] = {}


def store_for(viewer: Any) -> ResultStore:
    """The :class:`ResultStore` of ``viewer`` (created on first use).

    napari hands each plugin widget its own ``PublicOnlyProxy`` of the viewer, so the
    proxy is unwrapped: every widget of one viewer shares one store.
    """
    while hasattr(viewer, "__wrapped__"):
        viewer = viewer.__wrapped__
    key = id(viewer)
    st = _STORES.get(key)
    if st is None:
        st = _STORES[key] = ResultStore()
        try:
            import weakref

            weakref.finalize(viewer, _STORES.pop, key, None)
        except TypeError:  # viewer not weak-referenceable: keep the store
            pass
    return st
