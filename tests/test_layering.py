"""Layering without back-edges: what each part of the package may import, read from the source with ``ast``.

A *unit* is a subpackage or top-level module of nnscratch (``nnscratch.nn``, ``nnscratch.tensor``...).
Every ``import`` counts, at module level or inside a function (a lazy import is still a dependency:
it only moves the cycle to run time), except those under ``if TYPE_CHECKING:``; string imports through
``importlib.import_module("nnscratch....")`` count too. The exceptions are listed in
:data:`ALLOWED_BACK_EDGES`, each with its reason; an exception that no longer exists must be removed.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nnscratch"

#: What a unit must never import, anywhere: the parts of the package built on top of it.
FORBIDDEN = {
    "nnscratch.nn": {"nnscratch.train", "nnscratch.data", "nnscratch.robust", "nnscratch.models",
                     "nnscratch.explain", "nnscratch.metrics", "nnscratch.model_io"},
    "nnscratch.data": {"nnscratch.robust", "nnscratch.train", "nnscratch.models", "nnscratch.explain",
                       "nnscratch.model_io"},
}  # fmt: skip

#: The edges that close an import cycle and are meant to: (importer, imported) -> (lazy only?, why).
ALLOWED_BACK_EDGES = {
    ("nnscratch.train", "nnscratch.tune"): (
        True,
        "inside a function only: fit(lr='find') runs tune.lr_find, which trains with train's batch helpers",
    ),
    ("nnscratch.tensor", "nnscratch.ops"): (
        False,
        "the intended pair (issue 15): ops are Functions on Tensors, and tensor.py imports ops at its end to "
        "give Tensor its operator methods (x + y, x @ w, x.relu())",
    ),
    ("nnscratch.autograd", "nnscratch.tensor"): (
        True,
        "inside functions only: the backward engine (run_backward, grad) builds gradient Tensors; autograd.py "
        "is tensor.py's engine in a file of its own (tensor.py imports it at module level for the grad mode)",
    ),
}


class Edge(NamedTuple):
    importer: str  # module
    imported: str  # module
    lazy: bool  # inside a function
    line: int


def _module_name(path: Path) -> str:
    parts = ("nnscratch", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative / "__init__.py").is_file()


def _unit(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(sub) for statement in node.body for sub in ast.walk(statement))
    return skipped


def _function_nodes(tree: ast.AST) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            inside.update(id(sub) for sub in ast.walk(node) if sub is not node)
    return inside


def _imported_names(node: ast.AST, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:  # relative: resolve against this module's package
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - node.level + 1]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        # ``from nnscratch import nn`` imports the module nnscratch.nn; ``from x import name`` imports x
        return [f"{source}.{a.name}" if _is_module(f"{source}.{a.name}") else source for a in node.names]
    if isinstance(node, ast.Call):  # importlib.import_module("nnscratch.cpu")
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            return [str(node.args[0].value)]
    return []


def package_imports() -> list[Edge]:
    """Every import of an nnscratch module by an nnscratch module."""
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(), str(path))
        skipped, inside = _type_checking_nodes(tree), _function_nodes(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            for name in _imported_names(node, module, path.name == "__init__.py"):
                if name == "nnscratch" or name.startswith("nnscratch."):
                    edges.append(Edge(module, name, id(node) in inside, node.lineno))
    return edges


EDGES = package_imports()


def _unit_edges() -> dict[tuple[str, str], list[Edge]]:
    between: dict[tuple[str, str], list[Edge]] = {}
    for edge in EDGES:
        a, b = _unit(edge.importer), _unit(edge.imported)
        if a != b and edge.importer != "nnscratch":  # the package root gathers everything, by design
            between.setdefault((a, b), []).append(edge)
    return between


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _where(edges: list[Edge]) -> str:
    seen = dict.fromkeys(f"{e.importer}:{e.line} imports {e.imported}{' (in a function)' if e.lazy else ''}"
                         for e in edges)  # fmt: skip
    return ", ".join(seen)


def _one_cycle(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest path from the component's first unit back to itself (breadth first)."""
    start = component[0]
    paths = {w: [start, w] for w in sorted(graph.get(start, ())) if w in component}
    queue = list(paths)
    while start not in paths:
        v = queue.pop(0)
        for w in sorted(graph.get(v, ())):
            if w in component and w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return paths[start]


def test_the_reader_sees_the_imports_it_should():
    """The walk is not vacuous: known imports of each kind are found."""
    between = _unit_edges()
    assert ("nnscratch.train", "nnscratch.nn") in between  # module level
    assert any(e.lazy for e in between[("nnscratch.autograd", "nnscratch.tensor")])  # inside a function
    assert not any(e.importer == "nnscratch.autograd" and not e.lazy and e.imported == "nnscratch.tensor"
                   for e in EDGES)  # its TYPE_CHECKING import is skipped  # fmt: skip


@pytest.mark.parametrize("lower", sorted(FORBIDDEN))
def test_a_lower_layer_imports_nothing_built_on_it(lower):
    bad = [e for (a, b), edges in _unit_edges().items() if a == lower and b in FORBIDDEN[lower] for e in edges]
    assert not bad, f"{lower} must not import {sorted(FORBIDDEN[lower])}: {_where(bad)}"


def test_no_module_imports_the_package_root():
    """``nnscratch/__init__.py`` imports every subpackage: importing it from inside is a cycle with all."""
    bad = [e for e in EDGES if e.imported == "nnscratch" and e.importer != "nnscratch"]
    assert not bad, _where(bad)


def test_no_import_cycle_between_units_but_the_allowed_ones():
    between = _unit_edges()
    graph: dict[str, set[str]] = {}
    for a, b in between:
        if (a, b) not in ALLOWED_BACK_EDGES:
            graph.setdefault(a, set()).add(b)
    cycles = _cycles(graph)
    details = []
    for component in cycles:
        path = _one_cycle(component, graph)
        hops = "\n    ".join(_where(between[(a, b)][:1]) for a, b in zip(path, path[1:]))
        details.append(f"{' -> '.join(path)}:\n    {hops}")
    assert not cycles, "import cycles between units (one path each; more edges may close them):\n" + "\n".join(details)


@pytest.mark.parametrize("edge", sorted(ALLOWED_BACK_EDGES))
def test_each_allowed_back_edge_exists_and_stays_as_allowed(edge):
    lazy_only, reason = ALLOWED_BACK_EDGES[edge]
    found = _unit_edges().get(edge)
    assert found, f"{edge[0]} no longer imports {edge[1]}: remove the exception ({reason})"
    if lazy_only:
        top = [e for e in found if not e.lazy]
        assert not top, f"allowed inside functions only ({reason}): {_where(top)}"
