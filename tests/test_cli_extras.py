"""Sub-commands whose optional dependencies are missing say what to install."""

from __future__ import annotations

import subprocess
import sys

# a core-only install: pymmcore-plus is absent (None in sys.modules blocks the import)
SCRIPT = """
import sys
sys.modules["pymmcore_plus"] = None
from napari_focusqa.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True,
                          text=True, timeout=300)


def test_missing_extra_names_the_install() -> None:
    res = _run("acquire", "--stack", "s.tif", "--json", "-")
    assert res.returncode == 2, res.stderr
    assert "pymmcore_plus" in res.stderr and "napari-focusqa[microscope]" in res.stderr
    assert "Traceback" not in res.stderr
    # the core commands still work in the same install
    ok = _run("models")
    assert ok.returncode == 0 and "fqa-levels" in ok.stdout, ok.stderr
