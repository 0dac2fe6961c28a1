"""Honest autofocus benchmark: calibrate on one region, test on another of the same
instrument; the truth is the documented focus.

Cases (each: a calibration stack and a *different* test stack of the same instrument):

- deconwolf DAPI (real widefield, NA 1.45 oil, 461 nm, 0.13 µm px): calibrate on the top
  half of the field (rows 0-99), test on the bottom half (rows 101-200); documented
  focus plane 19 (data README).
- DFNN mitochondria (real light-sheet, no NA recorded): rows 0-359 -> rows 360-719;
  documented nominal focus plane 19.
- Born-Wolf simulated instrument (NA 0.75 air, 520 nm, 0.325 µm px, 0.5 waves of
  spherical aberration; the PSF the levels model was trained with, other optics):
  BPAE actin region A -> region B; focus z = 0 by construction.
- astigmatic simulated instrument (Gaussian blur, focal lines at ±1 µm): BBBC006
  Hoechst field 2 -> field 5; focus z = 0 (circle of least confusion).

Every run replays the test stack on a simulated microscope (UniMMCore + pure-Python
camera/stage, Poisson noise at 2000 photo-electrons, random hidden stage offset).
Starts: a grid from -10 to +10 DoF around the true focus (only those inside the stage
travel), several noise seeds. Methods: fewshot, singleshot (the calibration's head),
twoshot (no calibration; needs the optics), classic (Brent on SF). Failed runs count as
misses. "wrong dir." = the first move went away from focus (starts > 1 DoF away);
fewshot and classic probe both sides by design. Prints one markdown table.

Usage: ``python benchmarks/bench_autofocus.py [--seeds 2] [--starts 21] [--quick]
[--methods twoshot,classic] [--cases born,deconwolf]`` (``--methods``: only these methods'
rows; ``--cases``: only cases whose name contains one of these words, any case; the
simulated stacks are cached in ``--cache``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import tifffile

from napari_focusqa.autofocus.calibrate import calibrate_microscope
from napari_focusqa.autofocus.optics import Optics, optics_from_info
from napari_focusqa.autofocus.psfstack import astigmatic_stack, defocus_stacks
from napari_focusqa.autofocus.safety import StageGuard
from napari_focusqa.autofocus.search import default_limits, run_autofocus
from napari_focusqa.autofocus.simulated import SimulatedMicroscope

DATA = Path(os.environ.get("FOCUSQA_SHARED_DATA",
                           Path(__file__).resolve().parents[2] / "shared" / "data"))
METHODS = ("fewshot", "singleshot", "twoshot", "classic")


def _real(name: str, fn: str, dz: float, focus: int, rows_a: slice, rows_b: slice,
          ) -> dict | None:
    p = DATA / fn
    if not p.exists():
        print(f"# skipped {name}: {p} not found", file=sys.stderr)
        return None
    st = tifffile.imread(p)
    with tifffile.TiffFile(p) as tif:
        info = (tif.imagej_metadata or {}).get("Info")
        xres = tif.pages[0].tags.get("XResolution")
        px = (xres.value[1] / xres.value[0]) if xres and xres.value[0] else None
    optics = optics_from_info(info, px)
    return {"name": name, "a": st[:, rows_a], "b": st[:, rows_b], "dz": dz, "focus": focus,
            "optics": optics, "px": px}


def _cached(cache: Path, key: str, make) -> np.ndarray:
    f = cache / f"{key}.npy"
    if f.exists():
        return np.load(f)
    arr = make()
    cache.mkdir(parents=True, exist_ok=True)
    np.save(f, arr)
    return arr


def cases(cache: Path) -> list[dict]:
    out = [c for c in (
        _real("deconwolf DAPI (real widefield), top -> bottom half",
              "deconwolf_dapi_widefield_zstack.tif", 0.3, 19, slice(0, 100), slice(101, 201)),
        _real("DFNN mito (real light-sheet), top -> bottom half",
              "dfnn_lightsheet_mito_defocus_zstack.tif", 0.05, 19, slice(0, 360),
              slice(360, 720)),
    ) if c is not None]
    bpae, hoechst = DATA / "bian_bpae_3ch_infocus.tif", DATA / "bbbc006_hoechst_infocus_9fields.tif"
    z = np.arange(-14, 14.01, 1.0)
    if bpae.exists():
        o = Optics(na=0.75, wavelength_nm=520, immersion_n=1.0, pixel_size_um=0.325)
        img = tifffile.imread(bpae)[1].astype(np.float64)
        regions = {"A": img[:256, :256], "B": img[300:556, 600:856]}

        def make(r: str) -> np.ndarray:
            a, b = defocus_stacks([regions["A"], regions["B"]], z, o, sa_waves=0.5)
            np.save(cache / "bw_sa0.5_A.npy", a)
            return b if r == "B" else a

        cache.mkdir(parents=True, exist_ok=True)
        a = _cached(cache, "bw_sa0.5_A", lambda: make("A"))
        b = _cached(cache, "bw_sa0.5_B", lambda: make("B"))
        out.append({"name": "Born-Wolf sim (NA 0.75, SA 0.5 waves), BPAE region A -> B",
                    "a": a, "b": b, "dz": 1.0, "focus": 14, "optics": o, "px": 0.325})
    if hoechst.exists():
        f = tifffile.imread(hoechst).astype(np.float64)
        kw = {"sigma0_px": 1.0, "px_per_um": 2.0, "astig_um": 1.0}
        out.append({"name": "astigmatic sim, BBBC006 field 2 -> field 5",
                    "a": astigmatic_stack(f[1][:256, :256], z, **kw),
                    "b": astigmatic_stack(f[4][:256, :256], z, **kw),
                    "dz": 1.0, "focus": 14, "optics": None, "px": None})
    return out


def _scope(case: dict, stack: np.ndarray, **kw) -> SimulatedMicroscope:
    return SimulatedMicroscope(stack, case["dz"], focus_index=case["focus"],
                               optics=case["optics"], pixel_size_um=case["px"],
                               name=case["name"], **kw)


def pct(a: list[float], q: float) -> float:
    return float(np.percentile(a, q)) if len(a) else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--starts", type=int, default=21)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--methods", default=",".join(METHODS),
                    help="comma-separated subset of " + ",".join(METHODS))
    ap.add_argument("--cases", default="",
                    help="comma-separated words; only cases whose name contains one")
    ap.add_argument("--cache", default=os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                    "focusqa_bench_autofocus"))
    a = ap.parse_args(argv)
    if a.quick:
        a.seeds, a.starts = 1, 11
    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        ap.error(f"--methods: expected a comma-separated subset of {','.join(METHODS)}, "
                 f"got {a.methods!r}")
    words = [w.strip().lower() for w in a.cases.split(",") if w.strip()]
    rows = []
    for case in cases(Path(a.cache)):
        if words and not any(w in case["name"].lower() for w in words):
            continue
        cm = _scope(case, case["a"], seed=12345)
        lo, hi = cm.travel
        t = time.perf_counter()
        cal = calibrate_microscope(cm, StageGuard(cm, default_limits(cm)), z_from_um=lo,
                                   z_to_um=hi, step_um=case["dz"], model=None,
                                   optics=case["optics"], distance_model=None)
        dof = cal.dof_um
        head = cal.singleshot
        print(f"# {case['name']}: DoF {dof:.3f} µm ({cal.dof_source}); calibration focus "
              f"{cal.moffat['z0'] - cm.true_focus_um:+.3f} µm from the documented one; head "
              f"CV {head.cv if head else None} ({time.perf_counter() - t:.1f} s)",
              file=sys.stderr)
        for method in methods:
            imgs, errs, wrong, far, fails, nofb, n, reasons = [], [], 0, 0, 0, 0, 0, []
            for seed in range(a.seeds):
                rng = np.random.default_rng(1000 + seed)
                for r in np.linspace(-10, 10, a.starts):
                    off = float(rng.uniform(-20, 20))
                    m = _scope(case, case["b"], offset_um=off, seed=seed * 1000 + int((r + 10) * 10))
                    truth = m.true_focus_um
                    start = truth + r * dof
                    if not (m.travel[0] <= start <= m.travel[1]):
                        continue
                    m.set_z(start)
                    n += 1
                    try:
                        run = run_autofocus(m, method, calibration=cal, dof_um=dof)
                    except Exception as exc:  # refused before the run (e.g. no optics)
                        fails += 1
                        reasons.append(str(exc))
                        continue
                    zs = [q.z_um for q in run.acquisitions[1:]] + [run.final_z_um or start]
                    moved = [z for z in zs if abs(z - start) > 1e-9]
                    if abs(start - truth) > dof and moved:
                        far += 1
                        wrong += int(np.sign(moved[0] - start) != np.sign(truth - start))
                    if not run.ok:
                        fails += 1
                        reasons.append(run.stop_reason)
                        continue
                    nofb += int(run.method_used == method)
                    imgs.append(run.images_used)
                    errs.append(abs(run.final_z_um - truth) / dof)
            if reasons:
                print(f"#   {method}: {fails} failed/refused, e.g. {reasons[0][:150]}",
                      file=sys.stderr)
            rows.append((case["name"], method, n, nofb, pct(imgs, 50), pct(imgs, 95),
                         sum(e <= 1.0 for e in errs), pct(errs, 50), wrong, far, fails, dof))
    print("| case (calibrate -> test) | method | starts | ran without fallback | images "
          "median | images p95 | within 1 DoF | error DoF median | wrong dir. (first move) "
          "| failed/refused | DoF µm |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (name, meth, n, nofb, med, p95, w1, emed, wrong, far, fails, dof) in rows:
        def f(v: float) -> str:
            return "–" if not np.isfinite(v) else f"{v:.0f}"
        print(f"| {name} | {meth} | {n} | {100 * nofb / n if n else 0:.0f} % | {f(med)} | "
              f"{f(p95)} | {100 * w1 / n if n else 0:.0f} % | "
              f"{'–' if not np.isfinite(emed) else f'{emed:.2f}'} | "
              f"{100 * wrong / far if far else 0:.0f} % of {far} | {fails} | {dof:.3f} |")
    print("| Micro-Manager OughtaFocus (reported, not run here) | Brent on a sharpness score "
          "| – | – | 8–9 | – | – | – | – | – | – |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
