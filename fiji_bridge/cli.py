"""``focusqa fiji ...``: install the macros into Fiji/ImageJ, run macros headless, and the
data exchange the macros use.

* ``focusqa fiji install FIJI_OR_IMAGEJ_DIR [--uninstall] [--python PY]`` copies
  "Assess Focus" and "Focus Curves" into ``plugins/FocusQA/`` (Plugins > FocusQA menu,
  ``run("Assess Focus", "...")``) and ``macros/FocusQA/`` (``runMacro(...)``), with the
  absolute path of this Python baked in.
* ``focusqa fiji run-macro MACRO.ijm [ARGS] [--expect PATH ...]`` runs
  ``java -jar ij.jar -batch MACRO ARGS`` (under ``xvfb-run`` when there is no display) and
  fails unless every expected output was written and no FocusQA error was reported
  (ImageJ exits 0 even when a macro aborts).
* ``focusqa fiji assess-for-macro IMAGE --out DIR`` is what the macros call: it assesses
  the image with the core and writes tab-separated tables the macro language can read
  (``results.tsv``, ``patches.tsv``, ``legend.tsv``, ``best.tsv``, ``curves.tsv``), CSV
  copies for users, and ``status.txt`` last (``ok<TAB>model`` or ``error<TAB>message``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from napari_focusqa.core.errors import FocusQAError

MACRO_DIR = Path(__file__).parent / "macros"
#: shipped macros: source file -> ImageJ command name
MACROS = {"Assess_Focus.ijm": "Assess Focus", "Focus_Curves.ijm": "Focus Curves"}
COMMON = "focusqa_common.ijm"
INSTALL_SUBDIR = "FocusQA"
MANIFEST = "focusqa-install.json"
#: text the shipped macros print before an error (run-macro looks for it)
ERROR_MARK = "FocusQA error:"
#: ImageJ output lines that mean the macro did not do its job
IMAGEJ_FAILURES = (ERROR_MARK, "Macro Error", "[aborted]", "Macro or script not found",
                   "Unrecognized command")

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class FijiCLIError(FocusQAError):
    """Bad input to a ``focusqa fiji`` command."""


# --------------------------------------------------------------------------------------
# install
# --------------------------------------------------------------------------------------
def python_executable() -> str:
    """Absolute path of this Python (not resolved: a venv's ``bin/python`` must stay)."""
    return os.path.abspath(sys.executable)


def render_macro(name: str, python: str | None = None) -> str:
    """Text of an installable macro: the macro, the shared functions, the Python path."""
    from napari_focusqa import __version__

    if name not in MACROS:
        raise FijiCLIError(f"macro: unknown macro {name!r} (known: {', '.join(MACROS)})")
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
        raise FijiCLIError(f"FIJI_OR_IMAGEJ_DIR: {d} is not a directory")
    marks = ("plugins", "macros", "jars", "ij.jar", "ImageJ.cfg", "Contents")
    if not any((d / m).exists() for m in marks):
        raise FijiCLIError(
            f"FIJI_OR_IMAGEJ_DIR: {d} does not look like a Fiji.app or ImageJ folder "
            "(no plugins/, macros/, jars/ or ij.jar); create a plugins/ folder there to use it"
        )
    return d.resolve()


def install(imagej_dir: str | os.PathLike[str], python: str | None = None) -> list[Path]:
    """Install the macros into ``imagej_dir``; returns the written files."""
    d = _check_imagej_dir(imagej_dir)
    py = python or python_executable()
    if not Path(py).is_file():
        raise FijiCLIError(f"--python: {py} does not exist")
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
        raise FijiCLIError(f"FIJI_OR_IMAGEJ_DIR: cannot write into {d}: {exc}") from exc
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
            raise FijiCLIError(f"FIJI_OR_IMAGEJ_DIR: unreadable {manifest}: {exc}") from exc
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


def cmd_install(args: argparse.Namespace) -> int:
    if args.uninstall:
        removed = uninstall(args.imagej_dir)
        if not removed:
            print(f"nothing to uninstall in {args.imagej_dir}")
        for p in removed:
            print(f"removed {p}")
        return EXIT_OK
    written = install(args.imagej_dir, args.python)
    for p in written:
        print(f"wrote {p}")
    print('Restart Fiji/ImageJ, then use Plugins > FocusQA > Assess Focus, or in a macro:\n'
          '  run("Assess Focus", "model=fqa-levels");')
    return EXIT_OK


# --------------------------------------------------------------------------------------
# run-macro
# --------------------------------------------------------------------------------------
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
    from fiji_bridge.bridge import find_ij_jar, java_executable

    java = java_executable()
    if java is None:
        raise FijiCLIError("java: no Java runtime found (apt-get install default-jre, or set JAVA_HOME)")
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
            raise FijiCLIError(
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
        raise FijiCLIError(f"MACRO: {m} does not exist")
    if timeout <= 0:
        raise FijiCLIError(f"--timeout: expected a positive number of seconds, got {timeout}")
    cmd = imagej_command(m, macro_args, imagej_dir=imagej_dir, ij_jar=ij_jar)
    t0 = time.time()
    problems: list[str] = []
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        out = (proc.stdout or "") + (proc.stderr or "")
        if proc.returncode != 0:
            problems.append(f"ImageJ exited with code {proc.returncode}")
    except subprocess.TimeoutExpired as exc:
        out = _text(exc.stdout) + _text(exc.stderr)
        problems.append(
            f"ImageJ did not finish within {timeout:g} s (a macro error dialog is probably "
            "open: check the macro)"
        )
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


def _text(v: Any) -> str:
    if v is None:
        return ""
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def cmd_run_macro(args: argparse.Namespace) -> int:
    code, _ = run_macro(
        args.macro, args.macro_args, imagej_dir=args.imagej_dir, ij_jar=args.ij_jar,
        expect=tuple(args.expect or ()), timeout=args.timeout,
    )
    return code


# --------------------------------------------------------------------------------------
# assess-for-macro
# --------------------------------------------------------------------------------------
def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (list, tuple)):
        return json.dumps(list(v))
    return str(v).replace("\t", " ").replace("\n", " ")


def _write_tsv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    lines = ["\t".join(columns)]
    lines += ["\t".join(_cell(r.get(c)) for c in columns) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _model(value: str | None) -> str | None:
    from napari_focusqa.core.model import default_model_id

    if value in (None, "", "default"):
        return default_model_id()
    if value.lower() == "none":
        return None
    return value


def assess_for_macro(
    image: str,
    out: str | os.PathLike[str],
    *,
    model: str | None = "default",
    label: str | None = None,
    frame: int = 0,
    patches: bool = True,
) -> dict[str, Any]:
    """Assess ``image`` and write the exchange files into ``out`` (see module docs)."""
    from fiji_bridge.bridge import legend_entries, patch_records, patch_rois, record_columns
    from napari_focusqa.core.assess import PATCH_COLUMNS, RECORD_COLUMNS
    from napari_focusqa.core.model import load_model
    from napari_focusqa.core.zstack import assess_stack
    from napari_focusqa.io import read_image
    from napari_focusqa.io.writer import write_csv

    outdir = Path(out)
    if not outdir.is_dir():
        raise FijiCLIError(f"--out: {outdir} is not a directory")
    img = read_image(image)
    nt = img.data.shape[0]
    if not 0 <= frame < nt:
        raise FijiCLIError(f"--frame: index {frame} out of range (0..{nt - 1})")
    mid = _model(model)
    fm = load_model(mid) if mid else None
    src = {"file": label or image}
    res = assess_stack(img.zcyx(frame), fm, z_step_um=img.z_step_um,
                       channel_names=img.channel_names, stains=img.stains, source=src)
    ordered = res.planes()
    if nt > 1:
        for s in ordered:
            s.source["t_index"] = frame
    records = [s.to_record() for s in ordered]
    cols = record_columns(records, RECORD_COLUMNS)
    _write_tsv(outdir / "results.tsv", records, cols)
    write_csv(records, outdir / "results.csv", RECORD_COLUMNS)

    k = 11
    overlay_rows: list[dict[str, Any]] = []
    if patches:
        for s in ordered:
            if s.num_classes:
                k = s.num_classes
            ci = int(s.source.get("channel_index") or 0) + 1
            zi = int(s.source.get("z_index") or 0) + 1
            for p in patch_rois(s):
                overlay_rows.append({
                    "c": ci, "z": zi, "t": frame + 1, "x": p["draw"][0], "y": p["draw"][1],
                    "w": p["draw"][2], "h": p["draw"][3], "level": p["level"],
                    "certainty": p["certainty"],
                    "color": p["hex"],
                    "name": f"focusqa patch c{ci} z{zi} t{frame + 1} r{p['row']} c{p['col']} "
                            f"level {p['level']} certainty {p['certainty']:.3f}",
                })
    _write_tsv(outdir / "patches.tsv", overlay_rows,
               ["c", "z", "t", "x", "y", "w", "h", "level", "certainty", "color", "name"])
    prec = patch_records(ordered) if patches else []
    write_csv(prec, outdir / "patches.csv",
              ["file", "channel", "channel_index", "stain", "z_index", "z_um", *PATCH_COLUMNS])
    legend = legend_entries(k) if overlay_rows else []
    _write_tsv(outdir / "legend.tsv", [{"level": e["level"], "color": e["hex"]} for e in legend],
               ["level", "color"])

    best = [{"channel_index": c.channel, "channel": c.name if c.name is not None else c.channel,
             "best_z_index": c.best_z_index, "best_z_um": c.best_z_um,
             "best_z_index_model": c.best_z_index_model} for c in res.channels]
    _write_tsv(outdir / "best.tsv", best,
               ["channel_index", "channel", "best_z_index", "best_z_um", "best_z_index_model"])
    curves = []
    for c in res.channels:
        sf = c.sf
        span = float(sf.max() - sf.min()) or 1.0
        lv = c.expected_level
        for z, s in enumerate(c.slices):
            curves.append({
                "channel_index": c.channel, "channel": c.name if c.name is not None else c.channel,
                "stain": c.stain, "z_index": z,
                "z_um": None if c.z_um is None else c.z_um[z],
                "sf": round(float(sf[z]), 6), "sf_norm": round(float((sf[z] - sf.min()) / span), 6),
                "expected_level": None if lv is None else round(float(lv[z]), 6),
                "predicted_level": s.predicted_level,
            })
    ccols = ["channel_index", "channel", "stain", "z_index", "z_um", "sf", "sf_norm",
             "expected_level", "predicted_level"]
    _write_tsv(outdir / "curves.tsv", curves, ccols)
    write_csv(curves, outdir / "curves.csv", ccols)
    return {"model": res.model_id, "planes": len(records), "patches": len(overlay_rows),
            "best": best}


def _write_status(out: str | os.PathLike[str], text: str) -> None:
    d = Path(out)
    if d.is_dir():
        tmp = d / "status.txt.tmp"
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, d / "status.txt")


def cmd_assess_for_macro(args: argparse.Namespace) -> int:
    try:
        info = assess_for_macro(args.image, args.out, model=args.model, label=args.label,
                                frame=args.frame, patches=not args.no_patches)
    except FocusQAError as exc:
        msg = str(exc).replace("\t", " ").replace("\n", " ")
        _write_status(args.out, f"error\t{msg}")
        print(f"{ERROR_MARK} {msg}")
        return EXIT_BAD_INPUT
    except Exception as exc:  # noqa: BLE001 - must reach the ImageJ log, not vanish
        msg = f"internal error: {type(exc).__name__}: {exc}".replace("\t", " ").replace("\n", " ")
        _write_status(args.out, f"error\t{msg}")
        print(f"{ERROR_MARK} {msg}")
        return EXIT_FAILED
    _write_status(args.out, f"ok\t{info['model'] or 'none (SF only)'}")
    print(f"ok: {info['planes']} planes, {info['patches']} patches, model {info['model']}")
    return EXIT_OK


# --------------------------------------------------------------------------------------
# argparse
# --------------------------------------------------------------------------------------
def register(subparsers: Any) -> None:
    """Add ``focusqa fiji ...`` to the ``focusqa`` command line."""
    f = subparsers.add_parser("fiji", help="Fiji/ImageJ: install macros, run macros headless")
    fsub = f.add_subparsers(dest="fiji_command", required=True)

    i = fsub.add_parser("install", help="install the FocusQA macros into Fiji.app or ImageJ")
    i.add_argument("imagej_dir", metavar="FIJI_OR_IMAGEJ_DIR")
    i.add_argument("--uninstall", action="store_true", help="remove the installed macros")
    i.add_argument("--python", default=None,
                   help="Python the macros call (default: this one, %(default)s)")
    i.set_defaults(func=cmd_install)

    r = fsub.add_parser("run-macro", help="run an ImageJ macro headless (Xvfb if no display)")
    r.add_argument("macro", metavar="MACRO.ijm")
    r.add_argument("macro_args", nargs="?", default=None, metavar="ARGS",
                   help="argument string passed to the macro (getArgument())")
    r.add_argument("--imagej-dir", default=None,
                   help="Fiji.app/ImageJ folder whose plugins/ to use (where you installed)")
    r.add_argument("--ij-jar", default=None, help="ij.jar to run (default: found automatically)")
    r.add_argument("--expect", action="append", metavar="PATH",
                   help="output the macro must write (repeatable); fail otherwise")
    r.add_argument("--timeout", type=float, default=600.0, help="seconds (default 600)")
    r.set_defaults(func=cmd_run_macro)

    a = fsub.add_parser("assess-for-macro", help="(used by the macros) assess and write TSV files")
    a.add_argument("image", metavar="IMAGE")
    a.add_argument("--out", required=True, metavar="DIR")
    a.add_argument("--model", default="default", help="model id/card, 'default' or 'none'")
    a.add_argument("--label", default=None, help="value of the 'file' column")
    a.add_argument("--frame", type=int, default=0, help="time frame (0-based)")
    a.add_argument("--no-patches", action="store_true", help="skip the per-patch overlay files")
    a.set_defaults(func=cmd_assess_for_macro)
