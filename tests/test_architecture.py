"""The import rule of docs/architecture.md, checked on the source text (``ast``), not by importing it.

Why a test: a layer rule that lives only in a document stops being true with the first hurried
import. Every ``import`` in ``fusioncore/`` and ``app/`` counts, including the ones inside a
function (a lazy import hides a dependency from the reader but not from the design). Importing
``fusioncore.data.dataset`` runs ``fusioncore/__init__.py`` and ``fusioncore/data/__init__.py``
first; those implicit parent imports are not edges (every Python package has them).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("fusioncore", "app")

# Lowest layer first. A unit (a sub-package such as ``fusioncore.data``, or a top-level module such as
# ``fusioncore.types``) may import units of its own layer or of a lower one, never of a higher one, and
# the units of a layer must not import each other in a circle. docs/architecture.md has the same table.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core", ("fusioncore.types", "fusioncore.config", "fusioncore.device", "fusioncore.errorlog",
              "fusioncore.metrics", "fusioncore.access", "fusioncore.atomic_folder")),
    ("parts", ("fusioncore.data", "fusioncore.demo", "fusioncore.layers", "fusioncore.encoders",
               "fusioncore.losses")),
    ("models", ("fusioncore.models", "fusioncore.registry", "fusioncore.checkpoint_writer", "fusioncore.checkpoint",
                "fusioncore.budget")),
    ("training", ("fusioncore.training", "fusioncore.importers", "fusioncore.output_folder")),
    ("explain", ("fusioncore.explain",)),
    ("drawing", ("fusioncore.viz", "fusioncore.slides")),
    ("reports", ("fusioncore.reports", "fusioncore.benchmark")),
    ("inspect", ("fusioncore.inspect",)),
    ("entry", ("fusioncore", "fusioncore.__main__", "fusioncore.cli")),
    ("app", ("app", "app.views")),
)

# Known breaks of the rule, each (importing module, imported unit) with why it is still there. The test
# fails when an entry is no longer needed, so this list can only shrink.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Edge:
    """One import statement: ``module`` (the importer) imports ``target`` (a module or package)."""

    module: str
    target: str
    line: int
    lazy: bool  # inside a function or class body

    def where(self, root: Path) -> str:
        return f"{module_path(root, self.module)}:{self.line}"


def module_path(root: Path, module: str) -> str:
    path = root / Path(*module.split("."))
    return str((path / "__init__.py" if path.is_dir() else path.with_suffix(".py")).relative_to(root))


def discover(root: Path, roots: tuple[str, ...] = ROOTS) -> dict[str, Path]:
    """Every module under ``roots`` by dotted name (a package by its own name, for its ``__init__``)."""
    found = {}
    for top in roots:
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _is_lazy(tree: ast.AST) -> set[int]:
    """``id`` of every import node inside a function or class body."""
    lazy: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            lazy.update(id(n) for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom)) and n is not node)
    return lazy


def imports(root: Path, modules: dict[str, Path]) -> list[Edge]:
    """Every import of ``modules``, each resolved to the module or package it names."""
    edges = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        lazy = _is_lazy(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                name = _absolute(module, path.name == "__init__.py", node)
                # ``from . import viz`` names a module; ``from .types import Batch`` names an attribute.
                targets = [f"{name}.{a.name}" if f"{name}.{a.name}" in modules else name for a in node.names]
            else:
                continue
            edges.extend(Edge(module, t, node.lineno, id(node) in lazy) for t in dict.fromkeys(targets))
    return edges


def unit_of(name: str) -> str | None:
    """The layer unit a module belongs to: ``fusioncore.data.tables`` -> ``fusioncore.data``."""
    parts = name.split(".")
    if parts[0] not in ROOTS:
        return None
    if parts[0] == "app":
        return "app.views" if len(parts) > 1 and parts[1] == "views" else "app"
    return ".".join(parts[:2])


def layer_index(layers=LAYERS) -> dict[str, int]:
    return {unit: i for i, (_, units) in enumerate(layers) for unit in units}


@dataclass(frozen=True)
class Report:
    unplaced: list[str]
    upward: list[str]
    circles: list[list[str]]
    used_exceptions: set[tuple[str, str]]


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of nodes that reach each other (size > 1 or a self-loop)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def check(root: Path, layers=LAYERS, exceptions=KNOWN_EXCEPTIONS, roots: tuple[str, ...] = ROOTS) -> Report:
    """Apply the import rule to the tree under ``root``."""
    modules = discover(root, roots)
    rank = layer_index(layers)
    unplaced = sorted({u for m in modules if (u := unit_of(m)) not in rank})
    upward, used = [], set()
    units: dict[str, set[str]] = {}
    for edge in imports(root, modules):
        source, target = unit_of(edge.module), unit_of(edge.target)
        if target is None or source == target or source not in rank or target not in rank:
            continue
        key = (edge.module, target)
        if key in exceptions:
            used.add(key)
            continue
        units.setdefault(source, set()).add(target)
        if rank[target] > rank[source]:
            kind = "lazy import" if edge.lazy else "import"
            upward.append(
                f"{edge.where(root)}: {kind} of {edge.target} — layer {layers[rank[source]][0]!r} ({source}) "
                f"may not import layer {layers[rank[target]][0]!r} ({target})"
            )
    return Report(unplaced, upward, strongly_connected(units), used)


@pytest.fixture(scope="module")
def report() -> Report:
    return check(REPO)


def test_every_folder_has_a_layer(report: Report) -> None:
    assert not report.unplaced, (
        f"{report.unplaced}: place each new folder or top-level module in a layer (LAYERS here and the table "
        f"in docs/architecture.md)"
    )


def test_no_lower_layer_imports_a_higher_one(report: Report) -> None:
    assert not report.upward, "\n".join(report.upward)


def test_no_import_circle_between_folders(report: Report) -> None:
    assert not report.circles, f"import circles (counting lazy imports): {report.circles}"


def test_known_exceptions_are_still_needed(report: Report) -> None:
    stale = sorted(set(KNOWN_EXCEPTIONS) - report.used_exceptions)
    assert not stale, f"{stale} no longer import what they were excused for: delete them from KNOWN_EXCEPTIONS"


def test_known_exceptions_are_the_circle_and_the_upward_imports_they_excuse() -> None:
    """Without its exceptions the tree breaks the rule exactly where they say (so none is a blanket pass)."""
    bare = check(REPO, exceptions={})
    flagged = {line.split(":")[0] for line in bare.upward}
    for module, _ in KNOWN_EXCEPTIONS:
        circled = any(unit_of(module) in group for group in bare.circles)
        assert module_path(REPO, module) in flagged or circled, module


def test_library_never_imports_streamlit() -> None:
    modules = discover(REPO, ("fusioncore",))
    bad = [
        edge.where(REPO)
        for edge in imports(REPO, modules)
        if edge.target == "streamlit" or edge.target.startswith("streamlit.")
    ]
    assert not bad, f"fusioncore/ must not import streamlit (the dashboard is app/): {bad}"


def test_docs_table_matches_layers() -> None:
    """docs/architecture.md lists the same layers, in order, with the same folders."""
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| ") and line.split("|")[1].strip()[:1].isdigit()]
    assert len(rows) == len(LAYERS), f"docs/architecture.md has {len(rows)} layer rows, LAYERS has {len(LAYERS)}"
    for row, (name, units) in zip(rows, LAYERS):
        cells = row.split("|")
        assert name in cells[1], f"layer row {cells[1].strip()!r} should name layer {name!r}"
        for unit in units:
            short, path = unit.split(".")[-1], unit.replace(".", "/")
            names = {f"`{short}`", f"`{short}/`", f"`{short}.py`", f"`{path}`", f"`{path}/`"}
            assert any(n in cells[2] for n in names), f"docs/architecture.md, layer {name!r}: {unit} is not listed"


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_checker_catches_an_upward_import_a_lazy_one_and_a_circle(tmp_path: Path) -> None:
    _write(tmp_path, {
        "fusioncore/__init__.py": "",
        "fusioncore/types.py": "from .models import base\n",  # core -> models: upward
        "fusioncore/models/__init__.py": "",
        "fusioncore/models/base.py": "def save():\n    from ..registry import x\n",  # lazy, same layer
        "fusioncore/registry.py": "from .models import base\nfrom . import checkpoint\n",
        "fusioncore/checkpoint.py": "import fusioncore.registry\n",
        "app/__init__.py": "",
        "app/main.py": "from fusioncore import types\n",
    })
    layers = (("core", ("fusioncore.types",)),
              ("models", ("fusioncore.models", "fusioncore.registry", "fusioncore.checkpoint")),
              ("entry", ("fusioncore",)), ("app", ("app",)))
    got = check(tmp_path, layers, exceptions={})
    assert got.upward == [
        "fusioncore/types.py:1: import of fusioncore.models.base — layer 'core' (fusioncore.types) may not import "
        "layer 'models' (fusioncore.models)"
    ]
    assert got.circles == [["fusioncore.checkpoint", "fusioncore.models", "fusioncore.registry"]]
    allowed = check(tmp_path, layers, exceptions={("fusioncore.models.base", "fusioncore.registry"): "why",
                                                  ("fusioncore.checkpoint", "fusioncore.registry"): "why"})
    assert allowed.circles == [] and allowed.used_exceptions == {
        ("fusioncore.models.base", "fusioncore.registry"), ("fusioncore.checkpoint", "fusioncore.registry")}
    assert check(tmp_path, layers[1:], exceptions={}).unplaced == ["fusioncore.types"]
