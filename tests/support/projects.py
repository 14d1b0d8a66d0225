"""Projects a reader builds from a page of the docs: ``startproject``, then the page's files and commands in order.

The quickstart and the tutorial hold their code inline (docs/architecture.rst, "Code on the pages"):
:class:`PageProject` reads the page's blocks with :mod:`tests.support.pages` and does what the reader does, section
by section: it runs the ``console`` blocks' commands and writes every block that names a file, whole or as a part.
A copy of the project after every numbered section lets the tests check it, and serve it, as it stands then.
"""
from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, ClassVar

from websockets.sync.client import ClientConnection, connect

from tests.support import pages
from tests.support.servers import REPO_ROOT, AsgiServer


def project_env() -> dict[str, str]:
    """The environment of a reader's shell: no settings module chosen, hypergen_ws importable."""
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("REDIS_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def run(args: list[str], cwd: Path, stdin: Any = subprocess.DEVNULL, *, check: bool = True, timeout: float = 180
        ) -> subprocess.CompletedProcess[str]:
    """Run a command as the reader would; with ``check``, fail the test with its output when it fails."""
    result = subprocess.run(args, cwd=cwd, env=project_env(), stdin=stdin, capture_output=True, text=True,
                            timeout=timeout)
    if check:
        assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}"
    return result


#: Commands of a page's first step that the test's environment has done already: the venv and the install (the
#: package test installs the built wheel as README.rst says).
DONE_ALREADY = (re.compile(r"^python3? -m venv \S+$"), re.compile(r"^\. \S+/bin/activate$"),
                re.compile(r"^pip install "))
STEP_TITLE = re.compile(r"^(\d+)\. ")


class PageProject:
    """The project a page builds, in ``directory``: its commands run and its files written in the page's order.

    :meth:`build` returns a copy of the project after every numbered section ("3. Settings" is step 3);
    :attr:`served` holds the steps that end by starting ``runserver``, which the tests then serve themselves.
    """

    def __init__(self, page: str, directory: Path, *, python: str | None = None,
                 paths: dict[str, str] | None = None) -> None:
        self.page = page
        self.blocks = pages.blocks(page)
        self.directory = directory
        self.cwd = directory
        self.served: set[int] = set()
        #: Another interpreter (a fresh venv's), run with -E; its ``pip install`` lines are then run too.
        self.python = python
        #: What the page's placeholders stand for here, e.g. {"/path/to/hypergen_ws": "/tmp/.../source"}.
        self.paths = paths or {}

    def steps(self) -> dict[int, list[pages.Block]]:
        """``{step: its blocks}``; blocks outside the numbered sections are output samples only."""
        found: dict[int, list[pages.Block]] = {}
        for block in self.blocks:
            match = STEP_TITLE.match(block.heading)
            if match:
                found.setdefault(int(match.group(1)), []).append(block)
            else:
                acted_on = block.path or (block.language == "console" and block.commands())
                assert not acted_on, f"{block.where} is outside a numbered step of {self.page}"
        return found

    def interpreter(self) -> list[str]:
        return [self.python, "-E"] if self.python else [sys.executable]

    def manage(self, *args: str, stdin: Any = subprocess.DEVNULL, check: bool = True
               ) -> subprocess.CompletedProcess[str]:
        return run([*self.interpreter(), "manage.py", *args], self.cwd, stdin, check=check)

    def command(self, step: int, command: str) -> None:
        """Run one command of the page as the reader would."""
        for placeholder, path in self.paths.items():
            command = command.replace(placeholder, path)
        words = shlex.split(command.split(" #", 1)[0])
        if words[:2] == ["pip", "install"] and self.python:
            run([self.python, "-E", "-m", "pip", "install", "--quiet", *words[2:]], self.cwd, timeout=600)
        elif any(pattern.match(command) for pattern in DONE_ALREADY):
            return
        elif words[0] == "django-admin":  # the console script of this environment's Django
            run([*self.interpreter(), "-m", "django", *words[1:]], self.cwd)
        elif words[0] == "cd" and len(words) == 2:
            self.cwd = self.cwd / words[1]
        elif words[:2] == ["python", "manage.py"] and words[2:3] == ["runserver"]:
            self.served.add(step)
        elif words[:2] == ["python", "manage.py"] and "<" in words:
            stdin_name = words[words.index("<") + 1]
            with open(self.cwd / stdin_name, encoding="utf-8") as stdin:
                self.manage(*words[2:words.index("<")], stdin=stdin)
        elif words[:2] == ["python", "manage.py"]:
            self.manage(*words[2:])
        else:
            raise AssertionError(f"{self.page} runs {command!r}, which its test does not know how to run")

    def apply(self, step: int, section: list[pages.Block]) -> None:
        for block in section:
            if block.language == "console":
                for command in block.commands():
                    self.command(step, command)
            elif block.path is not None:
                pages.write(block, self.cwd)
            else:
                assert block.language in ("text", "console"), (
                    f"{block.where} is a {block.language} block of step {step} that names no file: start it with "
                    "a comment naming the file (docs/architecture.rst, 'Code on the pages')")

    def snapshot(self, destination: Path) -> Path:
        """A copy of the project as it is now (database included)."""
        shutil.copytree(self.cwd, destination, ignore=shutil.ignore_patterns("__pycache__"))
        return destination

    def build(self, snapshots: Path) -> dict[int, Path]:
        """Follow every step in order; a copy of the project after each one."""
        done = {}
        for step, section in sorted(self.steps().items()):
            self.apply(step, section)
            done[step] = self.snapshot(snapshots / f"after-step{step}")
        return done


