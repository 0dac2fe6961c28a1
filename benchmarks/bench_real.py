"""Real-data benchmark of verdicts and best slices (issue 10): prints tables, writes nothing.

Usage::

    python benchmarks/bench_real.py [--model ID|CARD|none] [--fast] [--data DIR]

For every real focal stack in ``../shared/data`` (and the vendor CZIs when
:mod:`napari_focusqa.io` can read them) and each channel:

* best-slice error (planes) of SF, model and fused best slice against the focus documented
  in ``../shared/data/README.md`` (never against our own metric);
* Spearman rho of the model's expected level against ``|z - focus|`` (higher = the level
  grows with the distance from focus, as it should);
* planes far from focus called ``in_focus``: far = ``>= 3 DoF`` when the optics are
  documented (or assumed, see STACKS), else ``>= 4 um``; DoF = ``lambda n / NA^2``
  (the wave-optical depth of field, as in ``training.simulate.Optics.dof_um``);
* fraction of planes called ``no_structure``.

Then: constant and pure-noise frames (-> ``no_structure`` rate), in-focus real fields
(BBBC006 fields held out of training, BPAE, HeLa: fraction called ``in_focus``), and the
in/out F1 on the held-out BBBC006 fields defocused with the model card's own optics and
levels, assessed whole through the core's patch grid.

Targets (issue 10): 0 far planes of optically sectioned stacks in focus; Spearman >= 0.85;
fused best within +-1 plane on >= 90 % of channels with a documented focus and never worse
than SF by more than 1 plane; 100 % no_structure on constant/noise frames.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class StackSpec:
    """A real stack, its documented focus (None: not documented) and optics."""

    file: str
    focus: int | None
    sectioned: bool
    na: float | None = None  # None: not documented -> far = >= 4 um
    n: float = 1.0
    wavelength_um: float = 0.52
    z_step_um: float | None = None  # overrides the file's (None: from the file)
    note: str = ""

    def dof_um(self) -> float | None:
        return None if self.na is None else self.wavelength_um * self.n / self.na**2

    def far_um(self) -> float:
        dof = self.dof_um()
        return 4.0 if dof is None else 3.0 * dof


#: documented focus and optics from ../shared/data/README.md; "assumed" values say so
STACKS: tuple[StackSpec, ...] = (
    StackSpec("deconwolf_dapi_widefield_zstack.tif", 19, False, na=1.45, n=1.515,
              wavelength_um=0.461, note="widefield NA 1.45 oil, DAPI 461 nm (documented)"),
    StackSpec("dfnn_lightsheet_mito_defocus_zstack.tif", 19, True,
              note="light-sheet, nominal focus 19; NA undocumented -> 4 um rule"),
    StackSpec("czitools_celldivision_2ch_zstack.tif", None, False, na=1.2, n=1.33,
              wavelength_um=0.565, note="widefield 50x/1.2; focus not documented (edge case)"),
    StackSpec("bian_beads_airyscan_zstack.tif", None, True, na=1.4, n=1.518,
              note="Airyscan beads; focus not documented; NA 1.4 assumed"),
    StackSpec("flowdec_bead_25pct_zstack.tif", 25, False,
              note="bead, peak z~25; z-step unknown; 64x64 px < one model patch"),
    StackSpec("neubias_golgi_bfa_zstack.tif", 18, True,
              note="confocal-like, SF peak z~18 (documented); NA undocumented -> 4 um rule"),
    StackSpec("bian_grid_confocal_1au_zstack.tif", 11, True, na=1.4, n=1.518,
              note="confocal 1 AU, SF peak z~11 (documented); NA 1.4 oil assumed"),
)
CZIS = ("czitools_CellDivision_T3_Z5_CH2_X240_Y170.czi", "czitools_DAPI_GFP.czi",
        "czitools_WellD6_S1.czi")
FAST_STACKS = ("deconwolf_dapi_widefield_zstack.tif", "neubias_golgi_bfa_zstack.tif",
               "bian_grid_confocal_1au_zstack.tif", "bian_beads_airyscan_zstack.tif")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when undefined."""
    from scipy import stats

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def data_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    env = os.environ.get("FOCUSQA_SHARED_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data",
                                                 Path("/work/shared/data")]:
        if cand.is_dir():
            return cand
    raise SystemExit("bench_real: ../shared/data not found (set FOCUSQA_SHARED_DATA)")


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


