"""``focusqa autofocus`` and ``focusqa calibrate`` (registered by napari_focusqa.cli).

Both run on a simulated microscope built from a z-stack file (``--stack``) or on real
Micro-Manager hardware (``--config``, which then requires ``--z-min/--z-max/--max-step``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from napari_focusqa.core.errors import FocusQAError

EXIT_OK, EXIT_FAILED = 0, 1


def _add_microscope_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--stack", metavar="FILE", help="z-stack file: simulated microscope")
    src.add_argument("--config", metavar="CFG", help="Micro-Manager config file (real hardware)")
    p.add_argument("--channel", type=int, default=None, help="channel index of the stack")
    p.add_argument("--seed", type=int, default=0, help="noise seed of the simulated camera")
    p.add_argument("--photons", type=float, default=2000.0,
                   help="simulated photo-electrons at the brightest pixel (0 = no noise)")
    p.add_argument("--focus-offset-um", type=float, default=0.0,
                   help="simulation: stage position of the stack's first plane (hidden)")
    p.add_argument("--focus-index", type=float, default=None,
                   help="simulation: the stack's true in-focus plane (default: SF peak)")
    p.add_argument("--z-min", type=float, default=None, help="lower z limit (µm)")
    p.add_argument("--z-max", type=float, default=None, help="upper z limit (µm)")
    p.add_argument("--max-step", type=float, default=None, help="maximum single move (µm)")
    p.add_argument("--model", default="auto",
                   help="levels model for the blur score: id, card path, 'auto' or 'none'")
    p.add_argument("--na", type=float, default=None,
                   help="objective NA (DoF; twoshot); default: from the file's metadata")
    p.add_argument("--wavelength-nm", type=float, default=None,
                   help="emission wavelength (nm); default: from the file's metadata")
    p.add_argument("--immersion-n", type=float, default=None,
                   help="immersion refractive index (1.0 air, 1.333 water, 1.515 oil)")
    p.add_argument("--pixel-size-um", type=float, default=None,
                   help="pixel size at the sample (µm); default: file / Micro-Manager")


def _microscope(args: argparse.Namespace, start_um: float | None) -> Any:
    from napari_focusqa.autofocus.microscope import MMCoreMicroscope
    from napari_focusqa.autofocus.simulated import SimulatedMicroscope

    if args.stack:
        return SimulatedMicroscope.from_file(
            args.stack, channel=args.channel, focus_index=args.focus_index,
            offset_um=args.focus_offset_um, start_um=start_um,
            photons=args.photons or None, seed=args.seed,
        )
    m = MMCoreMicroscope.from_config(args.config)
    if start_um is not None:
        raise FocusQAError("--start-um: not used with --config (autofocus starts where the "
                           "stage is)")
    return m


def _optics(args: argparse.Namespace, microscope: Any) -> Any:
    """The microscope's optics (file metadata) with any of --na/--wavelength-nm/
    --immersion-n/--pixel-size-um overriding (:func:`~napari_focusqa.autofocus.optics.
    optics_for`)."""
    from napari_focusqa.autofocus.optics import optics_for

    return optics_for(microscope, na=args.na, wavelength_nm=args.wavelength_nm,
                      immersion_n=args.immersion_n, pixel_size_um=args.pixel_size_um)


def _limits(args: argparse.Namespace, microscope: Any) -> Any:
    from napari_focusqa.autofocus.safety import StageLimits

    travel = getattr(microscope, "travel", None)
    given = (args.z_min, args.z_max, args.max_step)
    if travel is None:
        if None in given:
            raise FocusQAError("--z-min/--z-max/--max-step: required with --config (real "
                               "hardware)")
        travel = (args.z_min, args.z_max)
    lo = travel[0] if args.z_min is None else args.z_min
    hi = travel[1] if args.z_max is None else args.z_max
    step = (hi - lo) if args.max_step is None else args.max_step
    return StageLimits(lo, hi, step)


def _model(spec: str) -> Any:
    return None if spec.lower() == "none" else spec


def cmd_calibrate(args: argparse.Namespace) -> int:
    from napari_focusqa.autofocus.calibrate import calibrate_microscope
    from napari_focusqa.autofocus.safety import StageGuard
    from napari_focusqa.io.writer import write_json

    m = _microscope(args, None)
    lim = _limits(args, m)
    travel = getattr(m, "travel", None) or (lim.z_min_um, lim.z_max_um)
    z_from = args.z_from if args.z_from is not None else travel[0]
    z_to = args.z_to if args.z_to is not None else travel[1]
    step = args.step_um or getattr(m, "z_step_um", None)
    if not step:
        raise FocusQAError("--step-um: required with --config")
    guard = StageGuard(m, lim)
    cal = calibrate_microscope(m, guard, z_from_um=z_from, z_to_um=z_to, step_um=step,
                               model=_model(args.model), optics=_optics(args, m))
    cal.source.setdefault("file", args.stack or args.config)
    if cal.distance and cal.distance.get("error"):
        print(f"warning: {cal.distance['error']}", file=sys.stderr)
    write_json(cal.to_dict(), args.out)
    if args.out != "-":
        print(f"calibration: score {cal.score_name}, FWHM {cal.fwhm_um:.3f} µm, DoF "
              f"{cal.dof_um:.3f} µm ({cal.dof_source}), Moffat R² {cal.moffat['r2']:.3f} "
              f"-> {args.out}", file=sys.stderr)
    return EXIT_OK


def cmd_autofocus(args: argparse.Namespace) -> int:
    from napari_focusqa.autofocus.calibrate import calibrate_microscope, load_calibration
    from napari_focusqa.autofocus.safety import StageGuard
    from napari_focusqa.autofocus.search import run_autofocus
    from napari_focusqa.io.writer import write_json

    cal = load_calibration(args.calibration) if args.calibration else None
    m = _microscope(args, args.start_um)
    lim = _limits(args, m)
    cal_note = "file" if cal is not None else None
    if cal is None and args.method in ("fewshot", "singleshot") and args.stack:
        # calibrate on a separate simulated microscope (other hidden offset and noise seed)
        from napari_focusqa.autofocus.simulated import SimulatedMicroscope

        cm = SimulatedMicroscope.from_file(args.stack, channel=args.channel,
                                           focus_index=args.focus_index, offset_um=0.0,
                                           photons=args.photons or None, seed=args.seed + 10007)
        lo, hi = cm.travel
        cal = calibrate_microscope(cm, StageGuard(cm, _limits(argparse.Namespace(
            z_min=None, z_max=None, max_step=None), cm)), z_from_um=lo, z_to_um=hi,
            step_um=cm.z_step_um, model=_model(args.model), optics=_optics(args, cm))
        cal_note = "auto: calibrated on the same stack (separate simulated run)"
    optics = _optics(args, m)
    run = run_autofocus(m, args.method, calibration=cal, limits=lim,
                        max_images=args.max_images, optics=optics,
                        min_confidence=args.min_confidence)
    if cal_note:
        run.info["calibration_source"] = cal_note
    run.info["stack"] = args.stack
    d = run.to_dict()
    if args.json:
        write_json(d, args.json)
    if args.json != "-":
        print(run.summary())
        sim = run.info.get("simulation")
        if sim:
            print(f"  true focus {sim['true_focus_um']:.3f} µm, error {sim['error_um']:+.3f} µm"
                  + (f" ({sim['error_dof']:+.2f} DoF)" if "error_dof" in sim else ""))
    return EXIT_OK if run.ok else EXIT_FAILED


def register(subparsers: Any) -> None:
    """Add ``autofocus`` and ``calibrate`` to the ``focusqa`` parser."""
    a = subparsers.add_parser(
        "autofocus", help="autofocus a (simulated) microscope; JSON = the AutofocusRun")
    _add_microscope_args(a)
    a.add_argument("--start-um", type=float, default=None,
                   help="simulation: stage position at the start (default: mid travel)")
    a.add_argument("--method", choices=("fewshot", "singleshot", "twoshot", "classic"),
                   default="fewshot",
                   help="twoshot needs no calibration but the optics (--na, --wavelength-nm, "
                        "--immersion-n, --pixel-size-um or the file's metadata)")
    a.add_argument("--min-confidence", type=float, default=0.5,
                   help="singleshot: below this confidence fall back to fewshot")
    a.add_argument("--calibration", metavar="FILE", help="calibration JSON (focusqa calibrate)")
    a.add_argument("--max-images", type=int, default=None)
    a.add_argument("--json", metavar="OUT", help="write the AutofocusRun as JSON ('-' = stdout)")
    a.set_defaults(func=cmd_autofocus)

    c = subparsers.add_parser(
        "calibrate", help="acquire a calibration stack and fit the blur curve (few-shot AF)")
    _add_microscope_args(c)
    c.add_argument("--z-from", type=float, default=None, help="first plane (µm)")
    c.add_argument("--z-to", type=float, default=None, help="last plane (µm)")
    c.add_argument("--step-um", type=float, default=None, help="plane spacing (µm)")
    c.add_argument("--out", "--json", dest="out", required=True, metavar="OUT",
                   help="calibration JSON ('-' = stdout)")
    c.set_defaults(func=cmd_calibrate)
