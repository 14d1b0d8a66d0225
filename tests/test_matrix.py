"""The version matrix of the test command (scripts/_matrix.py) and what pyproject.toml says of it."""
from __future__ import annotations

import importlib.util
import re
import sys
import tomllib

from tests.support.servers import REPO_ROOT

SCRIPTS = REPO_ROOT / "scripts"


def load_matrix():
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec = importlib.util.spec_from_file_location("_matrix", SCRIPTS / "_matrix.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["_matrix"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPTS))


def test_the_classifiers_name_the_pythons_and_djangos_the_test_command_runs() -> None:
    matrix = load_matrix()
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    classifiers = project["classifiers"]
    pythons = {c.rsplit(" ", 1)[-1] for c in classifiers if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)}
    djangos = {c.rsplit(" ", 1)[-1] for c in classifiers if re.fullmatch(r"Framework :: Django :: \d+\.\d+", c)}
    assert pythons == {"3.11", matrix.NEWEST_PYTHON}
    assert project["requires-python"] == ">=3.11"
    django_versions = {re.search(r">=(\d+\.\d+)", spec).group(1) for spec in (matrix.MAIN_DJANGO, matrix.NEWEST_DJANGO)}
    assert djangos == django_versions == {"5.2", "6.1"}


def test_the_second_pair_installs_the_in_process_tests_needs_only() -> None:
    matrix = load_matrix()
    names = {matrix.requirement_name(r) for r in matrix.in_process_packages()}
    assert not names & matrix.NOT_IN_PROCESS
    assert {"pytest", "pytest-django", "pytest-asyncio", "docutils", "django", "channels-redis"} <= names
    assert matrix.IN_PROCESS == ["-m", "not live", "--ignore=tests/e2e"]


def test_the_live_suite_is_marked() -> None:
    """The docs' projects and tests/e2e/ are the live suite, which the second pair leaves out."""
    from tests.conftest import LIVE_MODULES

    assert LIVE_MODULES == {"test_quickstart.py", "test_tutorial.py", "test_package.py"}
    for name in LIVE_MODULES:
        assert (REPO_ROOT / "tests" / name).is_file()


def test_ci_finds_the_newest_python_or_says_how_to_install_it() -> None:
    """.ci/run asks ``scripts/_matrix.py --find`` for the second pair's interpreter and stops when there is none."""
    import subprocess

    matrix = load_matrix()
    found = subprocess.run([sys.executable, str(SCRIPTS / "_matrix.py"), "--find"], capture_output=True, text=True)
    assert "scripts/_matrix.py --find" in (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    if found.returncode == 0:
        version = subprocess.run([found.stdout.strip(), "--version"], capture_output=True, text=True).stdout
        assert version.startswith(f"Python {matrix.NEWEST_PYTHON}.")
    else:
        assert f"pyenv install {matrix.NEWEST_PYTHON}" in found.stdout
