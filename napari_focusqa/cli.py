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

from napari_focusqa.core.errors import FocusQAError, ImageError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

#: modules that contribute sub-commands (``register(subparsers)``); missing ones skipped
PLUGIN_MODULES = (
    "napari_focusqa.autofocus.cli",
    "napari_focusqa.batch",
    "fiji_bridge.cli",
)


class CLIError(FocusQAError):
    """Bad command-line input."""


def _model_arg(value: str | None) -> str | None:
    from napari_focusqa.core.model import default_model_id

    if value in (None, ""):
        return default_model_id()
    if value.lower() == "none":
        return None
    return value


def plane_results(path: str, model: Any, *, metrics: Sequence[str] = ("sf",)) -> list[Any]:
    """Assess every 2D plane (all T, Z, C) of one file; returns FocusResult list."""
    from napari_focusqa.core.assess import assess_image
    from napari_focusqa.io import read_image

    img = read_image(path)
    results = []
    t_n, z_n, c_n = img.data.shape[:3]
    stains = img.stains
    for t in range(t_n):
        for z in range(z_n):
            for c in range(c_n):
                src = {
                    "file": path,
                    "channel": img.channel_names[c] if img.channel_names[c] is not None else c,
                    "channel_index": c,
                    "stain": stains[c],
                    "z_index": z,
                    "z_um": None if img.z_step_um is None else round(z * img.z_step_um, 6),
                }
                if t_n > 1:
                    src["t_index"] = t
                try:
                    res = assess_image(img.data[t, z, c], model, stain=stains[c],
                                       metrics=metrics, source=src)
                except ImageError as exc:
                    raise ImageError(f"{path}: {exc}") from exc
                results.append((img.data[t, z, c], res))
    return results


def cmd_assess(args: argparse.Namespace) -> int:
    from napari_focusqa.core.assess import RECORD_COLUMNS
    from napari_focusqa.core.model import load_model
    from napari_focusqa.io.writer import write_csv, write_json

    model_id = _model_arg(args.model)
    model = load_model(model_id) if model_id else None
    records = []
    for path in args.paths:
        for image, res in plane_results(path, model):
            records.append(res.to_record())
            if args.overlay:
                from napari_focusqa.plots import render_overlay

                s = res.source
                stem = Path(path).name.split(".")[0]
                name = f"{stem}_c{s['channel_index']}_z{s['z_index']:03d}"
                if "t_index" in s:
                    name += f"_t{s['t_index']}"
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


def stack_result_for(path: str, model: Any, channel: int | None = None) -> Any:
    from napari_focusqa.core.zstack import assess_stack
    from napari_focusqa.io import read_image

    img = read_image(path)
    if img.n_slices < 2:
        raise CLIError(f"{path}: not a z-stack (1 slice); use `focusqa assess`")
    try:
        return assess_stack(
            img.zcyx(0),
            model,
            z_step_um=img.z_step_um,
            channel_names=img.channel_names,
            stains=img.stains,
            channels=None if channel is None else [channel],
            source={"file": path},
        )
    except ImageError as exc:
        raise ImageError(f"{path}: {exc}") from exc


def cmd_zstack(args: argparse.Namespace) -> int:
    from napari_focusqa.core.model import load_model
    from napari_focusqa.io.writer import write_json

    model_id = _model_arg(args.model)
    model = load_model(model_id) if model_id else None
    res = stack_result_for(args.path, model, args.channel)
    if args.plot:
        from napari_focusqa.plots import plot_focus_curves

        plot_focus_curves(res, args.plot, title=Path(args.path).name)
    if args.json:
        write_json(res.to_dict(), args.json)
    else:
        for c in res.channels:
            print(f"channel {c.channel} ({c.name or '-'}, {c.stain}): best z index "
                  f"{c.best_z_index}" + (f" = {c.best_z_um} µm" if c.best_z_um is not None else ""))
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from napari_focusqa.core.model import load_model, models_summary
    from napari_focusqa.io.writer import write_json

    rows = models_summary()
    for r in rows:
        try:
            load_model(str(r["card"]))
            r["valid"] = True
        except FocusQAError as exc:
            r["valid"] = False
            r["error"] = str(exc)
    if args.json:
        write_json(rows, args.json)
        return EXIT_OK
    if not rows:
        print("no models installed (looked in FOCUSQA_MODELS_DIR, ./models, the package)")
    for r in rows:
        status = "ok" if r["valid"] else f"INVALID: {r.get('error')}"
        print(f"{r['id']:<16} {r['task']:<13} patch {r['patch_size']}  {status}  {r['card']}")
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
    a.set_defaults(func=cmd_assess)

    z = sub.add_parser("zstack", help="focus curves and best slice per channel of a z-stack")
    z.add_argument("path", metavar="PATH")
    z.add_argument("--model", default=None)
    z.add_argument("--channel", type=int, default=None, help="only this channel index")
    z.add_argument("--json", metavar="OUT")
    z.add_argument("--plot", metavar="PNG", help="SF-vs-z plot (PNG or SVG)")
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
        except ModuleNotFoundError as exc:
            if exc.name and modname.startswith(exc.name):
                continue  # feature not present in this build
            raise
        mod.register(sub)
    return p


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
