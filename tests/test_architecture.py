"""The house rules of ARCHITECTURE.md, checked on the source tree.

- No library module imports a ``cli`` module (each ``cli.py`` only parses and prints).
- No two modules import each other (no two-module import cycles).
- No module over 600 lines.
- The core imports no Qt, napari, Java or hardware library.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("napari_focusqa", "fiji_bridge")
MAX_LINES = 600
FRONT_END_ONLY = ("qtpy", "PyQt5", "PySide2", "PySide6", "napari", "magicgui", "superqt",
                  "scyjava", "imagej", "jpype", "pymmcore_plus", "pymmcore", "useq")


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            rel = path.relative_to(REPO).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def _imports(path: Path, modname: str, is_pkg: bool) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    base = modname.split(".") if is_pkg else modname.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                prefix = base[: len(base) - node.level + 1]
                mod = ".".join(prefix + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        raw = _imports(path, name, path.name == "__init__.py")
        graph[name] = {m for m in raw if m in mods and m != name}
    return graph


def test_no_library_module_imports_a_cli_module() -> None:
    bad = []
    for name, deps in _graph().items():
        last = name.rsplit(".", 1)[-1]
        if last in ("cli", "__main__") or ".cli." in f".{name}.":
            continue  # command-line modules may import each other
        bad += [f"{name} imports {d}" for d in deps if d.rsplit(".", 1)[-1] == "cli"]
    assert not bad, "library modules must not import cli modules:\n" + "\n".join(bad)


def test_no_two_module_import_cycles() -> None:
    g = _graph()
    cycles = sorted({tuple(sorted((a, b))) for a, deps in g.items() for b in deps
                     if a in g.get(b, set()) and not (b.startswith(a + ".") or a.startswith(b + "."))})
    assert not cycles, f"modules importing each other: {cycles}"


def test_no_module_over_600_lines() -> None:
    long = {n: len(p.read_text().splitlines()) for n, p in _modules().items()}
    over = {n: k for n, k in long.items() if k > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"


def test_core_imports_no_front_end_library() -> None:
    bad = []
    for name, path in _modules().items():
        if not name.startswith("napari_focusqa.core"):
            continue
        for m in _imports(path, name, path.name == "__init__.py"):
            if m.split(".")[0] in FRONT_END_ONLY:
                bad.append(f"{name} imports {m}")
    assert not bad, "\n".join(bad)
