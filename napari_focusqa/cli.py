"""The ``focusqa`` command line.

Exit codes: 0 success, 2 bad input (one line on stderr naming the file and the problem),
1 unexpected internal error. ``-`` as an output means stdout (JSON).

Feature modules add their own sub-commands through a ``register(subparsers)`` function
listed in :data:`PLUGIN_MODULES`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from napari_focusqa._args import add_optics_args, optics_from_args
from napari_focusqa.core.errors import FocusQAError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

#: modules that contribute sub-commands (``register(subparsers)``); missing ones skipped
PLUGIN_MODULES = (
    "napari_focusqa.autofocus.cli",
    "napari_focusqa.batch.cli",
    "napari_focusqa.acquire.cli",
    "napari_focusqa.bioimageio.cli",
    "fiji_bridge.cli",
)

#: the pip extra that brings what each feature module needs
PLUGIN_EXTRAS = {
    "napari_focusqa.autofocus.cli": ("microscope", ("autofocus", "calibrate")),
    "napari_focusqa.batch.cli": ("dask", ("batch",)),
    "napari_focusqa.acquire.cli": ("microscope", ("acquire",)),
    "napari_focusqa.bioimageio.cli": ("bioimageio", ("export",)),
    "fiji_bridge.cli": ("fiji", ("fiji",)),
}


class CLIError(FocusQAError):
    """Bad command-line input."""


def _model_arg(value: str | None) -> Any:
    """CLI ``--model`` value to a :func:`napari_focusqa.pipeline.resolve_model` reference."""
    return None if value in (None, "") else value


def cmd_assess(args: argparse.Namespace) -> int:
    from napari_focusqa.core.assess import RECORD_COLUMNS
    from napari_focusqa.io.writer import write_csv, write_json
    from napari_focusqa.pipeline import iter_planes, resolve_model

    model = resolve_model(_model_arg(args.model))
    records = []
    for path in args.paths:
        for image, res in iter_planes(path, model, t=args.t, series=args.series,
                                      optics=optics_from_args(args)):
            records.append(res.to_record())
            if args.overlay:
                from napari_focusqa.plots import render_overlay

                s = res.source
                stem = Path(path).name.split(".")[0]
                name = f"{stem}_c{s['channel_index']}_z{s['z_index']:03d}"
                if "t_index" in s:
                    name += f"_t{s['t_index']}"
                if "series" in s:
                    name += f"_s{s['series']}"
                render_overlay(image, res, Path(args.overlay) / f"{name}.png")
    if args.json:
        write_json(records, args.json)
    if args.csv:
        write_csv(records, args.csv, RECORD_COLUMNS)
    if not args.json and not args.csv:
        _print_table(records)
    return EXIT_OK


def _print_table(records: list[dict[str, Any]]) -> None:
    cols = ("file", "channel", "z_index", "predicted_level", "expected_level",
            "mean_certainty", "aggregate_certainty", "in_focus", "sf")
    print("\t".join(cols))
    for r in records:
        print("\t".join("" if r.get(c) is None else str(r.get(c)) for c in cols))


def cmd_zstack(args: argparse.Namespace) -> int:
    from napari_focusqa.io.writer import write_json
    from napari_focusqa.pipeline import assess_file, resolve_model

    model = resolve_model(_model_arg(args.model))
    results = assess_file(args.path, model, "stack", t=args.t, series=args.series,
                          channel=args.channel, optics=optics_from_args(args))
    if args.plot:
        from napari_focusqa.plots import plot_focus_curves

        for i, res in enumerate(results):
            plot = Path(args.plot)
            if len(results) > 1:  # one plot per series / time point
                plot = plot.with_name(f"{plot.stem}{_tag(res.source)}{plot.suffix}")
                if i == 0:
                    print(f"{args.path}: {len(results)} stacks (series x time points); "
                          "one plot each", file=sys.stderr)
            plot_focus_curves(res, plot, title=Path(args.path).name + _tag(res.source))
    if args.extract:
        _extract(args, results)
    if args.json:
        # one stack: one object (as always); several series / time points: a list of them
        docs = [r.to_dict() for r in results]
        write_json(docs[0] if len(docs) == 1 else docs, args.json)
    else:
        for res in results:
            tag = _tag(res.source)
            for c in res.channels:
                print(f"{tag.strip('_') + ' ' if tag else ''}channel {c.channel} "
                      f"({c.name or '-'}, {c.stain}): best z index {c.best_z_index}"
                      + (f" = {c.best_z_um} µm" if c.best_z_um is not None else "")
                      + f" (SF {c.best_z_index_sf}, model {c.best_z_index_model}, "
                        f"confidence {c.best_z_confidence:.2f})")
    return EXIT_OK


def _extract(args: argparse.Namespace, results: list[Any]) -> None:
    """``--extract``: best-focus substack(s) as ImageJ TIFF (napari_focusqa.outputs)."""
    from napari_focusqa.outputs import extract_substack, write_substack
    from napari_focusqa.pipeline import iter_images

    for s, img in iter_images(args.path, series=args.series):
        for res in (r for r in results if r.source.get("series") == s):
            chans = [c.channel for c in res.channels]
            ref = args.reference_channel
            if ref is not None and ref not in chans:
                raise CLIError(f"--reference-channel: {ref} is not an assessed channel {chans}")
            sub = extract_substack(img.zcyx(res.source.get("t_index") or 0)[:, chans],
                                   [c.best_z_index for c in res.channels], planes=args.planes,
                                   reference_channel=None if ref is None else chans.index(ref))
            out = Path(args.extract)
            if len(results) > 1:
                out = out.with_name(f"{out.name.split('.')[0]}{_tag(res.source)}{out.suffix}")
            write_substack(out, sub, z_step_um=img.z_step_um, pixel_size_um=img.pixel_size_um,
                           channel_names=[c.name for c in res.channels])
            print(f"{out}: planes {sub.z_indices} (channels {chans})", file=sys.stderr)


def _tag(source: dict[str, Any]) -> str:
    tag = ""
    if source.get("series") is not None:
        tag += f"_s{source['series']}"
    if source.get("t_index") is not None:
        tag += f"_t{source['t_index']}"
    return tag


def cmd_models(args: argparse.Namespace) -> int:
    """List installed models; exit 1 when any card is INVALID (listed, never hidden)."""
    from napari_focusqa.core.model import load_model, models_summary
    from napari_focusqa.io.writer import write_json

    rows = models_summary()
    for r in rows:
        if r.get("error"):
            r["valid"] = False
            continue
        r.pop("error", None)
        try:
            load_model(str(r["card"]))
            r["valid"] = True
        except FocusQAError as exc:
            r["valid"] = False
            r["error"] = str(exc)
    invalid = [r for r in rows if not r["valid"]]
    if args.json:
        write_json(rows, args.json)
    else:
        if not rows:
            print("no models installed (looked in FOCUSQA_MODELS_DIR, ./models, the package)")
        for r in rows:
            status = "ok" if r["valid"] else f"INVALID: {r.get('error')}"
            print(f"{r['id']!s:<16} {r['task']!s:<13} patch {r['patch_size']}  {status}  "
                  f"{r['card']}")
    if invalid:
        print(f"focusqa models: {len(invalid)} invalid model card(s): "
              + ", ".join(str(r["id"]) for r in invalid), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from napari_focusqa.core.assess import RECORD_COLUMNS
    from napari_focusqa.core.model import default_model_id
    from napari_focusqa.core.zstack import assess_stack
    from napari_focusqa.io.sample_data import make_sample_stack
    from napari_focusqa.io.writer import write_csv, write_json
    from napari_focusqa.plots import plot_focus_curves, render_overlay

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sample = make_sample_stack()
    model = default_model_id()
    print(f"FocusQA demo: procedural 2-channel z-stack {sample.data.shape[1:]} "
          f"(Z, C, Y, X), model: {model or 'none installed (SF only)'}")
    res = assess_stack(
        sample.zcyx(), model, z_step_um=sample.z_step_um,
        channel_names=sample.channel_names, source={"file": "embedded-sample"},
    )
    written = []
    for c in res.channels:
        for z, tag in ((c.best_z_index, "best"), (min(c.best_z_index + 6, c.n_slices - 1), "defocused")):
            p = render_overlay(sample.data[0, z, c.channel], c.slices[z],
                               out / f"overlay_{c.stain}_{tag}_z{z:02d}.png")
            written.append(p)
    written.append(plot_focus_curves(res, out / "sf_vs_z.png", title="FocusQA demo sample"))
    csv_path = out / "focusqa_demo.csv"
    write_csv(res.records(), csv_path, RECORD_COLUMNS)
    written.append(csv_path)
    json_path = out / "focusqa_demo_zstack.json"
    write_json(res.to_dict(), json_path)
    written.append(json_path)
    for c in res.channels:
        lv = c.slices[c.best_z_index].predicted_level
        print(f"  {c.name} ({c.stain}): best focus z index {c.best_z_index} "
              f"({c.best_z_um} µm)" + ("" if lv is None else f", model level there {lv}"))
    print("wrote:")
    for p in written:
        print(f"  {p}")
    return EXIT_OK


def _add_t_series(p: argparse.ArgumentParser) -> None:
    p.add_argument("--t", type=int, default=None, metavar="INDEX",
                   help="only this time point (default: every time point, each reported)")
    p.add_argument("--series", type=int, default=None, metavar="INDEX",
                   help="only this series/scene/position (default: every series)")


def build_parser() -> argparse.ArgumentParser:
    from napari_focusqa import __version__

    p = argparse.ArgumentParser(prog="focusqa", description="Microscope focus-quality assessment")
    p.add_argument("--version", action="version", version=f"focusqa {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("assess", help="assess every 2D plane of image files")
    a.add_argument("paths", nargs="+", metavar="PATH")
    a.add_argument("--model", default=None, help="model id or card path ('none' = SF only)")
    a.add_argument("--json", metavar="OUT", help="write records as JSON ('-' = stdout)")
    a.add_argument("--csv", metavar="OUT", help="write records as CSV")
    a.add_argument("--overlay", metavar="DIR", help="write a PNG overlay per plane")
    add_optics_args(a)
    _add_t_series(a)
    a.set_defaults(func=cmd_assess)

    z = sub.add_parser("zstack", help="focus curves and best slice per channel of a z-stack")
    z.add_argument("path", metavar="PATH")
    z.add_argument("--model", default=None)
    z.add_argument("--channel", type=int, default=None, help="only this channel index")
    z.add_argument("--json", metavar="OUT")
    add_optics_args(z)
    z.add_argument("--plot", metavar="PNG", help="SF-vs-z plot (PNG or SVG)")
    z.add_argument("--extract", metavar="OUT.tif",
                   help="save the best-focus substack (best plane per channel) as TIFF")
    z.add_argument("--reference-channel", type=int, default=None, metavar="C",
                   help="with --extract: use channel C's best plane for every channel")
    z.add_argument("--planes", type=int, default=0, metavar="N",
                   help="with --extract: keep N planes on each side of the best (default 0)")
    _add_t_series(z)
    z.set_defaults(func=cmd_zstack)

    m = sub.add_parser("models", help="list installed models and validate their cards")
    m.add_argument("--json", metavar="OUT")
    m.set_defaults(func=cmd_models)

    d = sub.add_parser("demo", help="run the main job on the embedded sample")
    d.add_argument("--out", default="demo_out", metavar="DIR")
    d.set_defaults(func=cmd_demo)

    for modname in PLUGIN_MODULES:
        try:
            mod = importlib.import_module(modname)
            mod.register(sub)
        except ModuleNotFoundError as exc:
            missing = exc.name or "?"
            if missing.split(".")[0] in ("napari_focusqa", "fiji_bridge") and not \
                    modname.startswith(missing):
                raise  # our own code is broken: never hide that
            _register_unavailable(sub, modname, missing)
    return p


def _register_unavailable(sub: Any, modname: str, missing: str) -> None:
    """A feature whose optional dependencies are not installed: its sub-commands still
    exist and say exactly what to install (exit 2), instead of vanishing."""
    extra, commands = PLUGIN_EXTRAS.get(modname, ("all", ()))
    hint = (f"needs the Python module {missing!r}, which is not installed: "
            f"pip install 'napari-focusqa[{extra}]'")

    def unavailable(args: argparse.Namespace) -> int:
        raise CLIError(hint)

    for name in commands:
        if name in sub.choices:
            continue
        # every word after the command is swallowed (no option parsing) so the user
        # sees the install hint, not an "unrecognized arguments" error
        q = sub.add_parser(name, help=f"(not installed: {hint})", add_help=False,
                           prefix_chars="\x00")
        q.add_argument("rest", nargs=argparse.REMAINDER)
        q.set_defaults(func=unavailable)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FocusQAError as exc:
        print(f"focusqa {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"focusqa {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
