"""CZIs that bioio-czi misreads, read with aicspylibczi directly.

Two cases seen with bioio-czi 3.0 (both with valid pixels):

* it raises ``UnsupportedMetadataError`` for a CZI whose XML has no
  ``Scaling/Items/Distance`` for X and Y (e.g. ``czitools_DAPI_GFP.czi``);
* it takes the scene list from the XML, so a CZI whose subblocks hold more scenes than
  its XML lists (pylibCZIrw writes such files) would lose scenes silently.

Such files are read here with aicspylibczi (installed with bioio-czi): every scene in the
pixel data, channel names from the image or display settings, scaling when present.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_focusqa.core.errors import ImageError
from napari_focusqa.io.image_data import (
    ImageData,
    check_series_index,
    check_size,
    first_line,
    to_tzcyx,
)
from napari_focusqa.io.metadata import clean_channel_names, czi_optics, positive


def _channel_names(meta: Any) -> list[str | None]:
    for xpath in (".//Information/Image/Dimensions/Channels/Channel",
                  ".//DisplaySetting/Channels/Channel"):
        names = [ch.attrib.get("Name") for ch in meta.findall(xpath)]
        if names and any(names):
            return names
    return []


def _distance_um(meta: Any, axis: str) -> float | None:
    el = meta.find(f"./Metadata/Scaling/Items/Distance[@Id='{axis}']/Value")
    if el is None or not (el.text or "").strip():
        return None
    return positive(round(float(el.text) * 1e6, 9))  # CZI stores metres


def _scene_indices(czi: Any) -> list[int]:
    """Scene indices present in the subblocks (the pixels), whatever the XML says."""
    if "S" not in str(czi.dims):
        return [0]
    found: set[int] = set()
    for shape in czi.get_dims_shape():
        lo, hi = shape.get("S", (0, 1))
        found.update(range(int(lo), int(hi)))
    return sorted(found)


def subblock_scene_count(path: str) -> int | None:
    """How many scenes a CZI's pixel data holds (None if aicspylibczi cannot tell)."""
    try:
        from aicspylibczi import CziFile

        return len(_scene_indices(CziFile(path)))
    except Exception:  # the caller's reader reports unreadable files
        return None


def read_czi_direct(path: str, *, lazy: bool = False,
                    only: int | None = None) -> list[ImageData]:
    """Every scene of a CZI as :class:`ImageData`, without bioio-czi's metadata layer.

    ``lazy`` is accepted for the common signature; pixels are read into memory.
    """
    try:
        from aicspylibczi import CziFile
    except ImportError as exc:
        raise ImageError(f"{path}: reading CZI files needs bioio-czi "
                         "(pip install 'napari-focusqa[formats]')") from exc
    try:
        czi = CziFile(path)
        if czi.is_mosaic():
            raise ImageError(f"{path}: mosaic CZI without scaling metadata is not supported")
        dims = str(czi.dims)
        scenes = _scene_indices(czi)
        n_scenes = len(scenes)
        meta = czi.meta
        names = _channel_names(meta)
        optics = czi_optics(meta)
        check_series_index(path, only, n_scenes)
        out = []
        for s in range(n_scenes) if only is None else [only]:
            arr, dim_list = czi.read_image(**({"S": scenes[s]} if "S" in dims else {}))
            # aicspylibczi letters: A = samples (RGB); S (scene, length 1 here), B, H, I,
            # R, V, M are other CZI dimensions, dropped by to_tzcyx when of length 1
            letters = "".join("S" if d == "A" else d if d in "TZCYX" else "B"
                              for d, _ in dim_list)
            canon = to_tzcyx(np.asarray(arr), letters, path)
            check_size(path, canon.nbytes)
            nc = int(canon.shape[2])
            out.append(ImageData(
                data=canon, path=path, channel_names=clean_channel_names(names, nc),
                z_step_um=_distance_um(meta, "Z"), pixel_size_um=_distance_um(meta, "X"),
                original_axes=dims, series=s, n_series=n_scenes, format="czi",
                metadata={"reader": "aicspylibczi (bioio-czi misreads this file)",
                          **({"optics": optics} if optics else {})},
            ))
        return out
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(f"{path}: not a readable CZI file ({first_line(exc)})") from exc


def czi_pixels(path: str, scene_index: int, shape_tzcyx: tuple[int, ...]) -> np.ndarray | None:
    """The ``TZCYX`` pixels of one scene, read plane by plane with pylibCZIrw.

    About 2x faster than bioio-czi's whole-file read on the same CZI
    (``benchmarks/bench_io.py``). Returns None (caller falls back to bioio) when the
    file's planes do not match ``shape_tzcyx`` (bioio's view of the scene).
    """
    try:
        from pylibCZIrw import czi as pyczi
    except ImportError:
        return None
    t_n, z_n, c_n, y_n, x_n = shape_tzcyx
    with pyczi.open_czi(path) as doc:
        box = doc.total_bounding_box
        rects = doc.scenes_bounding_rectangle
        keys = sorted(rects)
        scene = keys[scene_index] if keys and scene_index < len(keys) else None
        spans = {k: box.get(k, (0, 1)) for k in "TZC"}
        if (spans["T"][1] - spans["T"][0], spans["Z"][1] - spans["Z"][0],
                spans["C"][1] - spans["C"][0]) != (t_n, z_n, c_n):
            return None
        out: np.ndarray | None = None
        for t in range(t_n):
            for z in range(z_n):
                for c in range(c_n):
                    plane = doc.read(plane={"T": spans["T"][0] + t, "Z": spans["Z"][0] + z,
                                            "C": spans["C"][0] + c}, scene=scene)
                    if plane.ndim != 3 or plane.shape[2] != 1 or plane.shape[:2] != (y_n, x_n):
                        return None  # RGB or a different layout: bioio decides
                    if out is None:
                        out = np.empty(shape_tzcyx, plane.dtype)
                    out[t, z, c] = plane[..., 0]
    return out
