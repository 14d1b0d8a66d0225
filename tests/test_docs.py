"""Promises of the documentation that a build with ``-W`` cannot check: every page reads complete as plain text (a
forge's docutils renders every code block; nothing is included from a file), its Python compiles, public import
paths in the API reference, a ``@consumer`` signature that matches the code, clickable plots, no reference to
documents outside the repository."""
from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest
from docutils import nodes
from docutils.core import publish_doctree

import hypergen_ws
from tests.support import pages
from tests.support.servers import REPO_ROOT

DOCS = REPO_ROOT / "docs"
#: The modules whose names are imported by users, as api.rst documents them.
PUBLIC_MODULES = ("hypergen_ws", "hypergen_ws.security", "hypergen_ws.middleware", "hypergen_ws.core.groups")
PAGES = sorted(DOCS.glob("*.rst"))
#: How a code forge renders reStructuredText: plain docutils, no messages, no file inclusion, no raw HTML.
FORGE = {"report_level": 5, "halt_level": 5, "file_insertion_enabled": False, "raw_enabled": False,
         "syntax_highlight": "none", "warning_stream": False}
PYTHON_BLOCKS = [block for page in pages.pages() for block in pages.blocks(page) if block.language == "python"]


@pytest.mark.parametrize("page", pages.pages(), ids=lambda p: p.name)
def test_the_page_reads_complete_as_plain_text(page: Path) -> None:
    """Rendered as a forge renders it, the page shows every code block it has, and includes nothing from a file."""
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"^\s*\.\. (literalinclude|include)::", text, re.M), (
        f"{page.name} includes a file, which a forge does not show: write the code inline")
    blocks = pages.blocks(page)
    for block in blocks:
        unknown = set(block.options) - pages.DOCUTILS_OPTIONS
        assert not unknown, (f"{block.where}: {', '.join(sorted(unknown))} is an option of Sphinx only; plain "
                             "docutils drops the whole block (use :class: or a comment in the code)")
    tree = publish_doctree(text, source_path=str(page), settings_overrides=FORGE)
    shown = [node.astext() for node in tree.findall(nodes.literal_block) if "code" in node["classes"]]
    assert shown == [block.text.rstrip("\n") for block in blocks]


DEMO_BLOCKS = [block for page in pages.pages() for block in pages.blocks(page)
               if block.path is not None and block.path.startswith("testproject/")]


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda block: block.where)
def test_every_python_block_compiles(block: pages.Block) -> None:
    block.compile()


@pytest.mark.parametrize("block", DEMO_BLOCKS, ids=lambda block: block.where)
def test_what_a_page_shows_of_the_demo_project_is_its_code(block: pages.Block) -> None:
    """A block naming a file of ``testproject/`` is that file, or a part of it as it is (the demo's tests and
    browser tests run it): in a row, or, in Python, top-level statements that the file has as they are."""
    current = (REPO_ROOT / block.path).read_text(encoding="utf-8")
    if not block.partial:
        assert block.text == current, f"{block.where} is not {block.path} as it is"
    elif not pages.appears_in(block, current):
        assert block.language == "python", f"{block.where}: these lines are not in {block.path}"
        assert pages.merge_python(current, block) == current, f"{block.where} differs from {block.path}"