# --------------------------------------------------------------------------------------
def stack_rows(spec: StackSpec, path: Path, model: Any) -> list[dict[str, Any]]:
    from napari_focusqa.core.zstack import assess_stack
    from napari_focusqa.io.reader import read_image

    img = read_image(str(path))
    zcyx = np.asarray(img.zcyx(0))
    dz = spec.z_step_um or img.z_step_um
    small = min(zcyx.shape[-2:]) < 84
    from napari_focusqa.pipeline import image_airy_px

    # the instrument's verdict threshold when the file records its optics, as every
    # front end applies it (docs/verdicts.md)
    res = assess_stack(zcyx, None if small else model, z_step_um=dz,
                       airy_px=image_airy_px(img))
    rows = []
    for c in res.channels:
        nz = c.n_slices
        row: dict[str, Any] = {
            "stack": path.name.replace("_zstack.tif", ""), "ch": c.channel, "nz": nz,
            "focus": spec.focus, "sectioned": spec.sectioned,
            "best_sf": c.best_z_index_sf, "best_model": c.best_z_index_model,
            "best_fused": c.best_z_index, "confidence": c.best_z_confidence,
            "no_structure": float(np.mean([v == "no_structure" for v in c.verdicts])),
            "in_focus": float(np.mean([v == "in_focus" for v in c.verdicts])),
            "model": not small,
            "thr": None if small else c.slices[0].in_focus_max_level,
        }
        if spec.focus is not None:
            f = spec.focus
            row["err_sf"] = abs(c.best_z_index_sf - f)
            row["err_model"] = None if c.best_z_index_model is None else abs(c.best_z_index_model - f)
            row["err_fused"] = abs(c.best_z_index - f)
            lv = c.expected_level
            dist = np.abs(np.arange(nz) - f)
            row["spearman"] = None if lv is None else spearman(lv, dist)
            if lv is not None:  # no_structure planes ranked as the most defocused level
                k = (c.slices[0].num_classes or 11) - 1
                lv_ns = np.where([v == "no_structure" for v in c.verdicts], k, lv)
                row["spearman_ns"] = spearman(lv_ns, dist)
            if dz is not None:
                far = dist * dz >= spec.far_um() - 1e-9
                row["far_n"] = int(far.sum())
                row["far_in_focus"] = int(sum(v == "in_focus" for v, x in zip(c.verdicts, far) if x))
                # the same planes assessed alone (no stack context): the model's own call
                alone = [s.verdict != "no_structure" and s.predicted_level is not None
                         and s.predicted_level <= s.in_focus_max_level for s in c.slices]
                row["far_alone"] = int(sum(a for a, x in zip(alone, far) if x))
        rows.append(row)
    return rows


def czi_rows(path: Path, model: Any) -> list[dict[str, Any]] | str:
    from napari_focusqa.core.assess import assess_image
    from napari_focusqa.io.reader import read_image

    try:
        img = read_image(str(path))
    except Exception as exc:  # the reader names what it cannot do
        return f"{path.name}: skipped ({str(exc).splitlines()[0][:100]})"
    from napari_focusqa.pipeline import image_airy_px

    data = np.asarray(img.data)
    airy = image_airy_px(img)
    rows = []
    for c in range(data.shape[2]):
        verdicts = [assess_image(data[0, z, c], model, airy_px=airy).verdict
                    for z in range(data.shape[1])]
        rows.append({"stack": path.name, "ch": c, "nz": data.shape[1],
                     "no_structure": float(np.mean([v == "no_structure" for v in verdicts])),
                     "in_focus": float(np.mean([v == "in_focus" for v in verdicts]))})
    return rows


def noise_frames(fast: bool) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(2026)
    n = 4 if fast else 12
    out: list[tuple[str, np.ndarray]] = []
    for _ in range(n):
        h, w = rng.integers(84, 400, 2)
        out.append(("constant", np.full((h, w), rng.uniform(0, 4000)).astype(np.uint16)))
        lam = 10 ** rng.uniform(-3, 4)
        out.append(("poisson", (rng.poisson(lam, (h, w)) + rng.integers(0, 500)).astype(np.uint16)))
        out.append(("gaussian", rng.normal(rng.uniform(0, 3e4), 10 ** rng.uniform(-1, 3),
                                           (h, w)).astype(np.float32)))
        dens = rng.uniform(0.005, 0.8)
        sp = (rng.random((h, w)) < dens) * rng.exponential(rng.uniform(5, 2000), (h, w))
        out.append(("speckle", sp.astype(np.uint16)))
    return out


