"""Python side of the Fiji/ImageJ bridge: one import for the whole public API.

The work is done in modules with one job each:

* :mod:`fiji_bridge.jvm`: finding Java and ``ij.jar``, the one :class:`ImageJSession`
  of the process (pyimagej with a Fiji.app, else scyjava + ``ij.jar``);
* :mod:`fiji_bridge.convert`: numpy / :class:`ImageData` <-> ``ImagePlus``;
* :mod:`fiji_bridge.overlay`: results -> ``Overlay`` (patch rectangles + legend);
* :mod:`fiji_bridge.tables`: results -> ``ResultsTable`` (the CLI CSV's columns);
* :mod:`fiji_bridge.assess`: :func:`assess_imageplus`, the core on an ``ImagePlus``.

``from fiji_bridge import bridge`` then ``bridge.start()``, ``bridge.to_imageplus(...)``,
``bridge.assess_imageplus(...)`` keeps working as documented in ``docs/fiji.md``.
"""

from __future__ import annotations

from fiji_bridge.assess import BridgeResult, assess_imageplus
from fiji_bridge.convert import HYPERSTACK_AXES, from_imageplus, to_imageplus, to_python
from fiji_bridge.jvm import (
    IJ_JAR_CANDIDATES,
    FijiError,
    ImageJSession,
    find_ij_jar,
    java_executable,
    jimport,
    session,
    start,
)
from fiji_bridge.overlay import (
    LEGEND_ROI_PREFIX,
    PATCH_ROI_PREFIX,
    ROI_INSET,
    legend_entries,
    legend_text,
    patch_rois,
    result_overlay,
    slices_of,
)
from fiji_bridge.tables import (
    csv_cell,
    patch_records,
    patch_results_table,
    record_columns,
    records_equal,
    results_table,
    table_to_records,
)
from napari_focusqa.core.assess import FocusResult
from napari_focusqa.core.zstack import StackResult
from napari_focusqa.io.reader import ImageData

__all__ = [
    "HYPERSTACK_AXES", "IJ_JAR_CANDIDATES", "LEGEND_ROI_PREFIX", "PATCH_ROI_PREFIX",
    "ROI_INSET", "BridgeResult", "FijiError", "FocusResult", "ImageData", "ImageJSession",
    "StackResult", "assess_imageplus", "csv_cell", "find_ij_jar", "from_imageplus",
    "java_executable", "jimport", "legend_entries", "legend_text", "patch_records",
    "patch_results_table", "patch_rois", "record_columns", "records_equal", "result_overlay",
    "results_table", "session", "slices_of", "start", "table_to_records", "to_imageplus",
    "to_python",
]
