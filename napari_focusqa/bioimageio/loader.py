"""Run a bioimage.io model package as a FocusQA model (``--model path/to/package``).

Accepted: a package folder, its ``bioimageio.yaml``/``rdf.yaml``, or a package zip.
A package is FocusQA-compatible when it has ONNX weights, one image input with axes
``batch, channel (1), y, x`` of a fixed square size, and either

* FocusQA's own ``config.focusqa.card`` (packages from ``focusqa export``: levels,
  stain-aware levels or distance, normalisation inside the graph), or
* one output ``batch, channel (K >= 2)``: per-patch probabilities of K ordered defocus
  levels (0 = in focus), with no pre-processing or one FocusQA can apply itself
  (``zero_mean_unit_variance`` over y, x; ``scale_linear`` with scalar gain/offset).

Anything else is refused with a :class:`ModelCardError` naming the package and the
problem. The yaml is read with PyYAML and the weights' sha256 checked; full spec
validation is ``bioimageio.core.test_model``'s job. A third-party levels model counts
levels ``0..K//5`` as in focus (2 of 11, as FocusQA's default).
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Any

from napari_focusqa.core.errors import ModelCardError
from napari_focusqa.core.model import FocusModel, check_session_shapes

YAML_NAMES = ("bioimageio.yaml", "rdf.yaml")
_CACHE: dict[tuple[str, float, int | None], FocusModel] = {}


def is_package(ref: Any) -> bool:
    """True when ``ref`` names a bioimage.io package (folder, yaml or zip) on disk."""
    if not isinstance(ref, (str, os.PathLike)):
        return False
    p = Path(ref)
    name = p.name.lower()
    if p.is_dir():
        return any((p / n).is_file() for n in YAML_NAMES)
    return p.is_file() and (name in YAML_NAMES or name.endswith((".bioimageio.yaml", ".zip")))


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "focusqa" / "bioimageio"


def _yaml_of(ref: Path) -> Path:
    if ref.is_dir():
        for n in YAML_NAMES:
            if (ref / n).is_file():
                return ref / n
        raise ModelCardError(f"model {ref}: folder has no bioimageio.yaml or rdf.yaml")
    if ref.suffix.lower() != ".zip":
        return ref
    digest = hashlib.sha256(ref.read_bytes()).hexdigest()[:16]
    dest = _cache_dir() / digest
    if not dest.is_dir():
        tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
        try:
            with zipfile.ZipFile(ref) as zf:
                for member in zf.namelist():  # refuse paths leaving the folder
                    if member.startswith("/") or ".." in Path(member).parts:
                        raise ModelCardError(f"model {ref}: unsafe path {member!r} in zip")
                zf.extractall(tmp)
        except zipfile.BadZipFile as exc:
            raise ModelCardError(f"model {ref}: not a readable zip ({exc})") from exc
        tmp.replace(dest)
    return _yaml_of(dest)


def _describe(yaml_path: Path) -> dict[str, Any]:
    """The package's yaml as a dict (format 0.5), with the weights' sha256 checked.

    Read with PyYAML rather than bioimageio.spec: FocusQA needs a handful of fields, and
    the full validation is ``test_model``'s job (run by the tests and after export).
    """
    try:
        import yaml
    except ImportError as exc:
        raise ModelCardError(f"model {yaml_path}: reading bioimage.io packages needs PyYAML "
                             "(pip install 'napari-focusqa[bioimageio]')") from exc
    try:
        rdf = yaml.safe_load(yaml_path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ModelCardError(f"model {yaml_path}: cannot read YAML ({exc})") from exc
    if not isinstance(rdf, dict) or rdf.get("type") != "model":
        raise ModelCardError(f"model {yaml_path}: not a bioimage.io model description")
    if not str(rdf.get("format_version", "")).startswith("0.5"):
        raise ModelCardError(f"model {yaml_path}: format_version {rdf.get('format_version')!r}; "
                             "FocusQA reads model 0.5 (convert with bioimageio.spec "
                             "update_format)")
    for key in ("inputs", "outputs", "weights"):
        if not rdf.get(key):
            raise ModelCardError(f"model {yaml_path}: missing {key!r}")
    return rdf


def _axis_types(tensor: dict[str, Any]) -> list[str]:
    return [str(a.get("type", "")) for a in tensor.get("axes") or []]


def _patch_size(yaml_path: Path, tensor: dict[str, Any]) -> int:
    types = _axis_types(tensor)
    tid = tensor.get("id")
    if types != ["batch", "channel", "space", "space"]:
        raise ModelCardError(f"model {yaml_path}: input {tid!r} has axes {types}; "
                             "FocusQA needs batch, channel, y, x")
    axes = tensor["axes"]
    if len(axes[1].get("channel_names") or []) != 1:
        raise ModelCardError(f"model {yaml_path}: input {tid!r} must have one channel")
    sizes = [axes[2].get("size"), axes[3].get("size")]
    if not all(isinstance(v, int) for v in sizes) or sizes[0] != sizes[1]:
        raise ModelCardError(f"model {yaml_path}: input {tid!r} needs a fixed square "
                             f"patch size, got {sizes}")
    return int(sizes[0])


def _normalisation(yaml_path: Path, tensor: dict[str, Any]) -> dict[str, Any]:
    steps = [p for p in tensor.get("preprocessing") or [] if p.get("id") != "ensure_dtype"]
    if not steps:
        return {"method": "none"}
    ids = [str(p.get("id")) for p in steps]
    kw = steps[0].get("kwargs") or {}
    if ids == ["zero_mean_unit_variance"] and sorted(kw.get("axes") or []) == ["x", "y"]:
        return {"method": "zscore", "eps": float(kw.get("eps", 1e-6))}
    if ids == ["scale_linear"] and isinstance(kw.get("gain", 1.0), (int, float)) \
            and isinstance(kw.get("offset", 0.0), (int, float)):
        return {"method": "scale", "scale": float(kw.get("gain", 1.0)),
                "offset": float(kw.get("offset", 0.0))}
    raise ModelCardError(f"model {yaml_path}: pre-processing {ids} is not one FocusQA can "
                         "apply (none, zero_mean_unit_variance over y/x, or scalar "
                         "scale_linear)")


def _weights(yaml_path: Path, rdf: dict[str, Any]) -> Path:
    onnx = (rdf.get("weights") or {}).get("onnx")
    if not isinstance(onnx, dict) or not onnx.get("source"):
        raise ModelCardError(f"model {yaml_path}: the package has no ONNX weights "
                             "(FocusQA runs ONNX models)")
    path = (yaml_path.parent / str(onnx["source"])).resolve()
    if not path.is_file():
        raise ModelCardError(f"model {yaml_path}: ONNX weights {path} not found")
    want = onnx.get("sha256")
    if want:
        from napari_focusqa.core.model import sha256_file

        got = sha256_file(path)
        if got != want:
            raise ModelCardError(f"model {yaml_path}: sha256 mismatch for {path.name} "
                                 f"(yaml {str(want)[:12]}…, file {got[:12]}…)")
    return path


def package_card(yaml_path: Path, rdf: dict[str, Any]) -> tuple[dict[str, Any], Path]:
    """A FocusQA card for a package, and the path of its ONNX weights."""
    onnx_path = _weights(yaml_path, rdf)
    inputs, outs = rdf["inputs"], rdf["outputs"]
    patches = inputs[0]
    p = _patch_size(yaml_path, patches)
    own = ((rdf.get("config") or {}).get("focusqa") or {}).get("card")
    if isinstance(own, dict):
        card = dict(own)
        card["input_normalisation"] = {"method": "none"}  # inside the exported graph
    else:
        if len(inputs) != 1 or len(outs) != 1 or _axis_types(outs[0]) != ["batch", "channel"]:
            raise ModelCardError(f"model {yaml_path}: FocusQA runs packages with one image "
                                 "input and one (batch, channel) output of level probabilities")
        k = len(outs[0]["axes"][1].get("channel_names") or [])
        if k < 2:
            raise ModelCardError(f"model {yaml_path}: output needs >= 2 level channels")
        card = {"task": "levels", "num_classes": k, "in_focus_max_level": max(0, k // 5),
                "description": str(rdf.get("description", "")),
                "input_normalisation": _normalisation(yaml_path, patches),
                "outputs": {"probabilities": str(outs[0].get("id"))}, "stains": ["generic"]}
    card.setdefault("id", str(rdf.get("id") or rdf.get("name") or yaml_path.parent.name))
    card.update({
        "onnx": onnx_path.name, "patch_size": p,
        "inputs": {"patches": str(patches.get("id", "input")),
                   "stain": str(inputs[1].get("id")) if len(inputs) > 1 else None},
        "_card_path": str(yaml_path), "source": "bioimage.io package",
    })
    return card, onnx_path


def load_package(ref: str | os.PathLike[str], *, threads: int | None = None) -> FocusModel:
    """Load a bioimage.io package as a :class:`FocusModel` (validated, shapes checked)."""
    p = Path(ref)
    if not p.exists():
        raise ModelCardError(f"model {p}: file does not exist")
    yaml_path = _yaml_of(p)
    key = (str(yaml_path.resolve()), yaml_path.stat().st_mtime, threads)
    if key in _CACHE:
        return _CACHE[key]
    descr = _describe(yaml_path)
    card, onnx_path = package_card(yaml_path, descr)
    fm = FocusModel(card=card, onnx_path=onnx_path, threads=threads)
    check_session_shapes(fm, yaml_path)
    _CACHE[key] = fm
    return fm
