"""The package as users get it: ``python -m build`` makes the sdist and the wheel, the wheel goes into a fresh venv,
and a minimal project runs against that install (import, ``manage.py check``, one websocket round trip).

This catches what the editable install of the other tests hides: package data left out of the wheel (the
JavaScript client, templates, ``py.typed``), a dependency missing from ``pyproject.toml``, a module that imports
something only the development environment has. The build runs on a copy of the working tree (the files git
tracks or would track), so it leaves nothing behind in the repository.
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
from websockets.sync.client import connect

from tests.support.projects import RunServer
from tests.support.servers import REPO_ROOT

pytestmark = pytest.mark.timeout(900)

#: Files the installed package cannot work without, relative to the package directory.
PACKAGE_DATA = ("py.typed", "static/hypergen_ws/hypergen-ws.js", "templatetags/hypergen_ws.py",
                "management/commands/hypergen_ws_consumers.py", "management/commands/hypergen_ws_publish.py")

SETTINGS = '''
INSTALLED_APPS = ["daphne", *INSTALLED_APPS, "channels", "hypergen_ws", "echo"]
ASGI_APPLICATION = "smoke.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
ALLOWED_HOSTS = ["127.0.0.1"]
'''
ASGI = '''import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smoke.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator

from hypergen_ws import autoconsumers

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(autoconsumers()))),
})
'''
CONSUMERS = '''from hypergen_ws import NO_PERM_REQUIRED, command, consumer


@consumer(perm=NO_PERM_REQUIRED, path="<slug:room>/")
def shout(consumer, request, text: str, *, room):
    command("hypergen.append", "out", f"{room}: {text.upper()}")
'''
TEMPLATE = ("from django.template import engines\n"
            "print(engines['django'].from_string(\"{% load hypergen_ws %}{% hypergen_ws_script %} "
            "{% consumer_url 'echo.shout' 'lobby' %}\").render())\n")


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
    """Build the sdist and the wheel, install the wheel into a new venv, and start a project with it."""
    root = tmp_path_factory.mktemp("package")
    source = source_copy(root / "source")
    dist = root / "dist"
    run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(dist), str(source)], root)
    venv.create(root / "venv", with_pip=True)
    python = str(root / "venv" / "bin" / "python")
    [wheel] = dist.glob("*.whl")
    run([python, "-m", "pip", "install", "--quiet", str(wheel)], root)
    run([python, "-E", "-m", "django", "startproject", "smoke"], root)
    project = root / "smoke"
    run([python, "-E", "manage.py", "startapp", "echo"], project)
    with open(project / "smoke" / "settings.py", "a") as settings:
        settings.write(SETTINGS)
    (project / "smoke" / "asgi.py").write_text(ASGI)
    (project / "echo" / "consumers.py").write_text(CONSUMERS)
    yield Installed(dist, python, project)


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


def test_the_wheel_is_what_the_fresh_venv_imports(installed: Installed) -> None:
    where = run([installed.python, "-E", "-c", "import hypergen_ws; print(hypergen_ws.__file__)"], installed.project)
    assert Path(where.strip()).is_relative_to(Path(installed.python).parent.parent), where
    assert str(REPO_ROOT) not in where


def test_manage_py_check_passes_on_a_minimal_project(installed: Installed) -> None:
    output = run([installed.python, "-E", "manage.py", "check", "--fail-level", "WARNING"], installed.project)
    assert "System check identified no issues" in output
    listing = run([installed.python, "-E", "manage.py", "hypergen_ws_consumers"], installed.project)
    assert "echo.shout" in listing and "/ws/echo/shout/<slug:room>/" in listing


def test_the_template_tags_render(installed: Installed) -> None:
    output = run([installed.python, "-E", "manage.py", "shell", "-c", TEMPLATE], installed.project)
    assert '<script src="/static/hypergen_ws/hypergen-ws.js"></script> /ws/echo/shout/lobby/' in output.splitlines()


def test_one_websocket_round_trip_and_the_javascript_client(installed: Installed, tmp_path: Path) -> None:
    with RunServer(installed.project, "smoke.settings", tmp_path, python=installed.python) as server:
        server.start()
        status, _, body = server.get("/static/hypergen_ws/hypergen-ws.js")
        assert status == 200 and b"globalThis.hypergen = hypergen" in body
        with connect(server.ws_url + "/ws/echo/shout/lobby/", additional_headers={"Origin": server.url},
                     open_timeout=10) as ws:
            ws.send(json.dumps({"args": ["hello"], "id": 1}))
            assert json.loads(ws.recv(timeout=10)) == {
                "type": "commands", "commands": [["hypergen.append", "out", "lobby: HELLO"]]}
            assert json.loads(ws.recv(timeout=10)) == {"type": "reply", "id": 1}
