"""The package's layers: imports point down only, and no module imports itself back.

Layers, bottom to top: the foundation (errors, units, atomic_io, npz_io, settings, version), the
sGDML core (``gdml``), the libraries (``data``, ``analysis``, ``dynamics``), the workflow
layer (``workflow``) and the command line (``cli``). See docs/architecture.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "deltagdml"
LAYER = {
    "errors": 0,
    "units": 0,
    "atomic_io": 0,
    "npz_io": 0,
    "settings": 0,
    "version": 0,
    "gdml": 1,
    "data": 2,
    "analysis": 2,
    "dynamics": 2,
    "active": 2,
    "workflow": 3,
    "cli": 4,
    "__main__": 4,
    "__init__": 4,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Modules of the package that ``path`` imports, anywhere in the file."""
    out: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("deltagdml")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = module_name(path).split(".")
                here = here if is_package else here[:-1]
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            if not base.startswith("deltagdml"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if module_path(sub) else base)
    return out


def module_path(name: str) -> Path | None:
    rel = Path(*name.split("."))
    for candidate in (
        PACKAGE.parent / rel.with_suffix(".py"),
        PACKAGE.parent / rel / "__init__.py",
    ):
        if candidate.is_file():
            return candidate
    return None


def layer(name: str) -> int:
    parts = name.split(".")
    return LAYER[parts[1]] if len(parts) > 1 else LAYER["__init__"]


GRAPH = {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_layer():
    for name in GRAPH:
        layer(name)  # KeyError names a top-level module without a layer


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_imports_point_down(name):
    """A module imports only its own layer or lower ones; the libraries not each other's
    workflow; the core and the libraries never the workflow layer or the CLI."""
    upward = sorted(m for m in GRAPH[name] if m != "deltagdml" and layer(m) > layer(name))
    assert not upward, f"{name} imports the higher layer(s) {upward}"


def test_no_import_cycles():
    """Depth-first search over the import graph (modules of the package, any import)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH.get(node, ())):
            if nxt not in GRAPH or nxt == node:
                continue
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " → ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(GRAPH):
        if node not in state:
            visit(node)


def test_the_check_finds_a_planted_upward_import(tmp_path):
    """The checker itself: an import of the workflow layer from the core is seen."""
    planted = PACKAGE / "gdml" / "_planted_for_test.py"
    planted.write_text("from deltagdml.workflow.config import load_system\n")
    try:
        found = imports(planted)
    finally:
        planted.unlink()
    assert "deltagdml.workflow.config" in found
    assert layer("deltagdml.workflow.config") > layer("deltagdml.gdml._planted_for_test")