def test_what_hypergen_rst_says_of_the_demos_asgi_py_is_what_it_does() -> None:
    """The paragraph above hypergen.rst's asgi.py: what the demo keeps and what it puts in place of Hypergen's
    wrappers are the wrappers ``testproject/asgi.py`` applies, and what it replaces is not applied."""
    [block] = [b for b in pages.blocks("hypergen.rst") if b.path == "testproject/asgi.py"]
    lines = (DOCS / "hypergen.rst").read_text(encoding="utf-8").splitlines()
    directive = next(i for i in range(block.line - 1, 0, -1) if lines[i].lstrip().startswith(".. code-block::"))
    end = max(i for i in range(directive) if lines[i].strip()) + 1
    start = max(i for i in range(end) if not lines[i].strip()) + 1
    prose = " ".join(lines[start:end])
    demo = prose[prose.index("The demo's"):]
    tree = ast.parse((REPO_ROOT / block.path).read_text(encoding="utf-8"))
    [application] = [node.value for node in tree.body if isinstance(node, ast.Assign)
                     and any(isinstance(t, ast.Name) and t.id == "application" for t in node.targets)]
    applied = {node.func.id for node in ast.walk(application)
               if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    wrappers = applied - {"ProtocolTypeRouter", "URLRouter"}
    assert "SameOriginValidator" in wrappers, "the walk of asgi.py's application found no wrapper"
    named = set(re.findall(r"``(\w+)``", demo))
    assert wrappers <= named, f"hypergen.rst does not say that the demo applies {wrappers - named}"
    replaced = set(re.findall(r"in place of\s+``(\w+)``", demo))
    kept = set(re.findall(r"keeps\s+``(\w+)``", demo))
    assert replaced and not replaced & applied, f"hypergen.rst says the demo replaces {replaced}, which it applies"
    assert kept and kept <= applied, f"hypergen.rst says the demo keeps {kept - applied}, which it does not apply"
    assert named - replaced <= applied, f"hypergen.rst names {named - replaced - applied} as the demo's"


@pytest.mark.parametrize("page", pages.pages(), ids=lambda p: p.name)
def test_every_install_of_an_extra_works_without_an_index(page: Path) -> None:
    """hypergen-ws is not on PyPI: an extra is installed from a clone or a wheel, whose name has the version."""
    text = page.read_text(encoding="utf-8")
    assert "hypergen-ws[" not in text, f"{page.name}: pip install \"hypergen-ws[...]\" needs an index that has it"
    for requirement in re.findall(r"pip install\s+(?:-e\s+)?\"?([^\s\"`]*\[[\w,-]+\])", text):
        assert requirement.startswith(("/", ".", "git+")) or ".whl[" in requirement, (
            f"{page.name}: pip install {requirement} names the project, which needs an index; install the extra "
            "from a clone (\"/path/to/hypergen_ws[extra]\") or a wheel")
    for version in re.findall(r"hypergen_ws-(\d[^-\s]*)-py3-none-any\.whl", text):
        assert version == hypergen_ws.__version__, f"{page.name} names the wheel of version {version}"


def test_the_api_reference_documents_public_names_from_the_package() -> None:
    text = (DOCS / "api.rst").read_text(encoding="utf-8")
    module = None
    for line in text.splitlines():
        if line.startswith(".. currentmodule::"):
            module = line.split("::")[1].strip()
        match = re.match(r"\.\. auto(?:function|class|data)::\s+([\w.]+)", line)
        if match:
            name = match.group(1)
            assert "." not in name, f"{name}: document it by its public name, under a currentmodule"
            assert module in PUBLIC_MODULES, f"{name} is documented under {module}, which is not a public module"
            public = getattr(importlib.import_module(module), "__all__", None)
            assert public is None or name in public, f"{module}.{name} is not a public name"
    for internal in ("hypergen_ws.decorators", "hypergen_ws.consumers", "hypergen_ws.publish", "hypergen_ws.core.origins",
                     "hypergen_ws.core.bodies", "hypergen_ws.features", "MISSING", "automodule"):
        assert internal not in text, f"api.rst names {internal}: document the public import path"


def test_the_documented_consumer_signature_is_the_real_one() -> None:
    text = (DOCS / "api.rst").read_text(encoding="utf-8")
    [shown] = re.findall(r"\.\. autofunction:: consumer\((.*)\)", text)
    real = inspect.signature(hypergen_ws.consumer)
    params = [p.strip() for p in shown.split(",")]
    assert params[0] == "perm" and params[1] == "*", "perm is required; everything after it keyword-only"
    documented = dict(p.split("=", 1) for p in params[2:])
    expected = {name: p.default for name, p in real.parameters.items() if name != "perm"}
    assert list(documented) == list(expected)
    for name, default in expected.items():
        written = documented[name]
        if isinstance(default, type):
            assert written == default.__name__ and getattr(hypergen_ws, written) is default
        else:
            assert eval(written) == default, f"{name}: the docs say {written}, the code {default!r}"  # noqa: S307


def test_benchmark_plots_open_at_full_size() -> None:
    text = (DOCS / "benchmarks.rst").read_text(encoding="utf-8")
    images = re.findall(r"^\.\. image:: (\S+)\n((?:   .*\n)*)", text, re.M)
    assert images, "benchmarks.rst has no plots"
    for path, options in images:
        assert f"   :target: {path}\n" in options, f"{path} is not a link to itself"
        assert (DOCS / path).is_file()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_page_refers_to_a_design_document(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"\bthe design\b|design's|DESIGN\.md", text), f"{page.name} cites a document not in docs/"