def manage_in(directory: Path, *args: str, check: bool = True) -> str:
    """``python manage.py *args`` in ``directory``; its stdout and stderr."""
    result = run([sys.executable, "manage.py", *args], directory, check=check)
    return result.stdout + result.stderr


class RunServer(AsgiServer):
    """``python manage.py runserver`` (daphne's) in a reader's project, as the docs start it.

    ``python`` is the interpreter (this one by default, with the repository importable); another one, such as a
    fresh venv's, runs with ``-E`` so that nothing from this environment leaks into it.
    """

    def __init__(self, project: Path, settings: str, log_dir: Path, *, python: str | None = None) -> None:
        self.project = project
        self.python = python
        super().__init__(settings=settings, env={"PYTHONPATH": project_env()["PYTHONPATH"]}, log_dir=log_dir,
                         start=False)

    def command(self) -> list[str]:
        python = [self.python, "-E", "-u"] if self.python else [sys.executable]
        return [*python, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"]

    def start(self) -> None:
        self._spawn(self.command(), env=self.env, cwd=self.project)
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise

    def log(self) -> str:
        """What the server printed so far (every start)."""
        return "".join(path.read_text(errors="replace") for path in sorted(self.log_dir.glob(f"{self.name}-*.log")))


class HttpUser:
    """A logged-in HTTP client (cookies, CSRF token) for one user, without a real browser."""

    login_path: ClassVar[str] = "/accounts/login/"

    def __init__(self, server: AsgiServer, username: str | None = None, password: str | None = None,
                 *, landing: str | None = None) -> None:
        self.server = server
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        if username:
            self.get(self.login_path)
            body, url = self.post(self.login_path, {"username": username, "password": password or ""})
            assert landing is None or url.endswith(landing), f"login as {username} failed: {body[:500]}"

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.cookies if c.name == name), None)

    def get(self, path: str) -> str:
        with self.opener.open(self.server.url + path, timeout=10) as response:
            return str(response.read().decode())

    def post(self, path: str, data: dict[str, str]) -> tuple[str, str]:
        data = {**data, "csrfmiddlewaretoken": self.cookie("csrftoken") or ""}
        request = urllib.request.Request(self.server.url + path, data=urllib.parse.urlencode(data).encode())
        with self.opener.open(request, timeout=10) as response:
            return str(response.read().decode()), str(response.url)

    def status_of_post(self, path: str, data: dict[str, str]) -> int:
        try:
            request = urllib.request.Request(
                self.server.url + path, data=urllib.parse.urlencode(data).encode(),
                headers={"X-CSRFToken": self.cookie("csrftoken") or ""},
            )
            with self.opener.open(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def websocket(self, path: str) -> ClientConnection:
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.cookies)
        headers = {"Origin": self.server.url, **({"Cookie": cookies} if cookies else {})}
        return connect(self.server.ws_url + path, additional_headers=headers, open_timeout=10)


def receive(ws: ClientConnection) -> dict[str, Any]:
    """The next frame of a websocket, decoded."""
    frame: dict[str, Any] = json.loads(ws.recv(timeout=10))
    return frame
