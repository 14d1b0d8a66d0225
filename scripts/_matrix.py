"""The version matrix of scripts/test.py: which Python and Django each pair of the test command runs.

Like django-htmx's, two pairs, the oldest and the newest that ``pyproject.toml`` allows:

* the whole suite on the interpreter that runs the script (Python 3.11 in CI) with Django 5.2, in ``.venv``;
* the in-process suite (``-m "not live"``: no browser, no servers or projects in other processes) on Python 3.13
  with Django 6.1, in ``.venv-py3.13-django6.1``. Its venv gets the development extra without what only the live
  suite, the docs and the type checks need, so that it installs quickly; both venvs are reused while
  ``pyproject.toml`` stays the same.

Standard library only, like ``_bootstrap``.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from _bootstrap import REPO_ROOT

#: The whole suite: the Django of the oldest supported pair.
MAIN_DJANGO = "Django>=5.2,<5.3"
#: The newest pair, for the in-process suite.
NEWEST_PYTHON = "3.13"
NEWEST_DJANGO = "Django>=6.1,<6.2"
NEWEST_VENV = REPO_ROOT / f".venv-py{NEWEST_PYTHON}-django6.1"
#: What the in-process suite leaves out: the live suite (tests/e2e/, the docs' projects, browsers).
IN_PROCESS = ["-m", "not live", "--ignore=tests/e2e"]
#: Development packages the in-process suite does not use (browsers, plots, the docs build, type and layer checks,
#: packaging, the benchmarks' comparison); docutils is kept, for the tests of the docs' pages.
NOT_IN_PROCESS = frozenset({"playwright", "matplotlib", "sphinx", "furo", "mypy", "django-stubs", "import-linter",
                            "build", "channel-box"})


@dataclass(frozen=True)
class Pair:
    python: str
    django: str


def requirement_name(requirement: str) -> str:
    """``"django-stubs>=5.1"`` -> ``"django-stubs"`` (normalized, as pip compares names)."""
    name = re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def in_process_packages() -> list[str]:
    """The development extra without :data:`NOT_IN_PROCESS`, docutils, and the newest Django."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dev = project["optional-dependencies"]["dev"]
    kept = [requirement for requirement in dev if requirement_name(requirement) not in NOT_IN_PROCESS]
    return [*kept, "docutils", NEWEST_DJANGO]


def find_python(version: str) -> str | None:
    """An interpreter of ``version`` (``"3.13"``): installed by pyenv, or on PATH (not a pyenv shim, which works
    only where that version is selected)."""
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv"), "/root/.pyenv"]
    for root in filter(None, roots):
        candidates = sorted(glob.glob(f"{root}/versions/{version}.*/bin/python{version}"),
                            key=lambda path: [int(n) for n in re.findall(r"\d+", Path(path).parents[1].name)])
        if candidates:
            return candidates[-1]
    found = shutil.which(f"python{version}")
    return found if found and "/shims/" not in found else None


def versions(python: Path | str) -> Pair:
    """The Python and Django versions of an interpreter's environment."""
    probe = subprocess.run([str(python), "-c", "import sys, django; print(sys.version.split()[0], django.__version__)"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return Pair("?", "?")
    python_version, django_version = probe.stdout.split()
    return Pair(python_version, django_version)


def describe(pair: Pair) -> str:
    return f"Python {pair.python}, Django {pair.django}"


def install_hint(version: str) -> str:
    return (f"install Python {version} (pyenv install {version}, or apt-get install python{version} "
            f"python{version}-venv) so that the in-process suite runs on it with Django 6.1")


if __name__ == "__main__":
    # python3 scripts/_matrix.py: a quick look. --find: the newest pair's interpreter, or exit code 1 (.ci/run).
    found = find_python(NEWEST_PYTHON)
    if sys.argv[1:] == ["--find"]:
        print(found or f"Python {NEWEST_PYTHON} not found: {install_hint(NEWEST_PYTHON)}")
        sys.exit(0 if found else 1)
    print("Python", NEWEST_PYTHON, "->", found or "not found")
    print("in-process packages:", " ".join(in_process_packages()))
    sys.exit(0)
