"""Every complete Python block of the reference pages runs as it is shown, with the imports it needs.

The quickstart, the tutorial and the README are built into a project of their own (tests/test_quickstart.py,
tests/test_tutorial.py), and a block that names a file is that file, run or compared by the tests of what it shows.
Every other Python block either runs alone here, in a fresh namespace with the demo project's settings, and uses
no name it does not import or define, or is marked ``:class: partial`` because it refers to names defined elsewhere
(tests/test_docs.py compiles those).
"""
from __future__ import annotations

import ast
import builtins
import inspect
from typing import Any

import pytest

from hypergen_ws.core import registry
from tests.support import pages

BUILT = {"quickstart.rst", "tutorial.rst", "README.rst"}
COMPLETE = [block for page in pages.pages() if page.name not in BUILT for block in pages.blocks(page)
            if block.language == "python" and block.path is None and not block.partial]


def unbound_names(source: str) -> set[str]:
    """The names ``source`` reads that it never imports, assigns, defines or takes as a parameter."""
    tree = ast.parse(source)
    bound = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)} - bound


def test_the_pages_have_complete_blocks_to_run() -> None:
    assert len(COMPLETE) >= 10
    assert unbound_names("import os\n\ndef f(a):\n    return os.sep + a + b\n") == {"b"}


@pytest.mark.parametrize("block", COMPLETE, ids=lambda block: block.where)
async def test_a_complete_block_runs_as_it_is(block: pages.Block, monkeypatch: pytest.MonkeyPatch, db: Any) -> None:
    missing = unbound_names(block.text)
    assert not missing, (f"{block.where} uses {', '.join(sorted(missing))} without importing or defining it: add the "
                         "import, or mark the block ':class: partial' when it refers to names shown elsewhere")
    monkeypatch.setenv("HYPERGEN_WS_PUBLISH_KEY", "a-key-of-at-least-twenty-characters")
    monkeypatch.setenv("REDIS_URL", "redis://localhost:6379/0")
    code: Any = block.compile()
    namespace: dict[str, Any] = {"__name__": "docs_examples"}
    saved = registry.snapshot()
    try:
        result = eval(code, namespace)  # noqa: S307 - the page's code
        if inspect.iscoroutine(result):
            await result
    finally:
        registry.restore(saved)
