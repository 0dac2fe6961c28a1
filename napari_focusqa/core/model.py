"""ONNX focus models and their model cards (see docs/model-card.md)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_focusqa.core.errors import Cancelled, ModelCardError
from napari_focusqa.core.normalise import NORMALISATIONS, normalise_patches
from napari_focusqa.core.parallel import map_chunks

TASKS = ("levels", "levels-stain", "distance")
REQUIRED_FIELDS = ("id", "task", "onnx", "sha256", "patch_size", "input_normalisation")
DEFAULT_BATCH = 256
#: at most this many one-thread sessions per model (each holds its own memory arena)
MAX_SESSIONS = 8


def models_dirs() -> list[Path]:
    """Folders searched for model cards, in order of precedence."""
    dirs: list[Path] = []
    env = os.environ.get("FOCUSQA_MODELS_DIR")
    if env:
        dirs.append(Path(env))
    pkg = Path(__file__).resolve().parents[1]
    dirs.append(pkg.parent / "models")  # source checkout / editable install
    dirs.append(pkg / "_models")  # installed wheel
    return [d for d in dirs if d.is_dir()]


def scan_cards() -> list[dict[str, Any]]:
    """Every ``*.json`` in :func:`models_dirs`, readable or not.

    Unreadable or malformed cards are kept with an ``"_error"`` entry (and their file
    stem as id), so ``focusqa models`` can list them as INVALID instead of hiding them.
    First occurrence of each id wins.
    """
    seen: dict[str, dict[str, Any]] = {}
    for d in models_dirs():
        for card_path in sorted(d.glob("*.json")):
            try:
                card = json.loads(card_path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                card = {"id": card_path.stem, "_error": f"cannot read JSON ({exc})"}
            if not isinstance(card, dict):
                card = {"id": card_path.stem, "_error": "expected a JSON object"}
            elif "_error" not in card and ("id" not in card or "onnx" not in card):
                missing = [k for k in ("id", "onnx") if k not in card]
                card = {"id": card.get("id", card_path.stem),
                        "_error": f"missing field(s) {', '.join(missing)}"}
            card.setdefault("_card_path", str(card_path))
            seen.setdefault(str(card["id"]), card)
    return list(seen.values())


def list_models() -> list[dict[str, Any]]:
    """Readable model cards found in :func:`models_dirs` (first occurrence of each id wins)."""
    return [c for c in scan_cards() if "_error" not in c]


def default_model_id() -> str | None:
    """``fqa-levels`` when installed, else the first ``levels`` model, else None."""
    cards = list_models()
    ids = [c["id"] for c in cards if c.get("task") == "levels"]
    if "fqa-levels" in ids:
        return "fqa-levels"
    return ids[0] if ids else None


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class FocusModel:
    """An ONNX model plus its card, with reusable onnxruntime sessions."""

    card: dict[str, Any]
    onnx_path: Path
    threads: int | None = None
    _session: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _pool: list[Any] = field(default_factory=list, repr=False)

    @property
    def id(self) -> str:
        return str(self.card["id"])

    @property
    def task(self) -> str:
        return str(self.card["task"])

    @property
    def patch_size(self) -> int:
        return int(self.card["patch_size"])

    @property
    def num_classes(self) -> int:
        return int(self.card.get("num_classes", 0))

    @property
    def in_focus_max_level(self) -> int:
        return int(self.card.get("in_focus_max_level", 2))

    @property
    def stains(self) -> list[str]:
        return list(self.card.get("stains") or ["generic"])

    @property
    def session(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = _make_session(self.onnx_path, self.threads)
        return self._session

    @property
    def n_threads(self) -> int:
        """Threads this model runs on: ``threads``, else ``FOCUSQA_THREADS``, else every CPU
        this process may use."""
        n = self.threads or int(os.environ.get("FOCUSQA_THREADS", "0") or 0)
        if not n and hasattr(os, "sched_getaffinity"):
            n = len(os.sched_getaffinity(0))
        return n or os.cpu_count() or 1

    def _pool_sessions(self, n: int) -> list[Any]:
        """``n`` one-thread sessions, for batches run side by side (core.parallel)."""
        if len(self._pool) < n:
            with self._lock:
                while len(self._pool) < n:
                    self._pool.append(_make_session(self.onnx_path, 1))
        return self._pool[:n]

    def _input_names(self) -> tuple[str, str | None]:
        inputs = self.card.get("inputs") or {}
        return str(inputs.get("patches", "patches")), inputs.get("stain")

    def _check_patches(self, patches: np.ndarray) -> np.ndarray:
        arr = np.asarray(patches)
        p = self.patch_size
        if arr.ndim != 3 or arr.shape[1:] != (p, p):
            raise ModelCardError(
                f"patches: model {self.id} expects (N, {p}, {p}) patches, got {arr.shape}"
            )
        return arr

    def prepare(self, patches: np.ndarray) -> np.ndarray:
        """The card's input normalisation of raw ``(N, P, P)`` patches: the model's
        ``(N, 1, P, P)`` float32 input, for ``run(..., prepared=True)``."""
        arr = self._check_patches(patches)
        out = np.empty((arr.shape[0], 1) + arr.shape[1:], dtype=np.float32)
        normalise_patches(arr, self.card["input_normalisation"], out=out[:, 0])
        return out

    def run(
        self,
        patches: np.ndarray,
        *,
        stain: str | int | None = None,
        batch_size: int = DEFAULT_BATCH,
        cancel: Callable[[], bool] | None = None,
        prepared: bool = False,
    ) -> dict[str, np.ndarray]:
        """Run the model on raw ``(N, P, P)`` patches (or, with ``prepared``, on the output
        of :meth:`prepare`); returns output name -> array."""
        if prepared:
            arr = np.asarray(patches, dtype=np.float32)
            if arr.ndim != 4 or arr.shape[1] != 1:
                raise ModelCardError(f"patches: expected prepared (N, 1, P, P) input, got {arr.shape}")
            self._check_patches(arr[:, 0])
        else:
            arr = self._check_patches(patches)
        spec = self.card["input_normalisation"]
        patch_name, stain_name = self._input_names()
        stain_idx = self.stain_index(stain)
        n, total = min(self.n_threads, MAX_SESSIONS), arr.shape[0]
        # on n >= 2 threads: n one-thread sessions take chunks of about total / 4n patches
        # in turn (no per-layer barrier between threads: core.parallel); same numbers
        size = batch_size if n < 2 else min(batch_size, max(16, -(-total // (4 * n))))
        sessions = [self.session] if n < 2 else self._pool_sessions(n)
        names = [o.name for o in sessions[0].get_outputs()]
        bufs: list[np.ndarray | None] = [None] * len(sessions)

        def chunk(start: int, worker: int) -> list[np.ndarray]:
            if cancel is not None and cancel():
                raise Cancelled("model inference cancelled")
            x = arr[start : start + size]
            if not prepared:  # raw patches: normalised into this thread's reused buffer
                buf = bufs[worker]
                if buf is None:
                    buf = bufs[worker] = np.empty((size, 1) + arr.shape[1:], np.float32)
                x = buf[: x.shape[0]]
                normalise_patches(arr[start : start + size], spec, out=x[:, 0])
            feed: dict[str, np.ndarray] = {patch_name: x}
            if stain_name:
                feed[str(stain_name)] = np.full(x.shape[0], stain_idx, dtype=np.int64)
            return [np.asarray(v) for v in sessions[worker].run(names, feed)]

        starts = list(range(0, total, size))
        if not starts:
            return {k: np.zeros((0,), np.float32) for k in names}
        done = map_chunks(chunk, starts, len(sessions))
        return {k: np.concatenate([done[s][i] for s in starts], axis=0)
                for i, k in enumerate(names)}

    def stain_index(self, stain: str | int | None) -> int:
        if stain is None:
            return 0
        if isinstance(stain, (int, np.integer)):
            return int(stain)
        stains = self.stains
        return stains.index(stain) if stain in stains else 0

    def predict_proba(
        self,
        patches: np.ndarray,
        *,
        stain: str | int | None = None,
        batch_size: int = DEFAULT_BATCH,
        cancel: Callable[[], bool] | None = None,
        prepared: bool = False,
    ) -> np.ndarray:
        """``(N, K)`` float64 probabilities for raw ``(N, P, P)`` patches (or the output
        of :meth:`prepare`, with ``prepared``)."""
        if self.task not in ("levels", "levels-stain"):
            raise ModelCardError(
                f"model: {self.id} is a {self.task!r} model; choose a levels model here"
            )
        out_name = (self.card.get("outputs") or {}).get("probabilities", "probabilities")
        outs = self.run(patches, stain=stain, batch_size=batch_size, cancel=cancel,
                        prepared=prepared)
        probs = outs.get(out_name, next(iter(outs.values()))).astype(np.float64)
        probs = np.clip(probs, 0.0, None)
        s = probs.sum(axis=-1, keepdims=True)
        k = probs.shape[-1]
        return np.where(s > 0, probs / np.where(s > 0, s, 1.0), 1.0 / k)


def _make_session(onnx_path: Path, threads: int | None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    n = threads or int(os.environ.get("FOCUSQA_THREADS", "0") or 0)
    if n:
        opts.intra_op_num_threads = n
        opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelCardError(f"model: cannot load {onnx_path}: {msg}") from exc


def _resolve_card(model: str | os.PathLike[str]) -> Path:
    s = str(model)
    p = Path(s)
    if p.suffix == ".json" and p.is_file():
        return p
    if p.suffix == ".onnx" and p.with_suffix(".json").is_file():
        return p.with_suffix(".json")
    if p.suffix in (".json", ".onnx") or os.sep in s:
        raise ModelCardError(f"model: no model card found at {s}")
    for d in models_dirs():
        cand = d / f"{s}.json"
        if cand.is_file():
            return cand
    known = ", ".join(sorted(str(c["id"]) for c in list_models())) or "none installed"
    raise ModelCardError(f"model: unknown model id {s!r} (installed: {known})")


def validate_card(card: Any, card_path: Path) -> Path:
    """Check a card's fields and its ONNX file; return the ONNX path."""
    if not isinstance(card, dict):
        raise ModelCardError(f"model card {card_path}: expected a JSON object")
    for key in REQUIRED_FIELDS:
        if key not in card:
            raise ModelCardError(f"model card {card_path}: missing field {key!r}")
    if card["task"] not in TASKS:
        raise ModelCardError(
            f"model card {card_path}: task must be one of {TASKS}, got {card['task']!r}"
        )
    ps = card["patch_size"]
    if isinstance(ps, bool) or not isinstance(ps, int) or ps < 8:
        raise ModelCardError(f"model card {card_path}: patch_size must be an integer >= 8, got {ps!r}")
    if card["task"] != "distance":
        k = card.get("num_classes")
        if isinstance(k, bool) or not isinstance(k, int) or k < 2:
            raise ModelCardError(
                f"model card {card_path}: num_classes must be an integer >= 2, got {k!r}"
            )
    method = (card["input_normalisation"] or {}).get("method")
    if method not in NORMALISATIONS:
        raise ModelCardError(
            f"model card {card_path}: input_normalisation.method must be one of "
            f"{NORMALISATIONS}, got {method!r}"
        )
    onnx_path = (card_path.parent / str(card["onnx"])).resolve()
    if not onnx_path.is_file():
        raise ModelCardError(f"model card {card_path}: ONNX file {onnx_path} does not exist")
    digest = sha256_file(onnx_path)
    if digest != card["sha256"]:
        raise ModelCardError(
            f"model card {card_path}: sha256 mismatch for {onnx_path.name} "
            f"(card {str(card['sha256'])[:12]}…, file {digest[:12]}…)"
        )
    return onnx_path


