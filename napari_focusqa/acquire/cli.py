"""``focusqa acquire``: an MDA sequence (time points × positions) with FocusQA autofocus and
live focus QC, on a simulated microscope replaying a z-stack (``--stack``) or on
Micro-Manager hardware (``--config``; untested here).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from napari_focusqa.core.errors import FocusQAError

EXIT_OK, EXIT_FAILED = 0, 1


def _table_path(args: argparse.Namespace) -> str | None:
    if args.table:
        return str(args.table)
    if args.json and args.json != "-":
        p = Path(args.json)
        return str(p.with_name(p.stem + ".frames.csv"))
    return None


def cmd_acquire(args: argparse.Namespace) -> int:
    from napari_focusqa.acquire.session import (
        available_methods,
        build_sequence,
        check_calibration,
        run_acquisition,
    )
    from napari_focusqa.autofocus.calibrate import load_calibration
    from napari_focusqa.autofocus.microscope import MMCoreMicroscope
    from napari_focusqa.autofocus.safety import StageLimits
    from napari_focusqa.io.writer import write_json

    method = args.autofocus
    if method != "none" and method not in available_methods():
        raise FocusQAError(f"--autofocus: {method!r} is not available in this build "
                           f"(available: none, {', '.join(available_methods())})")
    for name in ("timepoints", "positions"):
        if getattr(args, name) < 1:
            raise FocusQAError(f"--{name}: expected >= 1, got {getattr(args, name)}")
    if args.interval_s < 0:
        raise FocusQAError(f"--interval-s: expected >= 0, got {args.interval_s}")
    cal = load_calibration(args.calibration) if args.calibration else None
    if method in ("fewshot", "singleshot") and cal is None:
        raise FocusQAError(f"--calibration: --autofocus {method} needs a calibration file "
                           "(make one with `focusqa calibrate ... --out cal.json`)")
    truth = None
    before: list[Any] = []
    if args.stack:
        from napari_focusqa.acquire.sim import simulated_setup
        from napari_focusqa.autofocus.simulated import SimulatedMicroscope

        if args.z_min is not None or args.z_max is not None:
            raise FocusQAError("--z-min/--z-max: the simulated stage's limits are its travel")
        setup = simulated_setup(
            SimulatedMicroscope.from_file(args.stack, channel=args.channel,
                                          focus_index=args.focus_index, offset_um=0.0,
                                          photons=args.photons or None, seed=args.seed),
            drift_um_per_t=args.drift_um, timepoints=args.timepoints,
            positions=args.positions, position_spacing_um=args.position_spacing_um,
            tilt_um_per_100um=args.tilt_um, max_step_um=args.max_step)
        m: Any = setup.microscope
        before.append(setup.sample.on_event)
        limits = setup.limits
        z0 = setup.base_focus_um if args.start_um is None else args.start_um
        truth = setup.truth
    else:
        if args.drift_um:
            raise FocusQAError("--drift-um: only the simulated microscope (--stack) drifts "
                               "on request")
        if None in (args.z_min, args.z_max, args.max_step):
            raise FocusQAError("--z-min/--z-max/--max-step: required with --config "
                               "(real hardware)")
        m = MMCoreMicroscope.from_config(args.config)
        limits = StageLimits(args.z_min, args.z_max, args.max_step)
        z0 = m.get_z() if args.start_um is None else args.start_um
    check_calibration(cal, method, m, args.stack)
    if not limits.contains(z0):
        raise FocusQAError(f"--start-um: {z0:.3f} µm is outside the z limits "
                           f"[{limits.z_min_um}, {limits.z_max_um}]")
    xy = (0.0, 0.0)
    if args.config and m.core.getXYStageDevice():
        xy = tuple(m.core.getXYPosition())  # type: ignore[assignment]
    elif args.config and args.positions > 1:
        raise FocusQAError("--positions: the configuration has no XY stage; use 1")
    seq = build_sequence(timepoints=args.timepoints, interval_s=args.interval_s,
                         positions=args.positions, z_um=z0, xy_um=xy,
                         position_spacing_um=args.position_spacing_um,
                         autofocus=method != "none")
    if args.stack:  # the sample was focused at t = 0 (stage at the nominal z)
        from napari_focusqa.autofocus.safety import StageGuard

        StageGuard(m, limits).travel_to(z0)
    table = _table_path(args)
    from napari_focusqa.pipeline import resolve_model

    fm = resolve_model(args.model)
    model = None if fm is None else fm.id
    res = run_acquisition(m, seq, limits=limits, method=method, calibration=cal, model=fm,
                          table=table, truth=truth, reacquire=args.reacquire,
                          on_fault=args.on_fault, before_event=before,
                          qc_threshold=args.qc_threshold)
    d = res.to_dict()
    d.update(microscope=m.name, stack=args.stack, config=args.config, channel=args.channel,
             seed=args.seed, drift_um_per_timepoint=args.drift_um, table=table, qc_model=model,
             sequence={"timepoints": args.timepoints, "interval_s": args.interval_s,
                       "positions": args.positions})
    if args.json:
        write_json(d, args.json)
    if args.json != "-":
        _print_summary(d)
    return EXIT_OK if res.finish == "completed" else EXIT_FAILED


def _print_summary(d: dict[str, Any]) -> None:
    frames = d["frames"]
    errs = [abs(f["focus_error_um"]) for f in frames if f.get("focus_error_um") is not None]
    verdicts = [f.get("verdict") for f in frames]
    line = (f"acquire ({d['engine']}): {d['finish']}; {len(frames)} frame rows, "
            f"{len(d['autofocus_events'])} autofocus events, {len(d['faults'])} faults")
    if errs:
        within = sum(e <= 1.0 for e in errs) / len(errs)
        line += f"; {100 * within:.0f} % of frames within 1 µm of the true focus"
    print(line)
    counts = {v: verdicts.count(v) for v in sorted(set(verdicts), key=str)}
    sfrac = [f["structured_fraction"] for f in frames if f.get("structured_fraction") is not None]
    thr = d.get("qc_in_focus_max_level") or {}
    used = thr.get("used")
    src = "model card"
    if used is not None and used != thr.get("card"):
        src = "calibrated" if used == thr.get("calibration") else "from the optics"
    rule = "" if used is None else f" (in focus: level <= {used}, {src})"
    print("  verdicts: " + ", ".join(f"{k}: {n}" for k, n in counts.items()) + rule
          + (f"; structured fraction median {sorted(sfrac)[len(sfrac) // 2]:.2f}"
             if sfrac else ""))


def register(subparsers: Any) -> None:
    """Add ``acquire`` to the ``focusqa`` parser."""
    from napari_focusqa.acquire.session import AUTOFOCUS_CHOICES, QC_THRESHOLDS

    a = subparsers.add_parser(
        "acquire", help="MDA time-lapse with FocusQA autofocus and live QC (pymmcore-plus)")
    src = a.add_mutually_exclusive_group(required=True)
    src.add_argument("--stack", metavar="S", help="z-stack file: simulated microscope")
    src.add_argument("--config", metavar="MMConfig.cfg",
                     help="Micro-Manager config file (real hardware; untested here)")
    a.add_argument("--channel", metavar="C", type=int, default=None,
                   help="channel index of the stack")
    a.add_argument("--timepoints", metavar="N", type=int, default=1)
    a.add_argument("--interval-s", metavar="X", type=float, default=0.0,
                   help="time between time points (s)")
    a.add_argument("--positions", metavar="K", type=int, default=1,
                   help="stage positions (along x, --position-spacing-um apart)")
    a.add_argument("--drift-um", metavar="D", type=float, default=0.0,
                   help="simulation: axial drift of the sample per time point (µm)")
    a.add_argument("--autofocus", choices=AUTOFOCUS_CHOICES, default="none",
                   help="FocusQA autofocus at every time point and position")
    a.add_argument("--calibration", metavar="CAL", help="calibration JSON (focusqa calibrate)")
    a.add_argument("--seed", metavar="S", type=int, default=0,
                   help="noise seed of the simulated camera")
    a.add_argument("--json", metavar="OUT", help="write the run as JSON ('-' = stdout)")
    a.add_argument("--table", metavar="CSV",
                   help="live results table (default: <json stem>.frames.csv)")
    a.add_argument("--model", default="",
                   help="QC levels model: id, card path or 'none' (default: installed)")
    a.add_argument("--qc-threshold", choices=QC_THRESHOLDS, default="instrument",
                   help="verdict threshold: the instrument's (default: from a --calibration "
                        "made with the QC model, else from the optics, else the card's) or "
                        "the model card's")
    a.add_argument("--reacquire", action="store_true",
                   help="re-focus and re-acquire (once) a frame QC flags")
    a.add_argument("--on-fault", choices=("continue", "stop"), default="continue",
                   help="after a camera/stage fault: go on, or stop with the stage at its "
                        "start z")
    a.add_argument("--start-um", type=float, default=None,
                   help="nominal z of the positions (default: the simulated sample's focus "
                        "at t=0; the current z on hardware)")
    a.add_argument("--position-spacing-um", type=float, default=100.0)
    a.add_argument("--tilt-um", type=float, default=0.5,
                   help="simulation: sample tilt, µm of focus change per 100 µm along x")
    a.add_argument("--focus-index", type=float, default=None,
                   help="simulation: the stack's true in-focus plane (default: SF peak)")
    a.add_argument("--photons", type=float, default=2000.0,
                   help="simulation: photo-electrons at the brightest pixel (0 = no noise)")
    a.add_argument("--z-min", type=float, default=None, help="lower z limit (µm; hardware)")
    a.add_argument("--z-max", type=float, default=None, help="upper z limit (µm; hardware)")
    a.add_argument("--max-step", type=float, default=None, help="maximum single move (µm)")
    a.set_defaults(func=cmd_acquire)
