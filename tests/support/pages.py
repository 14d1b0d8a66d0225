"""The code of the documentation's pages, block by block, so that the tests run what a reader reads.

Every example lives inline in its page, in ``.. code-block::`` directives, so that a page reads complete as plain
reStructuredText (on a code forge, in an editor) as well as built by Sphinx. The conventions this module reads are
described for contributors in docs/architecture.rst ("Code on the pages"):

* a block whose first line is a comment naming a file of the project (``# chat/consumers.py``,
  ``{# chat/templates/chat/lobby.html #}``) is that file, whole: a reader creates the file, or replaces it, with
  the block;
* ``:class: partial`` marks a block that is deliberately not complete on its own. With a file comment it is a part
  of that file: in Python, each top-level assignment replaces the one of the same name, and one the file does not
  have yet goes below the statement before it in the block (at the end when there is none); a ``def`` or a
  ``class`` assigns its name too, so a page can show a test module in several blocks; in any other language,
  the block's first line is a line of the file, and the block goes in its place. Without a file comment it is a
  fragment that refers to names defined elsewhere on the page: it is compiled, never run alone;
* a Python block with neither a file comment nor ``:class: partial`` is complete: tests/test_page_blocks.py runs
  it alone and checks that it imports or defines every name it uses;
* ``$ `` starts a command in a ``console`` block.

Only the options that docutils knows (``:class:``, ``:name:``) are used on code blocks: a forge renders pages with
plain docutils, which drops a whole block that has a Sphinx-only option such as ``:caption:`` or
``:emphasize-lines:``.
"""
from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from tests.support.servers import REPO_ROOT

DOCS = REPO_ROOT / "docs"
DIRECTIVE = re.compile(r"^(?P<indent> *)\.\. code-block::[ \t]*(?P<language>\S*)\s*$")
OPTION = re.compile(r"^ +:(?P<name>[\w-]+):(?: +(?P<value>.*))?$")
# The file a block is: "# mysite/settings.py" or "{# chat/templates/chat/lobby.html #}" alone on the first line.
FILE_COMMENT = re.compile(r"^(?:# |\{# )(?P<path>[\w.-]+(?:/[\w.-]+)*\.[a-z]+)(?: #\})?$")
HEADING_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}$")
#: The options of docutils' own ``code`` directive (``code-block`` is its alias): the only ones a forge renders.
DOCUTILS_OPTIONS = frozenset({"class", "name", "number-lines"})


