"""Export a FocusQA model as a bioimage.io model package (spec 0.5, ONNX weights).

The package folder holds ``bioimageio.yaml``, the ONNX weights with the input
normalisation inside the graph (see :mod:`napari_focusqa.bioimageio.onnx_graph`), test
input/output tensors made by FocusQA's own pipeline (:meth:`FocusModel.run` on patches
of the embedded procedural sample), a cover image, documentation (``README.md``),
citations, license and training-data credits. ``bioimageio.core.test_model`` runs the
weights on the test input and compares them with our pipeline's output.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from napari_focusqa.core.errors import ModelCardError
from napari_focusqa.core.model import FocusModel, load_model

#: the models that ship with FocusQA
SHIPPED = ("fqa-levels", "fqa-stain", "fqa-distance")
LICENSE = "BSD-3-Clause"
CITATIONS = [
    {"text": "Yang SJ, Berndl M, Ando DM, et al. Assessing microscope image focus quality "
             "with deep learning. BMC Bioinformatics 19, 77 (2018)",
     "doi": "10.1186/s12859-018-2087-4"},
    {"text": "Park H, Yoon J, Park S, et al. FluoCLIP: Stain-Aware Focus Quality Assessment "
             "in Fluorescence Microscopy. arXiv:2602.23791",
     "url": "https://arxiv.org/abs/2602.23791"},
    {"text": "Shajkofci A, Liebling M. DeepFocus: a Few-Shot Microscope Slide Auto-Focus "
             "using a Sample Invariant CNN-based Sharpness Function. arXiv:2001.00667",
     "url": "https://arxiv.org/abs/2001.00667"},
    {"text": "Yeganeh Y, Frantzen M, Lee M, et al. DeepAf: One-Shot Spatiospectral "
             "Auto-Focus Model for Digital Pathology. arXiv:2510.05315",
     "url": "https://arxiv.org/abs/2510.05315"},
]
DATA_CREDITS = (
    "Procedural textures made by FocusQA, plus real in-focus images: BBBC006 "
    "(Ljosa et al. 2012, Nature Methods 9:637; via google/microscopeimagequality, "
    "Apache-2.0), BioImageAnalysisNotebooks BPAE cells (CC-BY 4.0) and the ImageJ HeLa "
    "sample, NEUBIAS training-resources (CC-BY 4.0); defocus simulated with the Born-Wolf "
    "PSF of Yang et al. 2018."
)
N_TEST = 4


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def test_patches(fm: FocusModel) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """``N_TEST`` raw patches (N, 1, P, P) float32 from the embedded sample (in focus and
    defocused planes of both channels), their stain indices and a label per patch."""
    from napari_focusqa.core.patches import make_grid
    from napari_focusqa.io.sample_data import SAMPLE_FOCUS, make_sample_stack

    sample = make_sample_stack()
    data = sample.data[0]
    p = fm.patch_size
    grid = make_grid(data.shape[-2:], p)
    out, stains, labels = [], [], []
    for c, focus in enumerate(SAMPLE_FOCUS[:2]):
        for dz in (0, 6):
            z = min(int(focus) + dz, data.shape[0] - 1)
            patches = grid.extract(data[z, c]).reshape(-1, p, p)
            # the patch with most structure: a meaningful test for every model
            k = int(np.argmax(patches.reshape(len(patches), -1).std(axis=1)))
            out.append(patches[k])
            stains.append(fm.stain_index(sample.stains[c]))
            labels.append(f"{sample.channel_names[c]}, z {z} ({'in focus' if dz == 0 else 'defocused'})")
    x = np.stack(out).astype(np.float32)[:, None]
    stain = np.asarray(stains, np.int64) if (fm.card.get("inputs") or {}).get("stain") else None
    return x, stain, labels


def _cover(path: Path, x: np.ndarray, labels: list[str], outputs: dict[str, np.ndarray],
           fm: FocusModel) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(x), figsize=(8, 4), dpi=100)
    for i, ax in enumerate(np.atleast_1d(axes)):
        ax.imshow(x[i, 0], cmap="gray")
        ax.set_axis_off()
        if fm.task == "distance":
            txt = f"distance {float(outputs['distance'][i]):+.1f} DoF"
        else:
            probs = next(iter(outputs.values()))[i]
            txt = f"level {int(np.argmax(probs))} (p={float(np.max(probs)):.2f})"
        ax.set_title(labels[i].replace(", ", "\n", 1) + f"\n{txt}", fontsize=9)
    fig.suptitle(f"FocusQA {fm.id}", fontsize=12)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _axes_in(p: int) -> list[dict[str, Any]]:
    return [{"type": "batch"}, {"type": "channel", "channel_names": ["intensity"]},
            {"type": "space", "id": "y", "size": p, "unit": "micrometer"},
            {"type": "space", "id": "x", "size": p, "unit": "micrometer"}]


def _outputs(fm: FocusModel, arrays: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    descrs = []
    for name, arr in arrays.items():
        axes: list[dict[str, Any]] = [{"type": "batch"}]
        if arr.ndim == 2:
            labels = [f"level_{k}" for k in range(arr.shape[1])]
            axes.append({"type": "channel", "channel_names": labels})
        descrs.append({
            "id": name,
            "description": {"probabilities": "probability of each defocus level "
                                             "(0 = in focus, higher = more defocused)",
                            "distance": "signed defocus in depths of field",
                            "confidence": "confidence of the distance (0..1)"}.get(name, name),
            "axes": axes,
            "test_tensor": {"source": f"test_output_{name}.npy"},
            "data": {"type": "float32"},
        })
    return descrs


def _documentation(fm: FocusModel, onnx_sha: str, labels: list[str]) -> str:
    card = fm.card
    norm = card["input_normalisation"]
    lines = [
        f"# FocusQA `{fm.id}`", "",
        str(card.get("description", "")), "",
        "## Input", "",
        f"`patches`: raw intensities of {fm.patch_size}x{fm.patch_size} patches of one "
        "grey fluorescence channel, float32 `(batch, 1, y, x)`. No pre-processing is needed: "
        f"the card's normalisation (`{norm.get('method')}`"
        + (f", eps {norm.get('eps')}" if "eps" in norm else "") + ") runs inside the ONNX "
        "graph, because the bioimage.io spec has no logarithm among its pre-processing "
        "operations (for `log-zscore`: `log(1 + max(x, 0))`, then a per-patch z-score "
        "`(v - mean) / (std + eps)`; a constant patch becomes all zeros).", "",
    ]
    if (card.get("inputs") or {}).get("stain"):
        lines += ["`stain`: int64 `(batch,)`, the stain class of each patch: "
                  + ", ".join(f"{i} = {s}" for i, s in enumerate(fm.stains)) + ".", ""]
    lines += ["## Output", ""]
    if fm.task == "distance":
        lines += ["`distance`: signed defocus in depths of field "
                  f"(DoF {card.get('dof_um')} µm for the training optics); `confidence` 0..1.", ""]
    else:
        lines += [f"`probabilities`: `(batch, {fm.num_classes})`, one probability per "
                  "defocus level (0 = in focus; levels 0.."
                  f"{card.get('in_focus_max_level', 2)} count as in focus in FocusQA). "
                  "Blur diameters per level (px): "
                  + ", ".join(str(v) for v in card.get("blur_diameter_px") or []) + ".", ""]
    lines += [
        "## Use", "",
        "Tile a plane into patches (FocusQA uses a grid that also covers the image edge), "
        "run the model on each patch, and aggregate per image weighted by certainty "
        "(Yang et al. 2018). FocusQA runs this package directly: "
        f"`focusqa assess image.tif --model {fm.id}/bioimageio.yaml`.", "",
        "## Test tensors", "",
        "Made by FocusQA's own pipeline (`FocusModel.run`, NumPy normalisation + the "
        "card's original ONNX) on patches of the embedded procedural sample: "
        + "; ".join(labels) + ".", "",
        "## Training data", "", DATA_CREDITS, "",
        "## Files", "",
        f"Weights: `{fm.id}.onnx` (sha256 `{onnx_sha}`), the card's network "
        f"(sha256 `{card.get('sha256')}`) with the normalisation nodes in front.", "",
        "## Validation", "",
        "`bioimageio.core.test_model` reproduces the test outputs from the test inputs "
        "with these weights (FocusQA's test suite runs it for every shipped model). "
        "Accuracy on held-out data: see FocusQA's docs/models.md and the card in "
        "`config.focusqa.card`.", "",
        "## Citations", "",
        *[f"- {c['text']}" for c in CITATIONS], "",
        f"License: {LICENSE}.", "",
    ]
    return "\n".join(lines)


def export_model(model: str | FocusModel, out_dir: str | Path) -> Path:
    """Write the bioimage.io package of ``model`` to ``out_dir/<id>/``; returns the yaml."""
    import onnx
    from bioimageio.spec import save_bioimageio_yaml_only

    from napari_focusqa import __version__
    from napari_focusqa.bioimageio.onnx_graph import with_normalisation

    fm = load_model(model)
    inputs = fm.card.get("inputs") or {}
    patch_name = str(inputs.get("patches", "patches"))
    folder = Path(out_dir) / fm.id
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    graph = onnx.load(str(fm.onnx_path))
    wrapped = with_normalisation(graph, fm.card["input_normalisation"], patch_name)
    weights = folder / f"{fm.id}.onnx"
    onnx.save(wrapped, str(weights))
    opset = max(int(o.version) for o in wrapped.opset_import if o.domain in ("", "ai.onnx"))

    x, stain, labels = test_patches(fm)
    outputs = fm.run(x[:, 0], stain=int(stain[0]) if stain is not None else None)
    if stain is not None and len(set(stain.tolist())) > 1:  # one stain per run call
        parts = [fm.run(x[i : i + 1, 0], stain=int(s)) for i, s in enumerate(stain)]
        outputs = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    outputs = {k: np.asarray(v, np.float32) for k, v in outputs.items()}
    np.save(folder / "test_input_patches.npy", x)
    in_descrs: list[dict[str, Any]] = [{
        "id": patch_name,
        "description": "raw intensities of one grey channel (normalised inside the graph)",
        "axes": _axes_in(fm.patch_size),
        "test_tensor": {"source": "test_input_patches.npy"},
        "data": {"type": "float32"},
    }]
    if stain is not None:
        np.save(folder / "test_input_stain.npy", stain)
        in_descrs.append({
            "id": str(inputs["stain"]),
            "description": "stain class index per patch: " + ", ".join(
                f"{i}={s}" for i, s in enumerate(fm.stains)),
            "axes": [{"type": "batch"}],
            "test_tensor": {"source": "test_input_stain.npy"},
            "data": {"type": "int64"},
        })
    for name, arr in outputs.items():
        np.save(folder / f"test_output_{name}.npy", arr)
    _cover(folder / "cover.png", x, labels, outputs, fm)
    onnx_sha = _sha256(weights)
    (folder / "README.md").write_text(_documentation(fm, onnx_sha, labels))
    card = {k: v for k, v in fm.card.items() if not str(k).startswith("_")}
    rdf: dict[str, Any] = {
        "type": "model",
        "format_version": "0.5.4",
        "name": f"FocusQA {fm.id}",
        "description": str(fm.card.get("description", fm.id))[:1000],
        "authors": [{"name": "FocusQA developers"}],
        "cite": CITATIONS,
        "license": LICENSE,
        "documentation": "README.md",
        "covers": ["cover.png"],
        "tags": ["focus", "image-quality", "quality-control", "fluorescence-light-microscopy",
                 "2d", "onnx", "classification" if fm.task != "distance" else "regression"],
        "version": str(__version__),
        "inputs": in_descrs,
        "outputs": _outputs(fm, outputs),
        "weights": {"onnx": {"source": weights.name, "sha256": onnx_sha,
                             "opset_version": opset}},
        "config": {"focusqa": {"card": card, "normalisation_in_graph": True,
                               "training_data_credits": DATA_CREDITS}},
    }
    yaml_path = folder / "bioimageio.yaml"
    save_bioimageio_yaml_only(rdf, yaml_path)
    return yaml_path


def export_zip(yaml_path: Path, zip_path: Path) -> Path:
    """Zip a package folder (files at the archive root, as bioimage.io expects)."""
    import zipfile

    folder = yaml_path.parent
    tmp = zip_path.with_suffix(zip_path.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, f.name)
    tmp.replace(zip_path)
    return zip_path


def check_exportable(model_id: str) -> None:
    if model_id not in SHIPPED:
        try:
            load_model(model_id)
        except ModelCardError:
            raise ModelCardError(f"model: {model_id!r} is not an installed model; "
                                 f"shipped ones are {', '.join(SHIPPED)}") from None
