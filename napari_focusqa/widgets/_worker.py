"""The one background-task runner of the FocusQA dock widgets.

A task is a plain function ``fn(*args, emit=..., cancel=...)`` (core or pipeline code,
no Qt): ``emit(done, total)`` reports progress, ``emit(item=...)`` hands a partial result
(e.g. a live camera image) to the GUI, ``cancel()`` returns True once the user pressed
Cancel. :class:`TaskRunner` runs it in a helper thread inside a napari ``thread_worker``
generator, so that:

- progress shows as a napari ``progress`` bar in the activity dock (and in the widget);
- **Cancel** (the widget's button, or napari's status-bar cancel, ``worker.quit()``)
  reaches the task within one plane/file;
- errors and cancellation are reported with ``napari.utils.notifications``;
- the result arrives on the GUI thread through ``worker.returned``.

While a task runs, the animated "in progress" spinner that napari's activity dock puts
in the status bar is held still (:func:`still_spinners`). With software OpenGL (Mesa
llvmpipe: VMs, remote desktops, Xvfb) each of its 33 frames per second recomposites the
whole window, canvas included: ``benchmarks/bench_napari.py`` measured 25 s of CPU in
a 42 s assessment of 40 x 3 x 2048², taken from the task on a 2-core machine. The
activity dock's progress bar and the widget's own bar still move.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

from napari_focusqa.core.errors import Cancelled, FocusQAError

HEARTBEAT_S = 0.2
#: GUI progress updates at most this often: each repaint of the window also recomposites
#: the OpenGL canvas (~0.1 s with software rendering), so per-plane updates of a
#: 120-plane stack would cost the GUI thread seconds
PROGRESS_INTERVAL_S = 0.25


def _task_generator(fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any],
                    cancel: threading.Event) -> Generator[Any, None, Any]:
    """Run ``fn`` in a helper thread; yield its progress/items; return
    ``("ok", result)`` or ``("error", exception)``."""
    q: queue.Queue[Any] = queue.Queue()
    box: dict[str, Any] = {}
    _END = object()

    def emit(done: int | None = None, total: int | None = None, *, item: Any = None) -> None:
        q.put(("progress", done, total) if item is None else ("item", item))

    def target() -> None:
        try:
            box["result"] = fn(*args, emit=emit, cancel=cancel.is_set, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the worker below
            box["error"] = exc
        finally:
            q.put(_END)

    th = threading.Thread(target=target, name="focusqa-task", daemon=True)
    th.start()
    try:
        while True:
            try:
                msg = q.get(timeout=HEARTBEAT_S)
            except queue.Empty:
                yield None  # lets napari's worker notice quit() between slow steps
                continue
            if msg is _END:
                break
            yield msg
    finally:
        if th.is_alive():  # the worker was quit or closed: stop the task too
            cancel.set()
    # returned, never raised: superqt treats a RuntimeError (e.g. Cancelled) coming out
    # of a generator as "worker deleted" and then emits no finished signal
    if "error" in box:
        return ("error", box["error"])
    return ("ok", box.get("result"))


def still_spinners() -> int:
    """Pause every running ``QMovie`` shown by a ``QLabel`` of the application's windows
    (napari's status-bar activity spinner; napari restarts it with its next progress
    bar and stops it when the last one ends). Returns how many were paused."""
    from qtpy.QtGui import QMovie
    from qtpy.QtWidgets import QApplication, QLabel

    app = QApplication.instance()
    n = 0
    for top in app.topLevelWidgets() if isinstance(app, QApplication) else []:
        for label in top.findChildren(QLabel):
            mov = label.movie()
            if mov is not None and mov.state() == QMovie.MovieState.Running:
                mov.setPaused(True)
                n += 1
    return n


class TaskRunner:
    """Runs one task at a time for a widget (see module docstring).

    Parameters
    ----------
    on_progress : callable ``(done, total)``, optional
        Called on the GUI thread after each progress report.
    on_item : callable ``(item)``, optional
        Called on the GUI thread for each partial result.
    on_finished : callable ``()``, optional
        Called on the GUI thread when a task ends, however it ends.
    """

    def __init__(self, on_progress: Callable[[int, int], None] | None = None,
                 on_item: Callable[[Any], None] | None = None,
                 on_finished: Callable[[], None] | None = None) -> None:
        self.worker: Any = None
        self.last_error: str | None = None
        self._cancel = threading.Event()
        self._pbar: Any = None
        self._handled = False
        self._last_progress = 0.0
        self._on_progress = on_progress
        self._on_item = on_item
        self._on_finished = on_finished

    @property
    def running(self) -> bool:
        return self.worker is not None

    def error(self, msg: str) -> None:
        """Report a problem to the user as a napari notification (and keep it)."""
        from napari.utils.notifications import show_error

        self.last_error = msg
        show_error(msg)

    def start(self, fn: Callable[..., Any], *args: Any, desc: str, total: int = 0,
              on_done: Callable[[Any], None], **kwargs: Any) -> Any:
        """Start ``fn`` (see module docstring); returns the napari worker or None."""
        from napari.qt.threading import create_worker
        from napari.utils import progress

        if self.worker is not None:
            self.error("FocusQA: a task is already running; wait or press Cancel")
            return None
        self.last_error = None
        self._handled = False
        self._cancel = threading.Event()
        self._pbar = progress(total=total or None, desc=desc)
        still_spinners()  # the activity dock has just started its spinner
        worker = create_worker(_task_generator, fn, args, kwargs, self._cancel,
                               _start_thread=False, _ignore_errors=True)
        worker.yielded.connect(self._yielded)
        worker.returned.connect(lambda out: self._returned(out, on_done))
        worker.errored.connect(self._errored)
        worker.aborted.connect(self._aborted)
        worker.finished.connect(self._finished)
        self.worker = worker
        worker.start()
        return worker

    def cancel(self) -> None:
        """Stop the running task at its next plane/file (it is reported as cancelled)."""
        self._cancel.set()  # the task raises Cancelled at its next plane/file

    # ---------------------------------------------------------------- GUI thread
    def _yielded(self, msg: Any) -> None:
        if msg is None:
            return
        if msg[0] == "progress":
            _, done, total = msg
            now = time.monotonic()
            if done != total and now - self._last_progress < PROGRESS_INTERVAL_S:
                return
            self._last_progress = now
            if self._pbar is not None and done is not None:
                if total and self._pbar.total != total:
                    self._pbar.total = total
                self._pbar.n = done
                self._pbar.refresh()
            if self._on_progress is not None and done is not None:
                self._on_progress(int(done), int(total or 0))
        elif self._on_item is not None:
            self._on_item(msg[1])

    def _returned(self, out: tuple[str, Any], on_done: Callable[[Any], None]) -> None:
        self._handled = True
        status, value = out
        if status == "ok":
            on_done(value)
        else:
            self._errored(value)

    def _errored(self, exc: BaseException) -> None:
        if isinstance(exc, Cancelled):
            self._aborted()
        elif isinstance(exc, FocusQAError):
            self.error(str(exc))
        else:
            self.error(f"FocusQA: {type(exc).__name__}: {exc}")

    def _aborted(self) -> None:
        from napari.utils.notifications import show_info

        self._cancel.set()
        self._handled = True
        self.last_error = "Cancelled"
        show_info("FocusQA: cancelled; no results were changed")

    def _finished(self) -> None:
        if not self._handled:  # quit() from napari's status bar: no result came back
            self._aborted()
        self.worker = None
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
        if self._on_finished is not None:
            self._on_finished()
