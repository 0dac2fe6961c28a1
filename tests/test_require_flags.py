"""FOCUSQA_REQUIRE_* turns a skip for a missing optional component into a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()
TESTS = """
import pytest
def test_gui():
    pytest.importorskip("napari_not_installed_here")
def test_dask():
    pytest.importorskip("distributed_not_installed_here")
def test_other_skip():
    pytest.skip("FOCUSQA_FIJI_DIR not set")
"""


@pytest.mark.parametrize(
    "env, failed, skipped",
    [({}, 0, 3), ({"FOCUSQA_REQUIRE_ALL": "1"}, 2, 1), ({"FOCUSQA_REQUIRE_GUI": "1"}, 1, 2)],
)
def test_required_components_fail_instead_of_skip(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
    failed: int, skipped: int,
) -> None:
    for k in ("FOCUSQA_REQUIRE_ALL", "FOCUSQA_REQUIRE_GUI", "FOCUSQA_REQUIRE_DASK"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_components=TESTS.replace("napari_not", "napari_x").replace(
        "distributed_not", "distributed_x"))
    res = pytester.runpytest("-p", "no:cacheprovider")
    res.assert_outcomes(failed=failed, skipped=skipped)
