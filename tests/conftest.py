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
