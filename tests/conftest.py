"""Shared fixtures.

``shared_data``: the real images in ``../shared/data``. Tests that need them skip with a
reason when the folder is absent (a user's clone) and *fail* when
``FOCUSQA_REQUIRE_SHARED_DATA=1`` (CI).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the property tests on a fixed, reproducible set of examples; locally each run
# explores new ones (and replays failures from the .hypothesis database).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FOCUSQA_SHARED_DATA", REPO.parent / "shared" / "data"))


def require_shared(name: str | None = None) -> Path:
    """Path to ``../shared/data[/name]``; skip (or fail in CI) when missing."""
    path = SHARED_DATA / name if name else SHARED_DATA
    if not path.exists():
        msg = f"real test data not available: {path} (../shared/data is absent in a user's clone)"
        if os.environ.get("FOCUSQA_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(msg + " but FOCUSQA_REQUIRE_SHARED_DATA=1")
        pytest.skip(msg)
    return path


# --------------------------------------------------------------------------------------
# Optional components: a test that skips because one is missing *fails* when the
# component is required (CI sets FOCUSQA_REQUIRE_ALL=1 after installing every extra), so
# a green CI run proves the GUI, dask, training, microscope, format, bioimage.io and Java
# tests really ran.
# --------------------------------------------------------------------------------------
COMPONENTS: dict[str, tuple[str, ...]] = {
    "GUI": ("napari", "qtpy", "pytestqt", "magicgui", "superqt", "npe2", "vispy"),
    "DASK": ("dask", "distributed", "pandas", "pyarrow", "psutil", "tqdm"),
    "TRAIN": ("torch", "onnx"),
    "MICROSCOPE": ("pymmcore_plus", "pymmcore", "useq", "pymmcore_widgets"),
    "FORMATS": ("bioio", "bioio_czi", "bioio_tifffile", "bioio_ome_tiff", "bioio_nd2",
                "bioio_lif", "bioio_ome_zarr", "skimage"),
    "BIOIMAGEIO": ("bioimageio",),
    "JAVA": ("scyjava", "imagej", "jpype"),
}


def component_required(component: str) -> bool:
    """True when ``FOCUSQA_REQUIRE_<COMPONENT>=1`` or ``FOCUSQA_REQUIRE_ALL=1``."""
    return "1" in (os.environ.get(f"FOCUSQA_REQUIRE_{component}"),
                   os.environ.get("FOCUSQA_REQUIRE_ALL"))


def _component_of_skip(reason: str) -> str | None:
    """The component whose missing module caused an ``importorskip`` skip."""
    low = reason.lower()
    if "could not import" not in low and "no module named" not in low:
        return None
    for comp, mods in COMPONENTS.items():
        for mod in mods:
            if f"'{mod}" in low or f'"{mod}' in low:
                return comp
    return "UNKNOWN"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    rep = outcome.get_result()
    if not rep.skipped or not isinstance(rep.longrepr, tuple):
        return
    reason = str(rep.longrepr[2])
    comp = _component_of_skip(reason)
    if comp is not None and (component_required(comp) or (
            comp == "UNKNOWN" and os.environ.get("FOCUSQA_REQUIRE_ALL") == "1")):
        rep.outcome = "failed"
        rep.longrepr = (f"{reason} -- but this component is required here "
                        f"(FOCUSQA_REQUIRE_{comp}=1 or FOCUSQA_REQUIRE_ALL=1): install the extra")


@pytest.fixture(autouse=True)
def _isolated_widget_settings(tmp_path_factory: pytest.TempPathFactory,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """magicgui ``persist=True`` forms read/write a per-test folder, never the user's
    ~/.cache/magicgui: settings a previous run left there must not steer a test."""
    try:
        import magicgui._util as mg_util
    except ImportError:
        return
    cache = tmp_path_factory.mktemp("magicgui_cache")
    monkeypatch.setattr(mg_util, "user_cache_dir", lambda *a, **k: cache)


@pytest.fixture
def shared_data() -> Path:
    return require_shared()


@pytest.fixture(scope="session")
def sharpness_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Card path of a tiny real ONNX model (Laplacian energy -> level), built once."""
    from napari_focusqa.testing import build_sharpness_model

    return build_sharpness_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def sharpness_stain_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from napari_focusqa.testing import build_sharpness_model

    return build_sharpness_model(
        tmp_path_factory.mktemp("models_stain"), "test-stain", stain_input=True
    )
