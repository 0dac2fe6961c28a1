"""Command-line options shared by several ``focusqa`` subcommands (argparse only)."""

from __future__ import annotations

import argparse
from typing import Any


def add_optics_args(p: argparse.ArgumentParser) -> None:
    """``--na/--wavelength-nm/--pixel-size-um``: the instrument's optics, which set the
    verdict threshold (docs/verdicts.md); see :func:`napari_focusqa.pipeline.image_airy_px`."""
    g = p.add_argument_group(
        "optics", "the instrument, when the file does not record it (or to override it): "
        "they set the verdict threshold (docs/verdicts.md)")
    g.add_argument("--na", type=float, default=None, help="objective NA")
    g.add_argument("--wavelength-nm", type=float, default=None,
                   help="emission wavelength (default: the file's, else 520 nm)")
    g.add_argument("--pixel-size-um", type=float, default=None,
                   help="pixel size at the sample (default: the file's)")


def optics_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ``optics`` mapping the pipeline takes, from :func:`add_optics_args`' flags."""
    return {"na": args.na, "wavelength_nm": args.wavelength_nm,
            "pixel_size_um": args.pixel_size_um}