def check_session_shapes(model: FocusModel, card_path: Path) -> None:
    """Compare the ONNX graph's input/output shapes with the card."""
    sess = model.session
    patch_name, stain_name = model._input_names()
    inputs = {i.name: i for i in sess.get_inputs()}
    if patch_name not in inputs:
        raise ModelCardError(
            f"model card {card_path}: ONNX has no input {patch_name!r} (has {list(inputs)})"
        )
    shape = list(inputs[patch_name].shape)
    p = model.patch_size
    if len(shape) != 4 or shape[2:] != [p, p] or shape[1] != 1:
        raise ModelCardError(
            f"model card {card_path}: patch_size {p} does not match ONNX input shape {shape}"
        )
    if stain_name and stain_name not in inputs:
        raise ModelCardError(f"model card {card_path}: ONNX has no stain input {stain_name!r}")
    if model.task != "distance":
        outs = {o.name: o for o in sess.get_outputs()}
        oname = (model.card.get("outputs") or {}).get("probabilities", "probabilities")
        if oname not in outs:
            raise ModelCardError(
                f"model card {card_path}: ONNX has no output {oname!r} (has {list(outs)})"
            )
        k = outs[oname].shape[-1]
        if isinstance(k, int) and k != model.num_classes:
            raise ModelCardError(
                f"model card {card_path}: num_classes {model.num_classes} but ONNX outputs {k}"
            )