@dataclass(frozen=True)
class Block:
    """One ``code-block`` of a page."""

    page: Path
    line: int  #: the page's line number of the block's first line of code (1-based)
    language: str
    options: dict[str, str] = field(hash=False)
    text: str  #: the code, dedented, with a final newline
    section: str  #: the title of the section (``---`` underline) the block is in
    heading: str  #: the title of the closest heading of any level

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO_ROOT)}:{self.line}"

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.options.get("class", "").split())

    @property
    def partial(self) -> bool:
        """Whether the block is marked as deliberately not complete on its own (``:class: partial``)."""
        return "partial" in self.classes

    @property
    def path(self) -> str | None:
        """The file the block is (its first line's comment), relative to the project; None when it names none."""
        first = self.text.split("\n", 1)[0].strip()
        match = FILE_COMMENT.match(first)
        return match.group("path") if match else None

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def commands(self) -> list[str]:
        """The commands of a ``console`` block: its lines that start with ``$ ``, without the prompt."""
        assert self.language == "console", f"{self.where} is a {self.language} block, not a console one"
        return [line[2:].strip() for line in self.lines if line.startswith("$ ")]

    def source(self) -> str:
        """The block as Python source whose line numbers are the page's, for ``compile(..., str(page), ...)``."""
        return "\n" * (self.line - 1) + self.text

    def compile(self) -> object:
        """Compile a Python block (``await`` allowed at the top level, as in the docs' async snippets)."""
        return compile(self.source(), str(self.page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                       dont_inherit=True)


def headings(lines: list[str]) -> dict[int, tuple[str, str]]:
    """``{line index: (underline character, title)}`` of the headings of a page."""
    found = {}
    for index in range(len(lines) - 1):
        title, underline = lines[index].rstrip(), lines[index + 1].rstrip()
        if title.strip() and not title.startswith(" ") and HEADING_UNDERLINE.match(underline) \
                and len(underline) >= len(title):
            found[index] = (underline[0], title.strip())
    return found


def blocks(page: str | Path) -> list[Block]:
    """Every ``code-block`` of ``page`` (a path, or a name in docs/), in the order of the page."""
    path = Path(page) if Path(page).is_absolute() else (REPO_ROOT / page if "/" in str(page) else DOCS / page)
    lines = path.read_text(encoding="utf-8").splitlines()
    titles = headings(lines)
    found: list[Block] = []
    section = heading = ""
    index = 0
    while index < len(lines):
        if index in titles:
            character, heading = titles[index]
            if character == "-":
                section = heading
        match = DIRECTIVE.match(lines[index])
        if not match:
            index += 1
            continue
        indent = len(match.group("indent"))
        options: dict[str, str] = {}
        index += 1
        while index < len(lines) and (option := OPTION.match(lines[index])):
            options[option.group("name")] = (option.group("value") or "").strip()
            index += 1
        start = index
        while index < len(lines) and (not lines[index].strip()
                                      or len(lines[index]) - len(lines[index].lstrip()) > indent):
            index += 1
        body = lines[start:index]
        while body and not body[0].strip():
            body.pop(0)
            start += 1
        while body and not body[-1].strip():
            body.pop()
        text = textwrap.dedent("\n".join(body)) + "\n"
        found.append(Block(path, start + 1, match.group("language") or "default", options, text, section, heading))
    return found


def pages() -> list[Path]:
    """Every page of docs/, and README.rst."""
    return [*sorted(DOCS.glob("*.rst")), REPO_ROOT / "README.rst"]


# -- a block written into a project ---------------------------------------------------------------------------


def write(block: Block, root: Path) -> Path:
    """Write ``block`` into the project in ``root`` as a reader would: the whole file, or its part (see above)."""
    assert block.path is not None, f"{block.where} names no file (a first line such as '# chat/consumers.py')"
    target = root / block.path
    if not block.partial:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.text, encoding="utf-8")
        return target
    assert target.exists(), f"{block.where} is a part of {block.path}, which the project does not have yet"
    current = target.read_text(encoding="utf-8")
    merged = merge_python(current, block) if block.language == "python" else merge_at_anchor(current, block)
    target.write_text(merged, encoding="utf-8")
    return target


def _statement_spans(tree: ast.Module, lines: list[str]) -> list[tuple[str, int, int]]:
    """``(assigned name, first line, last line)`` (0-based, inclusive) of each top-level statement, with the comment
    lines right above it."""
    spans = []
    previous_end = 0
    for node in tree.body:
        name = _assigned_name(node)
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))]) - 1
        while start > previous_end and lines[start - 1].lstrip().startswith("#"):
            start -= 1
        spans.append((name, start, (node.end_lineno or node.lineno) - 1))
        previous_end = (node.end_lineno or node.lineno)
    return spans


def _assigned_name(node: ast.stmt) -> str:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
    if len(targets) == 1 and isinstance(targets[0], ast.Name):
        return targets[0].id
    return ""


