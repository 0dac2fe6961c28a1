"""Batch inputs: files, folders (searched recursively) and glob patterns -> one file list."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path

from napari_focusqa.batch.naming import IMAGE_FOLDER_SUFFIXES, IMAGE_SUFFIXES, is_thumbnail
from napari_focusqa.batch.schema import BatchError


def _image_files(folder: Path) -> list[str]:
    found: list[str] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        images = [d for d in dirs if d.lower().endswith(IMAGE_FOLDER_SUFFIXES)]
        dirs[:] = [d for d in dirs if d not in images]  # an OME-Zarr is one image
        found.extend(os.path.join(root, d) for d in images)
        for f in sorted(files):
            if f.startswith(".") or not f.lower().endswith(IMAGE_SUFFIXES):
                continue
            p = os.path.join(root, f)
            if not is_thumbnail(p):
                found.append(p)
    return found


def expand_inputs(inputs: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Files, folders (recursive, :data:`IMAGE_SUFFIXES` only; an ``.zarr`` folder is one
    image) and glob patterns -> file list.

    Order is kept (folders sorted), duplicates dropped.

    Raises
    ------
    BatchError
        An input that does not exist or a pattern that matches nothing.
    """
    if not inputs:
        raise BatchError("INPUT: give at least one file, folder or glob pattern")
    files: list[str] = []
    for raw in inputs:
        s = os.fspath(raw)
        if os.path.isdir(s) and s.lower().rstrip("/").endswith(IMAGE_FOLDER_SUFFIXES):
            files.append(s)
        elif os.path.isdir(s):
            files.extend(_image_files(Path(s)))
        elif os.path.isfile(s):
            files.append(s)
        elif glob.has_magic(s):
            matches = sorted(glob.glob(s, recursive=True))
            if not matches:
                raise BatchError(f"INPUT: pattern {s!r} matches no files")
            for mt in matches:
                if os.path.isdir(mt) and not mt.lower().endswith(IMAGE_FOLDER_SUFFIXES):
                    files.extend(_image_files(Path(mt)))
                elif not is_thumbnail(mt):
                    files.append(mt)
        else:
            raise BatchError(f"INPUT: {s} does not exist")
    seen: set[str] = set()
    out = []
    for f in files:
        key = os.path.abspath(f)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
