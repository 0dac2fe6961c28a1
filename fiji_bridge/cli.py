"""``focusqa fiji ...``: install the macros into Fiji/ImageJ, run macros headless, and the
data exchange the macros use (argument parsing only; the work is in
:mod:`fiji_bridge.install`, :mod:`fiji_bridge.runner` and :mod:`fiji_bridge.exchange`).

* ``focusqa fiji install FIJI_OR_IMAGEJ_DIR [--uninstall] [--python PY]``
* ``focusqa fiji update-site OUT_DIR`` (the files a Fiji update site serves)
* ``focusqa fiji run-macro MACRO.ijm [ARGS] [--expect PATH ...]``
* ``focusqa fiji assess-for-macro IMAGE --out DIR`` (what the macros call, as
  ``python -m fiji_bridge assess-for-macro ...``, which starts faster)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from fiji_bridge.exchange import assess_for_macro, check_protocol, write_status
from fiji_bridge.install import CONFIG, install, uninstall, write_update_site
from fiji_bridge.runner import ERROR_MARK, EXIT_FAILED, EXIT_OK, run_macro
from napari_focusqa.core.errors import FocusQAError

EXIT_BAD_INPUT = 2


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
          '  run("Assess Focus", "model=fqa-levels");\n'
          f'Updating FocusQA in this Python keeps working; {CONFIG} holds the Python path.')
    return EXIT_OK


def cmd_update_site(args: argparse.Namespace) -> int:
    for p in write_update_site(args.out_dir):
        print(f"wrote {p}")
    return EXIT_OK


def cmd_run_macro(args: argparse.Namespace) -> int:
    code, _ = run_macro(
        args.macro, args.macro_args, imagej_dir=args.imagej_dir, ij_jar=args.ij_jar,
        expect=tuple(args.expect or ()), timeout=args.timeout,
    )
    return code


def cmd_assess_for_macro(args: argparse.Namespace) -> int:
    try:
        check_protocol(args.protocol)
        stains = None if args.stains is None else [s.strip() for s in args.stains.split(",")]
        info = assess_for_macro(args.image, args.out, model=args.model, label=args.label,
                                frame=args.frame, mode=args.mode, stains=stains,
                                patches=not args.no_patches)
    except FocusQAError as exc:
        msg = str(exc).replace("\t", " ").replace("\n", " ")
        write_status(args.out, f"error\t{msg}")
        print(f"{ERROR_MARK} {msg}")
        return EXIT_BAD_INPUT
    except Exception as exc:  # noqa: BLE001 - must reach the ImageJ log, not vanish
        msg = f"internal error: {type(exc).__name__}: {exc}".replace("\t", " ").replace("\n", " ")
        write_status(args.out, f"error\t{msg}")
        print(f"{ERROR_MARK} {msg}")
        return EXIT_FAILED
    write_status(args.out, f"ok\t{info['model'] or 'none (SF only)'}")
    print(f"ok: {info['planes']} planes, {info['patches']} patches, model {info['model']}")
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add ``focusqa fiji ...`` to the ``focusqa`` command line."""
    f = subparsers.add_parser("fiji", help="Fiji/ImageJ: install macros, run macros headless")
    add_commands(f.add_subparsers(dest="fiji_command", required=True))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fiji_bridge COMMAND ...``: the ``focusqa fiji`` commands alone.

    What the macros call: it loads no other FocusQA sub-command (the full ``focusqa``
    parser imports the acquisition stack, about 2 s per macro run).
    """
    parser = argparse.ArgumentParser(prog="python -m fiji_bridge",
                                     description="FocusQA's Fiji/ImageJ commands")
    add_commands(parser.add_subparsers(dest="fiji_command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except FocusQAError as exc:
        print(f"python -m fiji_bridge {args.fiji_command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def add_commands(fsub: Any) -> None:
    """The ``install``, ``update-site``, ``run-macro`` and ``assess-for-macro`` parsers."""
    i = fsub.add_parser("install", help="install the FocusQA macros into Fiji.app or ImageJ")
    i.add_argument("imagej_dir", metavar="FIJI_OR_IMAGEJ_DIR")
    i.add_argument("--uninstall", action="store_true", help="remove the installed macros")
    i.add_argument("--python", default=None,
                   help="Python the macros call (default: this one, %(default)s)")
    i.set_defaults(func=cmd_install)

    u = fsub.add_parser("update-site", help="write the macros as a Fiji update site's files")
    u.add_argument("out_dir", metavar="OUT_DIR")
    u.set_defaults(func=cmd_update_site)

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
    a.add_argument("--frame", type=int, default=None,
                   help="time frame (0-based; default: all, so a time series needs it)")
    a.add_argument("--mode", choices=("stack", "planes"), default="stack",
                   help="z-stack (best slice, curves) or independent planes")
    a.add_argument("--stains", default=None,
                   help="stain per channel, comma-separated; auto = from the channel name")
    a.add_argument("--protocol", type=int, default=None,
                   help="exchange protocol the calling macro speaks (checked)")
    a.add_argument("--no-patches", action="store_true", help="skip the per-patch overlay files")
    a.set_defaults(func=cmd_assess_for_macro)
