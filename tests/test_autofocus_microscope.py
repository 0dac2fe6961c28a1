"""Microscope adapters: pymmcore-plus cores without hardware, and the simulated camera."""

from __future__ import annotations

import numpy as np
import pytest

from napari_focusqa.autofocus.microscope import MicroscopeError, MMCoreMicroscope
from napari_focusqa.autofocus.simulated import SimulatedMicroscope, plane_noise_sigma


def test_config_errors_name_the_file(tmp_path):
    with pytest.raises(MicroscopeError, match="config file not found"):
        MMCoreMicroscope.from_config(tmp_path / "missing.cfg")
    bad = tmp_path / "bad.cfg"
    bad.write_text("Device,Z,NoSuchAdapterLibrary,Nope\n")
    with pytest.raises(MicroscopeError, match=r"cannot load .*bad\.cfg"):
        MMCoreMicroscope.from_config(bad)


def test_core_without_focus_stage_is_refused():
    from pymmcore_plus.experimental.unicore import UniMMCore

    with pytest.raises(MicroscopeError, match="focus_device"):
        MMCoreMicroscope(UniMMCore())


def _ramp_stack():
    y, x = np.mgrid[0:64, 0:64]
    base = ((x // 8 + y // 8) % 2 * 1000 + 100).astype(np.float32)
    return np.stack([base * (1 + 0.1 * k) for k in range(5)]).astype(np.uint16)


def test_interpolation_noise_and_drift():
    st = _ramp_stack()
    m = SimulatedMicroscope(st, 1.0, offset_um=10.0, photons=None, focus_index=2)
    m.set_z(11.5)  # half way between planes 1 and 2
    img = m.snap().astype(np.float64)
    expect = 0.5 * (st[1].astype(np.float64) + st[2])
    assert np.abs(img - expect).mean() < 2.0  # plane_noise_sigma ~ 0 for a clean image
    assert m.true_focus_um == pytest.approx(12.0)
    # shot noise: the variance grows with the signal (Poisson), and is seeded
    a = SimulatedMicroscope(st, 1.0, photons=500, seed=7)
    b = SimulatedMicroscope(st, 1.0, photons=500, seed=7)
    a.set_z(2.0)
    b.set_z(2.0)
    ia, ib = a.snap(), b.snap()
    np.testing.assert_array_equal(ia, ib)
    diff = ia.astype(np.float64) - st[2]
    bright = st[2] > 1000
    assert diff[bright].std() > diff[~bright].std() > 0
    # lateral drift: each snap is shifted by (1, 2) px more
    d = SimulatedMicroscope(st, 1.0, photons=None, drift_px_per_snap=(1.0, 2.0))
    d.set_z(0.0)
    first, second = d.snap(), d.snap()
    np.testing.assert_array_equal(np.roll(first, (1, 2), axis=(0, 1)), second)
    # axial drift: the focus plane seen at a fixed stage position moves by 1 plane/snap
    zd = SimulatedMicroscope(st, 1.0, photons=None, z_drift_um_per_snap=1.0)
    zd.set_z(0.0)
    s0, s1 = zd.snap(), zd.snap()
    np.testing.assert_array_equal(s0, st[0])
    np.testing.assert_array_equal(s1, st[1])


def test_plane_noise_estimate():
    rng = np.random.default_rng(0)
    st = np.full((3, 128, 128), 100.0) + rng.normal(0, 5.0, (3, 128, 128))
    np.testing.assert_allclose(plane_noise_sigma(st), 5.0, rtol=0.1)
