"""Install the FocusQA macros into a Fiji.app or ImageJ folder (and remove them)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from fiji_bridge.jvm import FijiError
from napari_focusqa import __version__

MACRO_DIR = Path(__file__).parent / "macros"
#: shipped macros: source file -> ImageJ command name
MACROS = {"Assess_Focus.ijm": "Assess Focus", "Focus_Curves.ijm": "Focus Curves"}
COMMON = "focusqa_common.ijm"
INSTALL_SUBDIR = "FocusQA"
MANIFEST = "focusqa-install.json"


def python_executable() -> str:
    """Absolute path of this Python (not resolved: a venv's ``bin/python`` must stay)."""
    return os.path.abspath(sys.executable)


def render_macro(name: str, python: str | None = None) -> str:
    """Text of an installable macro: the macro, the shared functions, the Python path."""
    if name not in MACROS:
        raise FijiError(f"macro: unknown macro {name!r} (known: {', '.join(MACROS)})")
    py = python or python_executable()
    body = (MACRO_DIR / name).read_text(encoding="utf-8")
    common = (MACRO_DIR / COMMON).read_text(encoding="utf-8")
    text = body.rstrip() + "\n\n" + common
    # the macro language uses backslash escapes in strings: protect Windows paths
    return text.replace("@@FOCUSQA_PYTHON@@", py.replace("\\", "/")).replace(
        "@@FOCUSQA_VERSION@@", __version__
    )


def _check_imagej_dir(path: str | os.PathLike[str]) -> Path:
    d = Path(path).expanduser()
    if not d.is_dir():
        raise FijiError(f"FIJI_OR_IMAGEJ_DIR: {d} is not a directory")
    marks = ("plugins", "macros", "jars", "ij.jar", "ImageJ.cfg", "Contents")
    if not any((d / m).exists() for m in marks):
        raise FijiError(
            f"FIJI_OR_IMAGEJ_DIR: {d} does not look like a Fiji.app or ImageJ folder "
            "(no plugins/, macros/, jars/ or ij.jar); create a plugins/ folder there to use it"
        )
    return d.resolve()


def install(imagej_dir: str | os.PathLike[str], python: str | None = None) -> list[Path]:
    """Install the macros into ``imagej_dir``; returns the written files."""
    d = _check_imagej_dir(imagej_dir)
    py = python or python_executable()
    if not Path(py).is_file():
        raise FijiError(f"--python: {py} does not exist")
    written: list[Path] = []
    try:
        for top in ("plugins", "macros"):
            folder = d / top / INSTALL_SUBDIR
            folder.mkdir(parents=True, exist_ok=True)
            for name in MACROS:
                target = folder / name
                target.write_text(render_macro(name, py), encoding="utf-8")
                written.append(target)
        manifest = d / "plugins" / INSTALL_SUBDIR / MANIFEST
        manifest.write_text(
            json.dumps({"python": py, "files": [str(p.relative_to(d)) for p in written]},
                       indent=2) + "\n",
            encoding="utf-8",
        )
    except OSError as exc:
        raise FijiError(f"FIJI_OR_IMAGEJ_DIR: cannot write into {d}: {exc}") from exc
    written.append(manifest)
    return written


def uninstall(imagej_dir: str | os.PathLike[str]) -> list[Path]:
    """Remove what :func:`install` wrote; returns the removed files."""
    d = _check_imagej_dir(imagej_dir)
    manifest = d / "plugins" / INSTALL_SUBDIR / MANIFEST
    files: list[Path] = []
    if manifest.is_file():
        try:
            files = [d / f for f in json.loads(manifest.read_text(encoding="utf-8"))["files"]]
        except (ValueError, KeyError) as exc:
            raise FijiError(f"FIJI_OR_IMAGEJ_DIR: unreadable {manifest}: {exc}") from exc
        files.append(manifest)
    else:
        files = [d / top / INSTALL_SUBDIR / n for top in ("plugins", "macros") for n in MACROS]
    removed = []
    for f in files:
        if f.is_file() and d in f.resolve().parents:
            f.unlink()
            removed.append(f)
    for top in ("plugins", "macros"):
        folder = d / top / INSTALL_SUBDIR
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return removed
