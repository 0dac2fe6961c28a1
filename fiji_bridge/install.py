"""The FocusQA macros as a Fiji update site, and installing them into Fiji/ImageJ.

The layout is an update site's: files at the same paths they have in ``Fiji.app``::

    plugins/FocusQA/Assess_Focus.ijm     menu Plugins > FocusQA > Assess Focus
    plugins/FocusQA/Focus_Curves.ijm     and run("Assess Focus", "...") in macros
    macros/FocusQA/Assess_Focus.ijm      for runMacro(path, "key=value ...")
    macros/FocusQA/Focus_Curves.ijm

These files are the same for every user and every Python environment (they carry the
FocusQA version and the exchange protocol, nothing else), so ``focusqa fiji
update-site DIR`` writes exactly what an update site serves. The one per-user file is
``plugins/FocusQA/focusqa.cfg`` (``python=/path/to/python``), written by ``focusqa fiji
install``: updating FocusQA in that environment (``pip install -U``) or updating the
macros (Fiji's updater, or ``install`` again) keeps it, so neither needs the other
reinstalled. ``$FOCUSQA_PYTHON`` overrides the file.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from fiji_bridge import MACRO_PROTOCOL
from fiji_bridge.jvm import FijiError
from napari_focusqa import __version__
from napari_focusqa.core.stains import STAIN_CLASSES

MACRO_DIR = Path(__file__).parent / "macros"
#: shipped macros: source file -> ImageJ command name
MACROS = {"Assess_Focus.ijm": "Assess Focus", "Focus_Curves.ijm": "Focus Curves"}
COMMON = "focusqa_common.ijm"
INSTALL_SUBDIR = "FocusQA"
#: update-site folders (relative to Fiji.app) that get a FocusQA/ copy of every macro
SITE_DIRS = ("plugins", "macros")
CONFIG = "focusqa.cfg"
MANIFEST = "focusqa-install.json"


def python_executable() -> str:
    """Absolute path of this Python (not resolved: a venv's ``bin/python`` must stay)."""
    return os.path.abspath(sys.executable)


def render_macro(name: str) -> str:
    """Text of a shipped macro: the macro, then the shared functions.

    The same for every installation: the Python to call is read from the config file
    at run time (see the module docs).
    """
    if name not in MACROS:
        raise FijiError(f"macro: unknown macro {name!r} (known: {', '.join(MACROS)})")
    body = (MACRO_DIR / name).read_text(encoding="utf-8")
    common = (MACRO_DIR / COMMON).read_text(encoding="utf-8")
    text = body.rstrip() + "\n\n" + common
    return (text.replace("@@FOCUSQA_VERSION@@", __version__)
            .replace("@@FOCUSQA_PROTOCOL@@", str(MACRO_PROTOCOL))
            .replace("@@FOCUSQA_STAINS@@", "|".join(("auto", *STAIN_CLASSES))))


def site_files() -> dict[str, str]:
    """The update site: relative path (``/``-separated) -> file text."""
    return {f"{top}/{INSTALL_SUBDIR}/{name}": render_macro(name)
            for top in SITE_DIRS for name in MACROS}


def _write(path: Path, text: str) -> None:
    """Write ``text`` atomically (a half-written macro never reaches ImageJ)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_update_site(out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write the update-site files into ``out_dir`` (created); returns them."""
    d = Path(out_dir).expanduser()
    written = []
    try:
        for rel, text in site_files().items():
            _write(d / rel, text)
            written.append(d / rel)
    except OSError as exc:
        raise FijiError(f"OUT_DIR: cannot write into {d}: {exc}") from exc
    return written


def config_path(imagej_dir: str | os.PathLike[str]) -> Path:
    return Path(imagej_dir) / "plugins" / INSTALL_SUBDIR / CONFIG


def config_text(python: str) -> str:
    # the macro language uses backslash escapes in strings: protect Windows paths
    return ("# FocusQA for Fiji/ImageJ, written by `focusqa fiji install`.\n"
            "# The Python environment with napari-focusqa that the macros call; edit it or\n"
            "# run `focusqa fiji install` again if the environment moves.\n"
            f"python={python.replace(chr(92), '/')}\n")


def read_config(imagej_dir: str | os.PathLike[str]) -> dict[str, str]:
    """``key=value`` lines of the config file (``{}`` when there is none)."""
    p = config_path(imagej_dir)
    if not p.is_file():
        return {}
    out = {}
    for line in p.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            out[key.strip()] = value.strip()
    return out


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
    """Install the update-site files and the config into ``imagej_dir``.

    Returns the written files (macros, config, then the manifest that
    :func:`uninstall` reads).
    """
    d = _check_imagej_dir(imagej_dir)
    py = python or python_executable()
    if not Path(py).is_file():
        raise FijiError(f"--python: {py} does not exist")
    written = write_update_site(d)
    try:
        cfg = config_path(d)
        _write(cfg, config_text(py))
        written.append(cfg)
        manifest = d / "plugins" / INSTALL_SUBDIR / MANIFEST
        _write(manifest, json.dumps(
            {"version": __version__, "protocol": MACRO_PROTOCOL, "python": py,
             "files": [p.relative_to(d).as_posix() for p in written]}, indent=2) + "\n")
    except OSError as exc:
        raise FijiError(f"FIJI_OR_IMAGEJ_DIR: cannot write into {d}: {exc}") from exc
    written.append(manifest)
    return written


def uninstall(imagej_dir: str | os.PathLike[str]) -> list[Path]:
    """Remove what :func:`install` wrote; returns the removed files."""
    d = _check_imagej_dir(imagej_dir)
    manifest = d / "plugins" / INSTALL_SUBDIR / MANIFEST
    if manifest.is_file():
        try:
            files = [d / f for f in json.loads(manifest.read_text(encoding="utf-8"))["files"]]
        except (ValueError, KeyError) as exc:
            raise FijiError(f"FIJI_OR_IMAGEJ_DIR: unreadable {manifest}: {exc}") from exc
        files.append(manifest)
    else:
        files = [d / rel for rel in site_files()] + [config_path(d)]
    removed = []
    for f in files:
        if f.is_file() and d in f.resolve().parents:
            f.unlink()
            removed.append(f)
    for top in SITE_DIRS:
        folder = d / top / INSTALL_SUBDIR
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return removed
