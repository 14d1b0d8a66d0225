"""Projects a reader builds from the docs, step by step: ``startproject``, then each step's files, then commands.

The quickstart and the tutorial include their code from ``tests/<name>_project/stepN/`` (``literalinclude``): each
``stepN`` directory holds the files as they are after step N, relative to the outer project directory (the one
with ``manage.py``). :class:`StepProject` writes them over a fresh ``startproject`` in order, so what the
reader copies is what runs. Marker comments that delimit parts for the docs (``# [name]``, ``{# [name] #}``) are
left out, as a reader who copies the parts never sees them.
"""
from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from websockets.sync.client import ClientConnection, connect

from tests.support.servers import REPO_ROOT, AsgiServer

MARKER_LINE = re.compile(r"^\s*(#|\{#) \[/?[\w-]+\]( #\})?\s*$")


def project_env() -> dict[str, str]:
    """The environment of a reader's shell: no settings module chosen, hypergen_ws importable."""
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("REDIS_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def run(args: list[str], cwd: Path, stdin: Any = subprocess.DEVNULL, *, check: bool = True
        ) -> subprocess.CompletedProcess[str]:
    """Run a command as the reader would; with ``check``, fail the test with its output when it fails."""
    result = subprocess.run(args, cwd=cwd, env=project_env(), stdin=stdin, capture_output=True, text=True,
                            timeout=180)
    if check:
        assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}"
    return result


def without_markers(text: str) -> str:
    """The file as the reader ends up with it: the docs' marker comments removed."""
    return "".join(line for line in text.splitlines(keepends=True) if not MARKER_LINE.match(line))


class StepProject:
    """A Django project in ``directory``, built from ``startproject`` and the ``stepN`` directories of ``source``."""

    def __init__(self, source: Path, directory: Path, *, project: str, app: str) -> None:
        self.source = source
        self.project = project
        self.app = app
        self.root = directory / project
        run([sys.executable, "-m", "django", "startproject", project], directory)  # django-admin startproject
        self.manage("startapp", app)

    @staticmethod
    def steps(source: Path) -> list[int]:
        """The step numbers that have a directory, in order."""
        return sorted(int(p.name[4:]) for p in source.glob("step*") if p.name[4:].isdigit())

    @staticmethod
    def files(source: Path, step: int) -> list[str]:
        """The files of one step, relative to the project, sorted."""
        base = source / f"step{step}"
        return sorted(p.relative_to(base).as_posix() for p in base.rglob("*")
                      if p.is_file() and "__pycache__" not in p.parts)

    def apply(self, step: int) -> None:
        """Write the files of ``step`` over the project."""
        for name in self.files(self.source, step):
            target = self.root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(without_markers((self.source / f"step{step}" / name).read_text(encoding="utf-8")),
                              encoding="utf-8")

    def manage(self, *args: str, stdin: Any = subprocess.DEVNULL, check: bool = True
               ) -> subprocess.CompletedProcess[str]:
        return run([sys.executable, "manage.py", *args], self.root, stdin, check=check)

    def shell_script(self, name: str) -> str:
        """``python manage.py shell < name``."""
        with open(self.root / name) as script:
            return self.manage("shell", stdin=script).stdout

    def snapshot(self, destination: Path) -> Path:
        """A copy of the project as it is now (database included)."""
        shutil.copytree(self.root, destination, ignore=shutil.ignore_patterns("__pycache__"))
        return destination

    def build(self, steps: Iterable[int], after_step: Callable[[int, StepProject], None], root: Path
              ) -> dict[int, Path]:
        """Apply ``steps`` in order, running ``after_step`` after each; a snapshot after every step (1: as made)."""
        done = {1: self.snapshot(root / "after-step1")}
        for step in steps:
            if (self.source / f"step{step}").is_dir():
                self.apply(step)
            after_step(step, self)
            done[step] = self.snapshot(root / f"after-step{step}")
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


def literalincludes_by_section(doc: Path, source_dir: str) -> dict[str, list[str]]:
    """``{section title: [file included from source_dir, ...]}`` for an .rst page, in order."""
    sections: dict[str, list[str]] = {}
    title = ""
    lines = doc.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if number + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[number + 1]) and line.strip():
            title = line.strip()
            sections.setdefault(title, [])
        match = re.match(rf"\.\. literalinclude:: \.\./{re.escape(source_dir)}/(\S+)", line)
        if match and match.group(1) not in sections.setdefault(title, []):
            sections[title].append(match.group(1))
    return sections