_CACHE: dict[tuple[str, int | None], FocusModel] = {}
_CACHE_LOCK = threading.Lock()


def load_model(
    model: str | os.PathLike[str] | FocusModel, *, threads: int | None = None
) -> FocusModel:
    """Load (and cache) a model by id, card path or ONNX path, validating its card.

    Raises
    ------
    ModelCardError
        Unknown id, missing file, unreadable JSON, sha256 or shape mismatch.
    """
    if isinstance(model, FocusModel):
        return model
    card_path = _resolve_card(model)
    key = (str(card_path.resolve()), threads)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    try:
        card = json.loads(card_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelCardError(f"model card {card_path}: cannot read JSON ({exc})") from exc
    onnx_path = validate_card(card, card_path)
    fm = FocusModel(card=card, onnx_path=onnx_path, threads=threads)
    check_session_shapes(fm, card_path)
    with _CACHE_LOCK:
        _CACHE[key] = fm
    return fm


def write_card(card: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a card atomically, filling ``sha256`` from the ONNX file next to it."""
    path = Path(path)
    card = dict(card)
    card["sha256"] = sha256_file(path.parent / card["onnx"])
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def models_summary(cards: Sequence[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One row per installed model for ``focusqa models``."""
    rows = []
    for c in cards if cards is not None else scan_cards():
        rows.append(
            {
                "error": c.get("_error"),
                "id": c.get("id"),
                "task": c.get("task"),
                "patch_size": c.get("patch_size"),
                "num_classes": c.get("num_classes"),
                "stains": c.get("stains"),
                "card": c.get("_card_path"),
            }
        )
    return rows
