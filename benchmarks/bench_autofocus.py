"""Autofocus benchmark: fewshot / singleshot / classic on simulated microscopes.

Each stack is replayed by a simulated microscope (UniMMCore + pure-Python camera/stage,
Poisson noise at 2000 photo-electrons/brightest pixel, random hidden focus offset). The
few-shot calibration is acquired once per stack on a separate simulated run (other
offset and noise seed). Starts: a grid from -10 to +10 depths of field (DoF) around the
true focus, those inside the stage travel; several seeds. Prints a markdown table.

Usage: ``python benchmarks/bench_autofocus.py [--seeds 3] [--starts 21] [--quick]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from napari_focusqa.autofocus.calibrate import calibrate_microscope
from napari_focusqa.autofocus.safety import StageGuard
from napari_focusqa.autofocus.search import default_limits, run_autofocus
from napari_focusqa.autofocus.simulated import SimulatedMicroscope

DATA = Path(os.environ.get("FOCUSQA_SHARED_DATA",
                           Path(__file__).resolve().parents[2] / "shared" / "data"))


def stacks() -> list[dict]:
    out = []
    real = [
        ("deconwolf DAPI (widefield)", "deconwolf_dapi_widefield_zstack.tif", None, 19),
        ("DFNN mito (light-sheet)", "dfnn_lightsheet_mito_defocus_zstack.tif", None, 19),
        ("czitools ch1 (5 planes)", "czitools_celldivision_2ch_zstack.tif", 1, None),
    ]
    for name, fn, ch, fi in real:
        p = DATA / fn
        if not p.exists():
            print(f"# skipped {name}: {p} not found", file=sys.stderr)
            continue
        out.append({"name": name, "kind": "file", "path": str(p), "channel": ch, "focus": fi})
    from napari_focusqa.io.sample_data import make_sample_stack

    s = make_sample_stack()
    for c in range(s.n_channels):
        out.append({"name": f"synthetic {s.channel_names[c]}", "kind": "array",
                    "stack": s.zcyx()[:, c], "dz": s.z_step_um, "focus": None})
    return out


def make(spec: dict, **kw) -> SimulatedMicroscope:
    if spec["kind"] == "file":
        return SimulatedMicroscope.from_file(spec["path"], channel=spec["channel"],
                                             focus_index=spec["focus"], **kw)
    return SimulatedMicroscope(spec["stack"], spec["dz"], focus_index=spec["focus"], **kw)


def pct(a, q):
    return float(np.percentile(a, q)) if len(a) else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--starts", type=int, default=21)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--refine", action="store_true", help="fewshot: one refinement image")
    ap.add_argument("--model", default="auto",
                    help="levels model for the blur score ('auto' = installed default, 'none')")
    a = ap.parse_args(argv)
    a.model = None if a.model == "none" else a.model
    if a.quick:
        a.seeds, a.starts = 1, 9
    rows = []
    specs = stacks()
    cals: dict[str, object] = {}
    dofs: dict[str, float] = {}
    for spec in specs:
        cm = make(spec, offset_um=0.0, seed=12345)
        lo, hi = cm.travel
        t = time.perf_counter()
        try:
            cal = calibrate_microscope(cm, StageGuard(cm, default_limits(cm)), z_from_um=lo,
                                       z_to_um=hi, step_um=cm.z_step_um, optics=cm.optics,
                                       model=a.model)
            cal_txt = (f"{cal.score_name}, FWHM {cal.fwhm_um:.2f} µm, DoF {cal.dof_um:.3f} µm "
                       f"({cal.dof_source}); choice {cal.score_choice}")
            dof = cal.dof_um
        except Exception as exc:  # report, keep benchmarking the other methods
            cal, cal_txt = None, f"calibration failed: {exc}"
            dof = cm.optics.dof_um if cm.optics else (hi - lo) / 10
        print(f"# {spec['name']}: {cal_txt} ({time.perf_counter() - t:.1f} s)", file=sys.stderr)
        cals[spec["name"]] = cal
        dofs[spec["name"]] = dof
    synth = [sp["name"] for sp in specs if sp["kind"] == "array"]
    for spec in specs:
        name = spec["name"]
        dof = dofs[name]
        plans = [(m, m, cals[name]) for m in ("fewshot", "singleshot", "classic")]
        others = [o for o in synth if o != name and cals.get(o) is not None]
        if name in synth and others:  # sample invariance: calibrated on another sample
            plans.insert(1, (f"fewshot, calibrated on {others[0]}", "fewshot", cals[others[0]]))
        rel = np.linspace(-10, 10, a.starts)
        for label, method, cal in plans:
            imgs, err_um, err_dof, wrong, fails, secs, used = [], [], [], [], 0, [], set()
            n_out = 0
            reasons: list[str] = []
            for seed in range(a.seeds):
                rng = np.random.default_rng(1000 + seed)
                for r in rel:
                    off = float(rng.uniform(-20, 20))
                    m = make(spec, offset_um=off, seed=seed * 100 + int((r + 10) * 10))
                    start = m.true_focus_um + r * dof
                    if not (m.travel[0] <= start <= m.travel[1]):
                        n_out += 1
                        continue
                    m.set_z(start)
                    try:
                        run = run_autofocus(m, method, calibration=cal, refine=a.refine,
                                            dof_um=dof)
                    except Exception as exc:
                        fails += 1
                        reasons.append(str(exc))
                        continue
                    if not run.ok:
                        fails += 1
                        reasons.append(run.stop_reason)
                        continue
                    used.add(run.method_used)
                    e = run.final_z_um - m.true_focus_um
                    imgs.append(run.images_used)
                    err_um.append(abs(e))
                    err_dof.append(abs(e) / dof)
                    wrong.append(run.wrong_direction_moves(m.true_focus_um))
                    secs.append(run.elapsed_s)
            n = len(imgs) + fails
            if reasons:
                print(f"#   {label}: {fails} failure(s), e.g. {reasons[0][:160]}", file=sys.stderr)
            rows.append({
                "stack": name, "method": label + (
                    f" (ran {'+'.join(sorted(used))})" if used and used != {method} else ""),
                "runs": n, "starts_outside_travel": n_out,
                "img_med": pct(imgs, 50), "img_p95": pct(imgs, 95),
                "err_um_med": pct(err_um, 50), "err_dof_med": pct(err_dof, 50),
                "err_dof_p95": pct(err_dof, 95),
                "within1": (np.sum(np.asarray(err_dof) <= 1.0) / n) if n else float("nan"),
                "wrong": float(np.mean(wrong)) if wrong else float("nan"),
                "fails": fails, "ms": 1000 * pct(secs, 50), "dof": dof,
            })
    print("| stack | method | runs | images median | images p95 | error µm median | "
          "error DoF median | error DoF p95 | within 1 DoF | wrong-direction moves/run | "
          "failures | DoF µm | ms/run |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['stack']} | {r['method']} | {r['runs']} | {r['img_med']:.0f} | "
              f"{r['img_p95']:.0f} | {r['err_um_med']:.3f} | {r['err_dof_med']:.2f} | "
              f"{r['err_dof_p95']:.2f} | {100 * r['within1']:.1f} % | {r['wrong']:.2f} | "
              f"{r['fails']} | {r['dof']:.3f} | {r['ms']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
