"""Regenerate the README/docs pictures of the Fiji bridge with a real ImageJ run.

``python -m fiji_bridge.screenshot IMAGE OUT_DIR [--model M] [--scale N]`` installs the
macros into a temporary ImageJ folder, opens ``IMAGE`` in ImageJ (``java -jar ij.jar
-batch`` under Xvfb), runs "Assess Focus" and "Focus Curves", and saves the flattened
overlay of the best-focus slice (``fiji_overlay.png``) and the plot
(``fiji_curves.png``) into ``OUT_DIR``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from fiji_bridge.install import install
from fiji_bridge.runner import run_macro


def make_screenshots(
    image: str | Path,
    out_dir: str | Path,
    *,
    model: str = "default",
    scale: float = 1.0,
    defocus_offset: int | None = None,
    timeout: float = 600.0,
) -> list[Path]:
    """Run the macros on ``image`` in a real ImageJ; returns the two PNG paths.

    With ``defocus_offset`` the overlay picture shows the best slice and the slice
    ``defocus_offset`` further, side by side.
    """
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    overlay_png, curves_png = out / "fiji_overlay.png", out / "fiji_curves.png"
    with tempfile.TemporaryDirectory(prefix="focusqa-shot-") as tmp:
        ijdir = Path(tmp) / "ImageJ"
        (ijdir / "plugins").mkdir(parents=True)
        install(ijdir)
        macro = Path(tmp) / "shot.ijm"
        if defocus_offset is None:
            assess = (f'run("Assess Focus", "model=[{model}] flatten=[{overlay_png}] '
                      f'flatten_scale={scale:g}");\n')
        else:
            # best slice and a defocused one side by side, both flattened by ImageJ
            assess = (
                f'run("Assess Focus", "model=[{model}]");\n'
                'id = getImageID(); z = getSliceNumber();\n'
                'run("Flatten", "slice"); rename("focusqa_best");\n'
                f'selectImage(id); Stack.setSlice(minOf(z + {defocus_offset}, nSlices));\n'
                'run("Flatten", "slice"); rename("focusqa_defocused");\n'
                'run("Combine...", "stack1=focusqa_best stack2=focusqa_defocused");\n'
                f'if ({scale:g} != 1) run("Size...", "width=" + round(getWidth() * {scale:g}) '
                f'+ " height=" + round(getHeight() * {scale:g}) + " interpolation=None");\n'
                f'saveAs("PNG", "{overlay_png}");\n'
                'selectImage(id);\n'
            )
        macro.write_text(
            f'open("{Path(image).resolve()}");\n' + assess
            + f'run("Focus Curves", "save=[{curves_png}]");\n',
            encoding="utf-8",
        )
        code, _ = run_macro(macro, imagej_dir=ijdir, expect=(overlay_png, curves_png),
                            timeout=timeout)
    if code != 0:
        raise SystemExit(code)
    return [overlay_png, curves_png]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fiji_bridge.screenshot", description=__doc__)
    p.add_argument("image")
    p.add_argument("out_dir")
    p.add_argument("--model", default="default")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--defocus-offset", type=int, default=None,
                   help="also show the slice this many slices after the best one")
    a = p.parse_args(argv)
    for path in make_screenshots(a.image, a.out_dir, model=a.model, scale=a.scale,
                                 defocus_offset=a.defocus_offset):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
