"""Acquisition benchmark: drift held over a time-lapse by FocusQA autofocus inside a
pymmcore-plus MDA sequence, with live QC.

Part 1 (drift). Real z-stacks with a documented focus (``../shared/data/README.md``) are
replayed by the simulated microscope (UniMMCore + pure-Python camera/stage, Poisson noise
at 2000 photo-electrons/brightest pixel); the sample drifts ``--drift`` µm per time point.
A ``useq.MDASequence`` of ``--timepoints`` time points (one position, nominal z = the true
focus at t = 0, ``AxesBasedAF(axes=("t", "p"))``) is run by pymmcore-plus' runner on
``FocusQAEngine`` with ``LiveQC`` attached, for each autofocus method and without
autofocus, over ``--seeds`` noise seeds. The calibration is acquired once per stack on a
separate simulated run (other noise seed). Truth = documented focus + drift; never our
metric. Prints: % of frames within 1 µm and within 1 DoF of the true focus, median
|error|, images per autofocus event, frames with a verdict, how often the verdict is
right (``in_focus`` exactly when the frame is within 1 DoF of the true focus; frames
called ``no_structure`` count as wrong) with the threshold used (the instrument's: here
the calibration's, ``Calibration.in_focus_max_level``) and, from the same frames, with
the model card's, QC time per frame.

Part 2 (QC speed). 2048 × 2048 frames (a real stack's planes tiled) acquired at
``--fps`` frames/s through the runner; LiveQC (installed levels model, onnxruntime on
``--threads`` threads) assesses them off the acquisition thread. Prints the assessment
time per frame, the latency from frameReady to row written, and whether QC kept up.

Usage: ``python benchmarks/bench_acquire.py [--seeds 3] [--timepoints 20] [--quick]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from napari_focusqa.acquire.session import (
    available_methods,
    build_sequence,
    check_calibration,
    run_acquisition,
)
from napari_focusqa.acquire.sim import simulated_setup
from napari_focusqa.autofocus.calibrate import calibrate_microscope
from napari_focusqa.autofocus.safety import StageGuard
from napari_focusqa.autofocus.simulated import SimulatedMicroscope

DATA = Path(os.environ.get("FOCUSQA_SHARED_DATA",
                           Path(__file__).resolve().parents[2] / "shared" / "data"))
#: (name, file, channel, documented focus plane) -- see ../shared/data/README.md
STACKS = [
    ("deconwolf DAPI (widefield)", "deconwolf_dapi_widefield_zstack.tif", None, 19),
    ("NEUBIAS Golgi (confocal)", "neubias_golgi_bfa_zstack.tif", None, 18),
]


def _sim(path: Path, focus: int, seed: int, **kw):
    m = SimulatedMicroscope.from_file(path, focus_index=focus, seed=seed)
    return simulated_setup(m, **kw)


def calibrate(path: Path, focus: int):
    s = _sim(path, focus, seed=10007)
    lo, hi = s.microscope.travel
    return calibrate_microscope(s.microscope, StageGuard(s.microscope, s.limits),
                                z_from_um=lo, z_to_um=hi, step_um=s.microscope.z_step_um,
                                model="auto", optics=s.microscope.optics)


def drift_run(path: Path, focus: int, method: str, cal, seed: int, timepoints: int,
              drift: float, model, positions: int = 1):
    s = _sim(path, focus, seed, drift_um_per_t=drift, timepoints=timepoints,
             positions=positions, tilt_um_per_100um=0.5)
    StageGuard(s.microscope, s.limits).travel_to(s.base_focus_um)
    seq = build_sequence(timepoints=timepoints, interval_s=0, positions=positions,
                         z_um=s.base_focus_um, autofocus=method != "none")
    return run_acquisition(s.microscope, seq, limits=s.limits, method=method, calibration=cal,
                           model=model, truth=s.truth,
                           before_event=[s.sample.on_event])


def part_drift(args) -> None:
    from napari_focusqa.pipeline import resolve_model

    model = resolve_model("")
    methods = ["none"] + [m for m in ("fewshot", "singleshot", "twoshot", "classic")
                          if m in available_methods()]
    if args.methods:
        methods = [m for m in methods if m in args.methods.split(",")]
    print(f"## Drift: {args.timepoints} time points × {args.positions} position(s) (sample "
          f"tilt 0.5 µm per 100 µm, positions 100 µm apart), {args.drift} µm/time point, "
          f"{args.seeds} seeds, QC model {None if model is None else model.id}\n")
    print("| stack | autofocus | frames | within 1 µm | within 1 DoF (DoF) | median abs error "
          "µm | images/AF event (median, max) | AF failed | verdict | verdict right: "
          "calibrated (level <=) / card | QC ms/frame (median) | wall s/run |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, fn, _ch, focus in STACKS[: args.stacks]:
        path = DATA / fn
        if not path.exists():
            print(f"# skipped {name}: {path} not found", file=sys.stderr)
            continue
        cal = calibrate(path, focus)
        for method in methods:
            try:
                check_calibration(cal, method, _sim(path, focus, seed=1).microscope)
            except Exception as exc:
                print(f"| {name} | {method} | n/a: {str(exc).splitlines()[0]} |||||||||",
                      flush=True)
                continue
            errs, imgs, qc, verd, failed, walls = [], [], [], [], 0, []
            right, right_card, used = [], [], set()
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                res = drift_run(path, focus, method, cal, seed + 1, args.timepoints, args.drift,
                                model, args.positions)
                walls.append(time.perf_counter() - t0)
                errs += [abs(f["focus_error_um"]) for f in res.frames]
                verd += [f["verdict"] is not None for f in res.frames]
                thr = res.info["qc_in_focus_max_level"]
                used.add(thr["used"])
                for f in res.frames:
                    near = abs(f["focus_error_um"]) <= cal.dof_um
                    right.append((f["verdict"] == "in_focus") == near)
                    card_in = (f["verdict"] not in (None, "no_structure")
                               and f["predicted_level"] <= thr["card"])
                    right_card.append(card_in == near)
                qc += [f["qc_ms"] for f in res.frames if f["qc_ms"] is not None]
                imgs += [a.images_used for a in res.autofocus_events]
                failed += sum(a.status != "ok" for a in res.autofocus_events)
            e = np.asarray(errs)
            dof = cal.dof_um
            im = (f"{np.median(imgs):.0f}, {max(imgs)}" if imgs else "-")
            print(f"| {name} | {method} | {len(e)} | {100 * np.mean(e <= 1.0):.0f} % | "
                  f"{100 * np.mean(e <= dof):.0f} % ({dof:.2f} µm) | {np.median(e):.2f} | "
                  f"{im} | {failed} | {100 * np.mean(verd):.0f} % | "
                  f"{100 * np.mean(right):.0f} % ({'/'.join(map(str, sorted(used)))}) / "
                  f"{100 * np.mean(right_card):.0f} % | "
                  f"{np.median(qc) if qc else float('nan'):.1f} | {np.mean(walls):.2f} |",
                  flush=True)
    print()


def part_speed(args) -> None:
    import tifffile

    from napari_focusqa.core.model import load_model
    from napari_focusqa.pipeline import resolve_model

    fm = resolve_model("")
    model = None if fm is None else load_model(fm.id, threads=args.threads)
    st = tifffile.imread(DATA / STACKS[0][1]).astype(np.uint16)
    reps = (-(-2048 // st.shape[1]), -(-2048 // st.shape[2]))
    big = np.stack([np.tile(p, reps)[:2048, :2048] for p in st[::4]])
    m = SimulatedMicroscope(big, 1.2, focus_index=STACKS[0][3] / 4, seed=1, photons=2000.0)
    s = simulated_setup(m, timepoints=args.frames)
    StageGuard(m, s.limits).travel_to(s.base_focus_um)
    seq = build_sequence(timepoints=args.frames, interval_s=1.0 / args.fps, positions=1,
                         z_um=s.base_focus_um, autofocus=False)
    t0 = time.perf_counter()
    res = run_acquisition(m, seq, limits=s.limits, method="none", model=model, truth=s.truth)
    wall = time.perf_counter() - t0
    qc = np.array([f["qc_ms"] for f in res.frames])
    lat = np.array([f["qc_latency_ms"] for f in res.frames])
    period = 1000.0 / args.fps
    print(f"## Live QC speed: {len(res.frames)} frames of 2048 × 2048 at {args.fps} frame/s, "
          f"model {None if model is None else model.id}, onnxruntime threads {args.threads}, "
          f"{os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f})\n")
    print("| assessment ms/frame (median, max) | frameReady → row ms (median, max) | "
          "frame period ms | kept up | wall s |")
    print("|---|---|---|---|---|")
    print(f"| {np.median(qc):.0f}, {qc.max():.0f} | {np.median(lat):.0f}, {lat.max():.0f} | "
          f"{period:.0f} | {'yes' if np.median(qc) <= period and lat.max() <= 2 * period else 'no'}"
          f" | {wall:.1f} |\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--timepoints", type=int, default=20)
    ap.add_argument("--drift", type=float, default=0.3)
    ap.add_argument("--positions", type=int, default=1)
    ap.add_argument("--methods", default="", help="comma-separated subset (default: all)")
    ap.add_argument("--stacks", type=int, default=len(STACKS), help="first N stacks")
    ap.add_argument("--frames", type=int, default=10, help="QC speed: frames acquired")
    ap.add_argument("--fps", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="1 seed, 5 QC-speed frames")
    ap.add_argument("--only", choices=("drift", "speed"), default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.frames = 1, 5
    if not DATA.exists():
        print(f"bench_acquire: {DATA} not found (real stacks needed)", file=sys.stderr)
        return 2
    if args.only in (None, "drift"):
        part_drift(args)
    if args.only in (None, "speed"):
        part_speed(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
