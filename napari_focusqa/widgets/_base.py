"""The base of the FocusQA dock widgets: viewer, task runner, event connections."""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QWidget

from napari_focusqa.widgets._worker import TaskRunner


class FocusDock(QWidget):
    """A dock widget with one :class:`TaskRunner` and event connections that are
    dropped (and the running task cancelled) when the widget is destroyed."""

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None,
                 **runner_callbacks: Any) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.runner = TaskRunner(**runner_callbacks)
        self._conns: list[tuple[Any, Any]] = []
        self.destroyed.connect(self._cleanup)

    def _connect(self, emitter: Any, cb: Any) -> None:
        emitter.connect(cb)
        self._conns.append((emitter, cb))

    def _cleanup(self, *_: Any) -> None:
        self.runner.cancel()
        for emitter, cb in self._conns:
            try:
                emitter.disconnect(cb)
            except (RuntimeError, TypeError, ValueError):  # already gone
                pass

    @property
    def running(self) -> bool:
        return self.runner.running

    @property
    def last_error(self) -> str | None:
        return self.runner.last_error
