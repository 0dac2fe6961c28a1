"""Test helpers: skip (locally) or fail (CI) when Java / ImageJ / a display is missing,
and :func:`record_dialog_runs`, which presses commands' dialogs in a real ImageJ GUI with
the macro Recorder open (``python -m fiji_bridge.testing record SPEC OUT`` under Xvfb).

``FOCUSQA_REQUIRE_JAVA=1`` or ``FOCUSQA_REQUIRE_ALL=1`` (set by CI) turns every skip into a failure, so CI proves the
Fiji bridge against a real ImageJ instead of silently skipping it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _skip_or_fail(msg: str) -> None:
    import pytest

    if "1" in (os.environ.get("FOCUSQA_REQUIRE_JAVA"), os.environ.get("FOCUSQA_REQUIRE_ALL")):
        pytest.fail(msg + " but FOCUSQA_REQUIRE_JAVA=1 (or FOCUSQA_REQUIRE_ALL=1)")
    pytest.skip(msg)


def require_java() -> Path:
    """Path of ``ij.jar``; skip/fail when Java, ImageJ or scyjava is missing."""
    from fiji_bridge.jvm import FijiError, find_ij_jar, java_executable

    if java_executable() is None:
        _skip_or_fail("Java runtime not found (apt-get install default-jre)")
    try:
        jar = find_ij_jar()
    except FijiError as exc:
        _skip_or_fail(f"ImageJ not available: {exc}")
        raise  # unreachable: skip/fail raise
    try:
        import scyjava  # noqa: F401
    except ImportError:
        _skip_or_fail("scyjava not installed (pip install 'napari-focusqa[fiji]')")
    return jar


def require_display() -> None:
    """Skip/fail when ImageJ macros cannot get a display (no DISPLAY and no xvfb-run)."""
    if os.environ.get("DISPLAY"):
        return
    if sys.platform.startswith("linux") and shutil.which("xvfb-run") is None:
        _skip_or_fail("no DISPLAY and xvfb-run not found (apt-get install xvfb)")


# --------------------------------------------------------------------------------------
# driving a command's dialog in a real ImageJ GUI (under Xvfb) with the Recorder open
# --------------------------------------------------------------------------------------
def record_dialog_runs(
    imagej_dir: str,
    image: str,
    runs: Sequence[dict[str, Any]],
    *,
    timeout: float = 300.0,
    screenshot: str | None = None,
) -> dict[str, Any]:
    """Run commands from their dialogs as a user would, with the macro Recorder open.

    Starts a *non-headless* ImageJ in this process (call it in a child process under
    Xvfb: JPype allows one JVM per process) and opens ``image``. Each of ``runs`` is a
    dict with ``command``, optional ``strings``, ``choices``, ``numbers`` and ``checks``
    (values for the dialog's fields of that type, in their order; ``None`` keeps a
    default) and ``done_marker``: the command is started the way a menu click does
    (``ij.Executer``), its dialog filled, OK pressed, and the Log watched until the marker
    (or a FocusQA error) appears. ``screenshot``: a PNG of the first filled dialog.

    Returns ``{"recorded": Recorder text, "log": Log text}``.
    """
    import scyjava

    from fiji_bridge.jvm import find_ij_jar

    scyjava.config.set_java_constraints(fetch="never")
    scyjava.config.add_classpath(str(find_ij_jar()))
    scyjava.config.add_option(f"-Dplugins.dir={Path(imagej_dir).resolve()}")
    scyjava.start_jvm()
    jimport = scyjava.jimport
    IJ = jimport("ij.IJ")  # noqa: N806 - Java class names
    ImageJ = jimport("ij.ImageJ")  # noqa: N806
    ImageJ()
    IJ.run("Record...")
    imp = IJ.openImage(str(image))
    if imp is None:
        raise RuntimeError(f"image: ImageJ cannot open {image}")
    imp.show()
    deadline = time.monotonic() + timeout
    WindowManager = jimport("ij.WindowManager")  # noqa: N806
    while WindowManager.getCurrentImage() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    for k, run in enumerate(runs):
        start = len(str(IJ.getLog() or ""))
        command = str(run["command"])
        jimport("ij.Executer")(command, imp)  # what a menu click does: a thread runs it
        gd = _wait_for_dialog(jimport, command, deadline)
        _fill(gd, run)
        if screenshot and k == 0:
            time.sleep(1.0)  # let AWT paint the filled fields
            shot = jimport("java.awt.Robot")().createScreenCapture(gd.getBounds())
            jimport("javax.imageio.ImageIO").write(shot, "png", jimport("java.io.File")(screenshot))
        ActionEvent = jimport("java.awt.event.ActionEvent")  # noqa: N806
        gd.actionPerformed(ActionEvent(gd.getButtons()[0], ActionEvent.ACTION_PERFORMED, "OK"))
        marker = str(run.get("done_marker", "FocusQA:"))
        log = ""
        while time.monotonic() < deadline:
            log = str(IJ.getLog() or "")[start:]
            if marker in log or "FocusQA error" in log:
                break
            time.sleep(0.2)
        else:
            raise TimeoutError(f"{command} did not finish within {timeout:g} s; log: {log}")
        time.sleep(1.0)  # the Recorder writes the command when it returns
    recorded = str(jimport("ij.plugin.frame.Recorder").getInstance().getText())
    return {"recorded": recorded, "log": str(IJ.getLog() or "")}


def _fill(gd: Any, run: dict[str, Any]) -> None:
    """Type the run's values into the dialog's fields (in their order per type)."""
    for fields, values, setter in (
        (gd.getStringFields(), run.get("strings", ()), lambda f, v: f.setText(str(v))),
        (gd.getChoices(), run.get("choices", ()), lambda f, v: f.select(str(v))),
        (gd.getNumericFields(), run.get("numbers", ()), lambda f, v: f.setText(str(v))),
        (gd.getCheckboxes(), run.get("checks", ()), lambda f, v: f.setState(bool(v))),
    ):
        for i, v in enumerate(values):
            if v is not None:
                setter(fields.get(i), v)


def _wait_for_dialog(jimport: Any, title: str, deadline: float) -> Any:
    Window = jimport("java.awt.Window")  # noqa: N806
    GenericDialog = jimport("ij.gui.GenericDialog")  # noqa: N806
    while time.monotonic() < deadline:
        for w in Window.getWindows():
            if isinstance(w, GenericDialog) and w.isShowing() and str(w.getTitle()) == title:
                return w
        time.sleep(0.1)
    raise TimeoutError(f"the {title!r} dialog did not open")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fiji_bridge.testing record SPEC.json OUT.json`` (run under Xvfb):
    :func:`record_dialog_runs` with the keyword arguments in SPEC, its result into OUT."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3 or args[0] != "record":
        print("usage: python -m fiji_bridge.testing record SPEC.json OUT.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(args[1]).read_text(encoding="utf-8"))
    out = record_dialog_runs(**spec)
    Path(args[2]).write_text(json.dumps(out), encoding="utf-8")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # ImageJ's AWT threads would keep the process alive
