"""The package's structure (docs/architecture.rst): layers, no import cycles, few imports inside functions.

The layers themselves are checked by import-linter (``lint-imports``, contracts in pyproject.toml), which the test
command runs; this module checks what import-linter does not: that no two modules import each other (type-only
imports included) and that the package's own imports inside functions are few, each with its reason.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "hypergen_ws"
LATE_IMPORTS_ALLOWED = 5


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def resolve(current: str, is_package: bool, node: ast.ImportFrom | ast.Import, known: set[str]) -> set[str]:
    targets: set[str] = set()
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = current.split(".") if is_package else current.split(".")[:-1]
        if node.level:
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        # ``from package import name``: the submodule when ``name`` is one, else the package itself.
        names = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in known else prefix for alias in node.names]
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name.startswith("hypergen_ws"):
            targets.add(name)
    return targets


def import_graph() -> tuple[dict[str, set[str]], list[tuple[str, int, str]]]:
    """Every module's imports of the package (all of them, in functions and under TYPE_CHECKING too)."""
    found = modules()
    known = set(found)
    graph: dict[str, set[str]] = {name: set() for name in found}
    late: list[tuple[str, int, str]] = []
    for name, path in found.items():
        source = path.read_text()
        tree = ast.parse(source)
        lines = source.splitlines()
        in_function = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                       for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets = resolve(name, path.name == "__init__.py", node, known) - {name}
                graph[name] |= targets
                if targets and id(node) in in_function:
                    late.append((name, node.lineno, lines[node.lineno - 1] + " " + lines[node.lineno - 2]))
    return graph, late


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def test_no_two_modules_import_each_other_type_only_imports_included():
    graph, _late = import_graph()
    assert len(graph) > 40, "the package was found"
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_inside_functions_are_few_and_each_says_why():
    _graph, late = import_graph()
    assert len(late) <= LATE_IMPORTS_ALLOWED, late
    for module, line, text in late:
        assert "#" in text, f"{module}:{line} imports inside a function without a one-line reason"


@pytest.mark.parametrize("layer", ["core", "backends", "delivery", "features"])
def test_every_layer_is_a_package_with_a_docstring(layer):
    init = PACKAGE / layer / "__init__.py"
    assert ast.get_docstring(ast.parse(init.read_text())), f"hypergen_ws/{layer}/__init__.py explains the layer"
