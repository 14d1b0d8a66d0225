"""The package as users get it, and README.rst as a new user follows it.

``python -m build`` makes the sdist and the wheel, whose contents are checked; a fresh venv then gets exactly what
README.rst's "A first consumer" says, read from the page (:class:`~tests.support.projects.PageProject`): the
``pip install`` of the clone, ``startproject``, the settings, ``asgi.py``, the consumer, the template, the views and
the URLs, ``check`` and ``migrate``; ``runserver`` from that venv then serves the room, and a view publishes to it.

This catches what the editable install of the other tests hides: package data left out of the wheel (the
JavaScript client, templates, ``py.typed``), a dependency missing from ``pyproject.toml``, a module that imports
something only the development environment has, a README that does not work alone. The build runs on a copy of
the working tree (the files git tracks or would track), so it leaves nothing behind in the repository.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.projects import HttpUser, PageProject, RunServer, receive
from tests.support.servers import REPO_ROOT

pytestmark = pytest.mark.timeout(900)

#: Files the installed package cannot work without, relative to the package directory.
PACKAGE_DATA = ("py.typed", "static/hypergen_ws/hypergen-ws.js", "templatetags/hypergen_ws.py",
                "management/commands/hypergen_ws_consumers.py", "management/commands/hypergen_ws_publish.py")
TEMPLATE = ("from django.template import engines\n"
            "print(engines['django'].from_string(\"{% load hypergen_ws %}{% hypergen_ws_script %} "
            "{% consumer_url 'chat.send_message' 'lobby' %}\").render())\n")
SOCKET = "/ws/chat/send_message/lobby/"


@dataclass
class Installed:
    dist: Path
    python: str
    project: Path


def run(args: list[str], cwd: Path) -> str:
    """Run a command in a clean environment: no settings module and no path from this test run."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH", "REDIS_URL")}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
    return result.stdout + result.stderr


def source_copy(destination: Path) -> Path:
    """The working tree as git sees it (tracked files and new ones that are not ignored), copied."""
    listed = run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], REPO_ROOT)
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Build the sdist and the wheel; in a new venv, follow README.rst from the install to ``migrate``."""
    root = tmp_path_factory.mktemp("package")
    source = source_copy(root / "source")
    dist = root / "dist"
    run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(dist), str(source)], root)
    venv.create(root / "venv", with_pip=True)
    python = str(root / "venv" / "bin" / "python")
    readme = PageProject(str(REPO_ROOT / "README.rst"), root, python=python,
                         paths={"/path/to/hypergen_ws": str(source)})
    readme.build(root / "steps")
    assert readme.cwd == root / "mysite"
    yield Installed(dist, python, readme.cwd)


def test_the_sdist_and_the_wheel_hold_the_package_data(installed: Installed) -> None:
    [sdist] = installed.dist.glob("hypergen_ws-*.tar.gz")
    with tarfile.open(sdist) as archive:
        in_sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    [wheel] = installed.dist.glob("hypergen_ws-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = set(archive.namelist())
    for name in PACKAGE_DATA:
        assert f"hypergen_ws/{name}" in in_sdist, f"{name} is missing from {sdist.name}"
        assert f"hypergen_ws/{name}" in in_wheel, f"{name} is missing from {wheel.name}"
    assert not any(name.startswith(("tests/", "testproject/")) for name in in_wheel)
    assert f"dist/{wheel.name}" in (REPO_ROOT / "README.rst").read_text(encoding="utf-8"), "README names the wheel"


def test_the_install_is_what_the_fresh_venv_imports(installed: Installed) -> None:
    where = run([installed.python, "-E", "-c", "import hypergen_ws; print(hypergen_ws.__file__)"], installed.project)
    assert Path(where.strip()).is_relative_to(Path(installed.python).parent.parent), where
    assert str(REPO_ROOT) not in where


def test_manage_py_check_passes_and_lists_the_consumer(installed: Installed) -> None:
    output = run([installed.python, "-E", "manage.py", "check", "--fail-level", "WARNING"], installed.project)
    assert "System check identified no issues" in output
    listing = run([installed.python, "-E", "manage.py", "hypergen_ws_consumers"], installed.project)
    assert "chat.send_message" in listing and "/ws/chat/send_message/<slug:room_name>/" in listing


def test_the_template_tags_render(installed: Installed) -> None:
    output = run([installed.python, "-E", "manage.py", "shell", "-c", TEMPLATE], installed.project)
    assert '<script src="/static/hypergen_ws/hypergen-ws.js"></script> /ws/chat/send_message/lobby/' in output


def test_the_readmes_room_chats_and_its_view_publishes(installed: Installed, tmp_path: Path) -> None:
    with RunServer(installed.project, "mysite.settings", tmp_path, python=installed.python) as server:
        server.start()
        status, _, body = server.get("/static/hypergen_ws/hypergen-ws.js")
        assert status == 200 and b"globalThis.hypergen = hypergen" in body
        visitor = HttpUser(server)
        page = visitor.get("/chat/lobby/")
        assert '<script src="/static/hypergen_ws/hypergen-ws.js"></script>' in page and f'"{SOCKET}"' in page
        with visitor.websocket(SOCKET) as ws, visitor.websocket(SOCKET) as other:
            ws.send(json.dumps({"args": ["hello <you>"], "id": 1}))
            for socket in (ws, other):
                assert receive(socket) == {
                    "type": "commands", "commands": [["hypergen.append", "messages", "<li>hello &lt;you&gt;</li>"]]}
            assert receive(ws) == {"type": "reply", "id": 1}
            assert visitor.status_of_post("/chat/lobby/announce/", {"text": "Tea <now>"}) == 204
            assert receive(other) == {
                "type": "commands", "commands": [["hypergen.append", "messages", "<li><b>Tea &lt;now&gt;</b></li>"]]}
