"""Promises of the documentation that a build with ``-W`` cannot check: public import paths in the API reference,
a ``@consumer`` signature that matches the code, clickable plots, no reference to documents outside the
repository, and highlighted lines that really are the ones a step changes."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import hypergen_ws
from tests.support.servers import REPO_ROOT

DOCS = REPO_ROOT / "docs"
PAGES = sorted(DOCS.glob("*.rst"))


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
            if module == "hypergen_ws":
                assert name in hypergen_ws.__all__, f"hypergen_ws.{name} is not a public name"
            else:
                assert module == "hypergen_ws.core.groups", f"{name} is documented under {module}"
    for internal in ("hypergen_ws.decorators", "hypergen_ws.consumers", "hypergen_ws.publish", "MISSING"):
        assert internal not in text


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


def highlighted(page: Path) -> list[tuple[str, list[int]]]:
    """``(included file, [highlighted line numbers])`` of every literalinclude with ``:emphasize-lines:``."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in re.finditer(r"\.\. literalinclude:: \.\./(\S+)\n((?:   .*\n)*)", text):
        lines = re.search(r":emphasize-lines: ([\d, ]+)", match.group(2))
        if lines:
            found.append((match.group(1), [int(n) for n in lines.group(1).split(",")]))
    return found


@pytest.mark.parametrize("page", ["quickstart.rst", "tutorial.rst"])
def test_highlighted_lines_are_the_ones_the_step_changes(page: str) -> None:
    checked = 0
    for include, numbers in highlighted(DOCS / page):
        step_dir, _, name = include.partition("/step")
        step, _, relative = name.partition("/")
        current = (REPO_ROOT / include).read_text(encoding="utf-8").splitlines()
        earlier = [REPO_ROOT / f"{step_dir}/step{n}/{relative}" for n in range(int(step) - 1, 0, -1)]
        previous = next((p for p in earlier if p.is_file()), None)
        assert previous is not None, f"{include} highlights lines but no earlier step has the file"
        before = previous.read_text(encoding="utf-8").splitlines()
        for number in numbers:
            assert current[number - 1] not in before, f"{include}:{number} is not new in this step"
            checked += 1
    assert checked, f"{page} highlights nothing"