def infocus_fields(dd: Path) -> list[tuple[str, np.ndarray]]:
    import tifffile

    from napari_focusqa.training.data import REAL_SOURCES

    spec = next(s for s in REAL_SOURCES if s.get("fields"))
    arr = tifffile.imread(dd / spec["file"])
    out = [(f"bbbc006 field {i} (held out)", arr[i]) for i in spec["test_fields"]]
    for f, names in (("bian_bpae_3ch_infocus.tif", ("nuclei", "actin", "mito")),
                     ("imagej_hela_3ch_infocus.tif", ("lysosomes", "mito", "nucleus"))):
        a = tifffile.imread(dd / f)
        out += [(f"{f.split('_')[1]} {n}", a[c]) for c, n in enumerate(names)]
    return out


#: (photons at the brightest structure, camera offset) of the defocused BBBC006 fields
PHOTONS = ((100.0, 100.0), (800.0, 100.0), (3000.0, 500.0))


def bbbc006_f1(dd: Path, model: Any, fast: bool) -> dict[str, Any] | str:
    """In/out F1 of the verdict on held-out BBBC006 fields defocused with the card's optics
    and level distances (whole fields through the core's patch grid)."""
    import tifffile

    from napari_focusqa.core.assess import assess_image
    from napari_focusqa.training.data import REAL_SOURCES
    from napari_focusqa.training.simulate import Optics, fft_blur_bank, psf_kernel

    card = model.card
    zs = (card.get("training_data") or {}).get("defocus_z_um")
    if not isinstance(zs, list):
        return "F1 skipped: the card has no training_data.defocus_z_um"
    opt = card.get("optics") or {}
    optics = Optics(**{k: opt[k] for k in ("wavelength_um", "na", "n", "pixel_um", "sa_waves")
                       if k in opt})
    spec = next(s for s in REAL_SOURCES if s.get("fields"))
    arr = tifffile.imread(dd / spec["file"]).astype(np.float32)
    rng = np.random.default_rng(7)
    fields = spec["test_fields"][:1] if fast else spec["test_fields"]
    levels = range(0, len(zs), 2 if fast else 1)
    kernels = [psf_kernel(zs[lv], optics) for lv in levels]
    tp = fp = fn = tn = 0
    for i in fields:
        img = arr[i]
        lo, hi = np.percentile(img, [0.5, 99.9])
        clean = np.clip((img - lo) / max(hi - lo, 1e-6), 0, None)
        bank = fft_blur_bank(clean, kernels)
        for lv, blurred in zip(levels, bank):
            for photons, offset in PHOTONS:
                raw = rng.poisson(np.clip(blurred, 0, None) * photons) + offset
                r = assess_image(raw.astype(np.uint16), model)
                truth = lv <= model.in_focus_max_level
                called = r.verdict == "in_focus"
                tp += truth and called
                fp += (not truth) and called
                fn += truth and not called
                tn += (not truth) and not called
    f1 = 2 * tp / max(2 * tp + fp + fn, 1)
    return {"fields": list(fields), "levels": list(levels), "tp": tp, "fp": fp, "fn": fn,
            "tn": tn, "f1": f1}


