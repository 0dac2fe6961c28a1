"""``focusqa export MODEL --format bioimageio --out DIR`` (registered in the CLI)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from napari_focusqa.core.errors import FocusQAError


def run_test_model(yaml_path: Path) -> tuple[str, list[str]]:
    """``bioimageio.core.test_model`` on a package: (status, first error lines)."""
    try:
        from bioimageio.core import test_model
    except ImportError as exc:
        raise FocusQAError("--test: needs bioimageio.core "
                           "(pip install 'napari-focusqa[bioimageio]')") from exc
    summary = test_model(yaml_path)
    errors = [f"{d.name}: {e.msg}" for d in summary.details for e in d.errors]
    return str(summary.status), [e.splitlines()[0][:200] for e in errors[:3]]


def cmd_export(args: argparse.Namespace) -> int:
    from napari_focusqa.bioimageio.export import SHIPPED, export_model, export_zip

    try:
        import bioimageio.spec  # noqa: F401
        import onnx  # noqa: F401
    except ImportError as exc:
        raise FocusQAError(f"export: the bioimageio format needs bioimageio.core and onnx "
                           f"(pip install 'napari-focusqa[bioimageio]'; missing {exc.name})") from exc
    ids = list(SHIPPED) if args.model == "all" else [args.model]
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise FocusQAError(f"--out: {out} exists and is not a folder")
    failed = 0
    for mid in ids:
        yaml_path = export_model(mid, out)
        line = f"{mid}: {yaml_path}"
        if args.zip:
            line += f" + {export_zip(yaml_path, out / f'{mid}.bioimageio.zip')}"
        if args.test:
            status, errors = run_test_model(yaml_path)
            line += f"  test_model: {status}"
            if status != "passed":
                failed += 1
                line += "".join(f"\n    {e}" for e in errors)
        print(line)
    return 1 if failed else 0


def register(subparsers: Any) -> None:
    """Add ``export`` to the ``focusqa`` parser."""
    e = subparsers.add_parser(
        "export", help="write a model as a bioimage.io package (ONNX weights, test tensors, "
                       "cover, docs, citations)")
    e.add_argument("model", metavar="MODEL", help="model id (fqa-levels, fqa-stain, "
                   "fqa-distance, a card path) or 'all' for every shipped model")
    e.add_argument("--format", choices=("bioimageio",), default="bioimageio")
    e.add_argument("--out", required=True, metavar="DIR", help="folder; one package per model")
    e.add_argument("--zip", action="store_true", help="also write DIR/<id>.bioimageio.zip")
    e.add_argument("--test", action="store_true",
                   help="run bioimageio.core's test_model on each package (exit 1 if one fails)")
    e.set_defaults(func=cmd_export)
