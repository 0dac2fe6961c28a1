"""Run an ImageJ macro in a fresh ImageJ and check that it really did its job.

:func:`run_macro` runs ``java -jar ij.jar -batch MACRO ARGS`` (under ``xvfb-run`` when
there is no display: ImageJ 1.x macros need one even in batch mode) and fails unless
every expected output was (re)written and no FocusQA error, macro error or unknown
command appeared, because ImageJ exits 0 even when a macro aborts.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fiji_bridge.jvm import FijiError, find_ij_jar, java_executable
from napari_focusqa.core.errors import FocusQAError

#: text the shipped macros print before an error (run-macro looks for it)
ERROR_MARK = "FocusQA error:"
#: ImageJ output lines that mean the macro did not do its job
IMAGEJ_FAILURES = (ERROR_MARK, "Macro Error", "[aborted]", "Macro or script not found",
                   "Unrecognized command")

EXIT_OK, EXIT_FAILED = 0, 1


def imagej_command(
    macro: str | os.PathLike[str],
    macro_args: str | None = None,
    *,
    imagej_dir: str | os.PathLike[str] | None = None,
    ij_jar: str | os.PathLike[str] | None = None,
    java_options: tuple[str, ...] = (),
    display: str | None = None,
) -> list[str]:
    """The command line that runs ``macro`` in batch mode (with ``xvfb-run`` if needed)."""
    java = java_executable()
    if java is None:
        raise FijiError("java: no Java runtime found (apt-get install default-jre, or set JAVA_HOME)")
    if ij_jar is not None:
        jar = find_ij_jar(ij_jar)
    elif imagej_dir is not None:
        try:
            jar = find_ij_jar(imagej_dir)
        except FocusQAError:
            jar = find_ij_jar()
    else:
        jar = find_ij_jar()
    cmd = [java, *java_options]
    if imagej_dir is not None:
        home = Path(imagej_dir).resolve()
        cmd += [f"-Dplugins.dir={home}", f"-Dij.dir={home}"]
    cmd += ["-jar", str(jar), "-batch", str(Path(macro).resolve())]
    if macro_args:
        cmd.append(macro_args)
    if display is None:
        display = os.environ.get("DISPLAY", "")
    if not display and sys.platform.startswith("linux"):
        xvfb = shutil.which("xvfb-run")
        if xvfb is None:
            raise FijiError(
                "DISPLAY: no display and xvfb-run not found; ImageJ macros need a display "
                "(apt-get install xvfb)"
            )
        cmd = [xvfb, "-a", *cmd]
    return cmd


def run_macro(
    macro: str | os.PathLike[str],
    macro_args: str | None = None,
    *,
    imagej_dir: str | os.PathLike[str] | None = None,
    ij_jar: str | os.PathLike[str] | None = None,
    expect: tuple[str | os.PathLike[str], ...] = (),
    timeout: float = 600.0,
    echo: bool = True,
) -> tuple[int, str]:
    """Run a macro in a fresh ImageJ; returns ``(exit_code, combined_output)``.

    The exit code is 1 when ImageJ failed, timed out (an ImageJ macro error opens a modal
    dialog that never closes under Xvfb), printed a FocusQA error, or did not write one
    of the ``expect`` files (written or updated after the start).
    """
    m = Path(macro)
    if not m.is_file():
        raise FijiError(f"MACRO: {m} does not exist")
    if timeout <= 0:
        raise FijiError(f"--timeout: expected a positive number of seconds, got {timeout}")
    cmd = imagej_command(m, macro_args, imagej_dir=imagej_dir, ij_jar=ij_jar)
    t0 = time.time()
    problems: list[str] = []
    code, out = _run_group(cmd, timeout)
    if code is None:
        problems.append(
            f"ImageJ did not finish within {timeout:g} s (a macro error dialog is probably "
            "open: check the macro); stopped it"
        )
    elif code != 0:
        problems.append(f"ImageJ exited with code {code}")
    if echo and out:
        sys.stdout.write(out if out.endswith("\n") else out + "\n")
    for line in out.splitlines():
        if any(mark in line for mark in IMAGEJ_FAILURES):
            problems.append(line.strip())
    for e in expect:
        p = Path(e)
        if not p.exists():
            problems.append(f"expected output {p} was not written (the macro probably aborted)")
        elif p.stat().st_mtime < t0 - 1:
            problems.append(f"expected output {p} is older than this run (not rewritten)")
    if problems:
        for msg in problems:
            print(f"focusqa fiji run-macro: {msg}", file=sys.stderr)
        return EXIT_FAILED, out
    return EXIT_OK, out


def _run_group(cmd: list[str], timeout: float) -> tuple[int | None, str]:
    """Run ``cmd`` in a process group of its own; ``(exit code or None on timeout, output)``.

    On timeout the whole group is stopped (``xvfb-run``'s Xvfb and ImageJ's java too, not
    only the ``xvfb-run`` shell), so a hung macro leaves nothing running.
    """
    posix = os.name == "posix"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=posix)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, (out or "") + (err or "")
    except subprocess.TimeoutExpired:
        _stop(proc, posix)
        out, err = proc.communicate()
        return None, _text(out) + _text(err)


def _stop(proc: subprocess.Popen[str], posix: bool) -> None:
    """SIGTERM the process group, give it 5 s, then SIGKILL whatever is left of it."""
    if not posix:  # pragma: no cover - no process groups on Windows
        proc.kill()
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _text(v: Any) -> str:
    if v is None:
        return ""
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)