# --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model id or card ('none' = SF only)")
    ap.add_argument("--fast", action="store_true", help="a subset (CI-sized)")
    ap.add_argument("--data", default=None, help="folder of the real images")
    args = ap.parse_args(argv)

    from napari_focusqa.core.assess import assess_image
    from napari_focusqa.pipeline import resolve_model

    dd = data_dir(args.data)
    model = resolve_model(args.model)
    mid = f"{model.id} ({model.onnx_path})" if model is not None else "none (SF only)"
    t0 = time.perf_counter()
    print(f"bench_real: model {mid}, data {dd}{', fast subset' if args.fast else ''}\n")

    rows: list[dict[str, Any]] = []
    notes = []
    for spec in STACKS:
        if args.fast and spec.file not in FAST_STACKS:
            continue
        path = dd / spec.file
        if not path.is_file():
            notes.append(f"{spec.file}: missing")
            continue
        rows += stack_rows(spec, path, model)
        if spec.note:
            notes.append(f"{spec.file}: {spec.note}; far >= {spec.far_um():.2f} um")
    hdr = (f"{'stack':<34}{'ch':>3}{'nz':>4}{'focus':>6}{'SF':>4}{'mod':>5}{'fus':>5}"
           f"{'errSF':>6}{'errM':>5}{'errF':>5}{'conf':>6}{'rho':>7}{'rho*':>7}{'far in-focus':>14}"
           f"{'alone':>7}"
           f"{'no_str':>8}{'in_f':>6}{'thr':>5}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        far = f"{r['far_in_focus']}/{r['far_n']}" if "far_n" in r else "-"
        alone = f"{r['far_alone']}" if "far_n" in r else "-"
        print(f"{r['stack'][:33]:<34}{r['ch']:>3}{r['nz']:>4}{_fmt(r['focus']):>6}"
              f"{r['best_sf']:>4}{_fmt(r['best_model']):>5}{r['best_fused']:>5}"
              f"{_fmt(r.get('err_sf')):>6}{_fmt(r.get('err_model')):>5}{_fmt(r.get('err_fused')):>5}"
              f"{r['confidence']:>6.2f}{_fmt(r.get('spearman')):>7}{_fmt(r.get('spearman_ns')):>7}{far:>14}"
              f"{alone:>7}"
              f"{r['no_structure']:>8.2f}{r['in_focus']:>6.2f}{_fmt(r.get('thr')):>5}")
    print("  rho = Spearman(expected level, |z - focus|); rho* the same with no_structure "
          "planes ranked as the most defocused level; far in-focus = in a stack (with the "
          "stack context), alone = the same planes assessed one by one; thr = the "
          "verdict threshold (level <=): the card's, or the instrument's when the file "
          "records its optics")
    for n in notes:
        print("  note:", n)

    if not args.fast:
        print()
        for czi in CZIS:
            p = dd / czi
            if not p.is_file():
                continue
            out = czi_rows(p, model)
            if isinstance(out, str):
                print("  CZI", out)
                continue
            for r in out:
                print(f"  CZI {r['stack']} ch {r['ch']}: {r['nz']} plane(s), no_structure "
                      f"{r['no_structure']:.2f}, in_focus {r['in_focus']:.2f}")

    doc = [r for r in rows if r.get("focus") is not None]
    with_model = [r for r in doc if r.get("err_model") is not None]
    sect = [r for r in rows if r["sectioned"] and "far_n" in r]
    rhos = [r["spearman"] for r in doc if r.get("spearman") is not None
            and not np.isnan(r["spearman"])]
    print("\nsummary")
    if doc:
        within = sum(r["err_fused"] <= 1 for r in doc)
        worse = sum(r["err_fused"] > r["err_sf"] + 1 for r in doc)
        print(f"  fused best within +-1 plane: {within}/{len(doc)} channels with a documented "
              f"focus (target >= 90 %); worse than SF by > 1 plane: {worse} (target 0)")
        print(f"  SF best within +-1: {sum(r['err_sf'] <= 1 for r in doc)}/{len(doc)}; model "
              f"best within +-1: {sum(r['err_model'] <= 1 for r in with_model)}/{len(with_model)}")
    if rhos:
        print(f"  Spearman(expected level, |z - focus|): min {min(rhos):.2f}, mean "
              f"{np.mean(rhos):.2f}, >= 0.85 on {sum(v >= 0.85 for v in rhos)}/{len(rhos)} "
              "(target >= 0.85 each)")
    if sect:
        print(f"  optically sectioned stacks: far planes called in_focus "
              f"{sum(r['far_in_focus'] for r in sect)}/{sum(r['far_n'] for r in sect)} (target 0); "
              f"assessed alone {sum(r['far_alone'] for r in sect)}")

    frames = noise_frames(args.fast)
    by: dict[str, list[str | None]] = {}
    for kind, fr in frames:
        by.setdefault(kind, []).append(assess_image(fr, model).verdict)
    tot = sum(len(v) for v in by.values())
    ns = sum(v == "no_structure" for vs in by.values() for v in vs)
    inf = sum(v == "in_focus" for vs in by.values() for v in vs)
    kinds = ", ".join(f"{k} {sum(v == 'no_structure' for v in vs)}/{len(vs)}"
                      for k, vs in by.items())
    print(f"  constant/noise frames: no_structure {ns}/{tot} (target 100 %), in_focus {inf} "
          f"({kinds})")

    if model is not None:
        fields = infocus_fields(dd)
        print("  in-focus real fields (verdict, structured fraction, expected level):")
        for name, fr in fields:
            r = assess_image(fr, model)
            print(f"    {name:<34} {str(r.verdict):<13} {r.structured_fraction:.2f}  "
                  f"{r.expected_level:.2f}")
        print(f"    in_focus on {sum(assess_image(f, model).verdict == 'in_focus' for _, f in fields)}"
              f"/{len(fields)} fields")
        f1 = bbbc006_f1(dd, model, args.fast)
        if isinstance(f1, str):
            print("  " + f1)
        else:
            print(f"  BBBC006 held-out fields {f1['fields']} defocused to levels {f1['levels'][0]}.."
                  f"{f1['levels'][-1]} at {len(PHOTONS)} photon levels: in/out F1 {f1['f1']:.3f} "
                  f"(tp {f1['tp']}, fp {f1['fp']}, fn {f1['fn']}, tn {f1['tn']})")
    print(f"\n{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