def merge_python(current: str, block: Block) -> str:
    """``current`` with each top-level assignment of ``block`` put in place of the one of the same name."""
    part = block.lines[1:]  # without the file comment
    part_spans = _statement_spans(ast.parse("\n".join(part)), part)
    lines = current.splitlines()
    after: int | None = None  # the file's line below which the next new statement goes
    for name, start, end in part_spans:
        statement = part[start:end + 1]
        spans = _statement_spans(ast.parse("\n".join(lines)), lines)
        existing = {n: (s, e) for n, s, e in spans if n}
        same = [e for _, s, e in spans if lines[s:e + 1] == statement]
        if same:  # already there, as it is (an import, say): the next new statement goes below it
            after = same[0] + 1
            continue
        assert name, (f"{block.where}: a statement of a part of a Python file that the file does not have must "
                      "assign a name (NAME = ..., def, class)")
        if name in existing:
            first, last = existing[name]
            lines[first:last + 1] = statement
            after = first + len(statement)
        elif after is None:
            lines += ["", *statement]
            after = len(lines)
        else:
            lines[after:after] = statement
            after += len(statement)
    return "\n".join(lines) + "\n"


def merge_at_anchor(current: str, block: Block) -> str:
    """``current`` with the line equal to ``block``'s first one replaced by the block, re-indented to fit."""
    part = block.lines[1:]
    anchor = part[0].strip()
    lines = current.splitlines()
    places = [index for index, line in enumerate(lines) if line.strip() == anchor]
    assert len(places) == 1, (f"{block.where}: its first line {anchor!r} must be exactly one line of "
                              f"{block.path}; it is {len(places)}")
    index = places[0]
    indent = " " * (len(lines[index]) - len(lines[index].lstrip()))
    dedented = textwrap.dedent("\n".join(part)).splitlines()
    lines[index:index + 1] = [indent + line if line.strip() else line for line in dedented]
    return "\n".join(lines) + "\n"


def file_blocks(page: str | Path, path: str) -> list[Block]:
    """The blocks of ``page`` that are the file ``path`` or parts of it, in order: the first one whole."""
    found = [block for block in blocks(page) if block.path == path]
    assert found, f"{page} has no block that starts with a comment naming {path}"
    assert not found[0].partial and all(b.partial for b in found[1:]), (
        f"{found[0].where}: the first block of {path} is the whole file, the others are parts of it")
    return found


def exec_file(page: str | Path, path: str, namespace: dict[str, object]) -> None:
    """Run the file ``path`` that ``page`` shows, block by block, in ``namespace`` (a module's globals).

    The parts of a Python file only add or replace top-level names, so running the blocks in order is running
    the file they make; tracebacks point at the page's lines.
    """
    for block in file_blocks(page, path):
        assert block.language == "python", f"{block.where} is not Python"
        exec(block.compile(), namespace)  # noqa: S102 - the code of the docs, which the tests exist to run


def load(page: str | Path, path: str, package: str) -> ModuleType:
    """The file ``path`` that ``page`` shows, run as a module of ``package`` (its relative imports resolve there):
    the views and models a page shows, for the tests that use them."""
    name = f"{package}._page_{Path(str(page)).stem}_{Path(path).stem}"
    module = ModuleType(name)
    module.__package__ = package
    exec_file(page, path, module.__dict__)
    return module


def appears_in(block: Block, text: str) -> bool:
    """Whether the lines of ``block`` (without its file comment) are lines of ``text``, in a row, each indented
    alike: a part a page shows of a file that exists, such as the demo project's."""
    part = block.lines[1:] if block.path else block.lines
    lines = text.splitlines()
    for start, line in enumerate(lines):
        if line.strip() != part[0].strip() or start + len(part) > len(lines):
            continue
        indent = " " * (len(line) - len(line.lstrip()) - (len(part[0]) - len(part[0].lstrip())))
        if all((not want.strip() and not have.strip()) or have == indent + want
               for want, have in zip(part, lines[start:start + len(part)])):
            return True
    return False


def sections(page_blocks: Iterable[Block]) -> dict[str, list[Block]]:
    """The blocks grouped by their section, in the order of the page."""
    grouped: dict[str, list[Block]] = {}
    for block in page_blocks:
        grouped.setdefault(block.section, []).append(block)
    return grouped
