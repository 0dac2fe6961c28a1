"""Two-shot on a Born–Wolf instrument with spherical aberration (issue 11): the readings'
solve is checked against the two images' whole level posteriors, and pairs the
posteriors (or the SF) show to be beyond fqa-levels' range take the SF side instead of a
focus the readings only seem to give. Real model, real BPAE actin texture, the
simulated microscope (UniMMCore) replaying a psfstack stack; focus at z = 0."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from conftest import require_shared

from napari_focusqa.autofocus.optics import Optics
from napari_focusqa.autofocus.psfstack import defocus_stacks
from napari_focusqa.autofocus.search import run_autofocus
from napari_focusqa.autofocus.simulated import SimulatedMicroscope
from napari_focusqa.autofocus.twoshot import (
    LevelGeometry,
    solve_focus,
    solve_focus_posterior,
)

OPTICS = Optics(na=0.75, wavelength_nm=520, immersion_n=1.0, pixel_size_um=0.325)
DOF = OPTICS.dof_um  # 1.358 µm
Z = np.arange(-14, 14.01, 1.0)  # documented focus: plane 14 (z = 0)


@pytest.fixture(scope="module")
def sa_stack() -> np.ndarray:
    """BPAE actin (rows 300-555, cols 600-855) through the training PSF with 0.5 waves
    of spherical aberration: the benchmark's Born–Wolf test region."""
    img = tifffile.imread(require_shared("bian_bpae_3ch_infocus.tif"))[1].astype(np.float64)
    return defocus_stacks([img[300:556, 600:856]], Z, OPTICS, sa_waves=0.5)[0]


def _run(stack: np.ndarray, start_dof: float, seed: int):
    m = SimulatedMicroscope(stack, 1.0, focus_index=14, optics=OPTICS, pixel_size_um=0.325,
                            offset_um=3.0 + seed, seed=50 + seed, name="born-wolf sa 0.5")
    m.set_z(m.true_focus_um + start_dof * DOF)
    run = run_autofocus(m, "twoshot")
    assert run.ok, run.stop_reason
    assert run.images_used == 3 and run.method_used == "twoshot"
    info = run.info["twoshot"]
    old = solve_focus(tuple(info["readings_um"][0]), tuple(info["readings_um"][1]))[0]
    return m.true_focus_um, run, info, old


@pytest.mark.parametrize("start_dof", [-3.0, -1.0, 0.0, 2.0, 4.0])
def test_twoshot_sa_lands_within_1_dof_near_focus(sa_stack, start_dof):
    truth, run, _info, _old = _run(sa_stack, start_dof, seed=0)
    assert abs(run.final_z_um - truth) <= DOF


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_twoshot_posteriors_overrule_the_readings_solve(sa_stack, seed):
    """5 DoF above focus the aberrated PSF makes the first reading too small (4.8 µm
    for 6.8 µm): the two readings' solve puts focus ~2 DoF above the true one. The two
    posteriors make that focus unlikely and locate it themselves."""
    truth, run, info, old = _run(sa_stack, 5.0, seed)
    assert abs(old - truth) > 1.5 * DOF
    assert info["rule"].startswith("pair likelihood")
    lo, hi = info["likely_focus_um"]
    assert not lo <= old <= hi and lo <= truth <= hi
    assert abs(run.final_z_um - truth) <= DOF


@pytest.mark.parametrize("seed", [0, 2])
def test_twoshot_far_start_beyond_range_is_detected_from_the_posteriors(sa_stack, seed):
    """13.6 µm below focus (2.3x the model's range) neither reading is flagged
    saturated (bimodal posteriors average to ~5 µm), and their solve lands ~7 DoF below
    focus. The pair's likelihood is a plateau over everything beyond the range, so the
    run takes the SF side and the bounded step instead, and lands."""
    truth, run, info, old = _run(sa_stack, -10.0, seed)
    assert [r[2] for r in info["readings_um"]] == [False, False]
    assert old - truth < -5 * DOF
    assert info["rule"].startswith("both beyond range")
    lo, hi = info["likely_focus_um"]
    assert hi - lo > info["saturation_um"]
    assert info["sf_side"] == 1.0
    assert abs(run.final_z_um - truth) <= DOF


@pytest.mark.parametrize("seed", [1, 2])
def test_twoshot_sf_contradicting_the_levels_takes_the_sf_side(sa_stack, seed):
    """11 µm above focus the aberrated image reads sharper (2.1 µm) than the one 2.7 µm
    nearer focus (3.6 µm), while its SF is clearly lower: the readings are not
    distances there (their solve: 8 DoF away); the SF side and the bounded step land."""
    truth, run, info, old = _run(sa_stack, 8.0, seed)
    assert info["sf_contradicts_levels"] is True
    assert old - truth > 5 * DOF
    assert info["rule"].startswith("SF contradicts the levels")
    assert abs(run.final_z_um - truth) <= DOF


def test_solve_focus_posterior_recovers_focus_and_flags_a_plateau():
    """Posteriors that put each image at the level its distance gives (the geometry of
    the real fqa-levels card) locate focus; two top-level posteriors only bound it."""
    from napari_focusqa.core.model import default_model_id, load_model

    geom = LevelGeometry(load_model(default_model_id()), OPTICS)
    n = len(geom.diameters)

    def posterior(dist: float) -> np.ndarray:
        lv = float(geom.level_index(np.array([dist]), 0.0)[0])
        p = np.zeros(n)
        i = min(int(lv), n - 2)
        p[i], p[i + 1] = 1.0 - (lv - i), lv - i
        return p

    f_true, z1, z2 = 0.7, -2.3, 1.9
    f, lo, hi, _floor = solve_focus_posterior(
        geom, (z1, posterior(abs(z1 - f_true))), (z2, posterior(abs(z2 - f_true))),
        -14.0, 14.0, DOF / 10)
    assert f == pytest.approx(f_true, abs=0.2) and hi - lo < 1.0
    top = np.zeros(n)
    top[-1] = 1.0
    _f, lo, hi, _floor = solve_focus_posterior(geom, (-13.0, top), (-8.0, top),
                                              -14.0, 14.0, DOF / 10)
    assert hi - lo > geom.z_saturation_um and lo > -8.0 + geom.z_saturation_um - 0.5
