"""The tutorial (docs/tutorial.rst), step by step, on a real project.

The tutorial includes its code from ``tests/tutorial_project/`` (``literalinclude``), so what the reader copies is
what runs here. The module follows the tutorial: ``startproject`` and ``startapp`` make a fresh project in a
temporary directory, the tutorial's files are written over it, then ``makemigrations``, ``migrate``, the users
script, ``check`` and ``runserver``; the tests then chat over websockets, publish from the view and render the
templates, in Python and in the browser.
"""
from __future__ import annotations

import http.cookiejar
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support.browser import expect
from tests.support.servers import REPO_ROOT, AsgiServer

TUTORIAL = Path(__file__).resolve().parent / "tutorial_project"
DOC = REPO_ROOT / "docs" / "tutorial.rst"
SOCKET = "/ws/tchat/send_message/lobby/"
PASSWORDS = {name: f"{name}-tutorial" for name in ("ann", "ben", "cy")}


def project_env() -> dict[str, str]:
    """The environment of a reader's shell: no settings module chosen, hypergen_ws importable."""
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def run(args: list[str], cwd: Path, stdin: Any = subprocess.DEVNULL) -> str:
    """Run a tutorial command; fail the test with its output when it fails."""
    result = subprocess.run(args, cwd=cwd, env=project_env(), stdin=stdin, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}"
    return result.stdout + result.stderr


def manage(project: Path, *args: str, stdin: Any = subprocess.DEVNULL) -> str:
    return run([sys.executable, "manage.py", *args], project, stdin)


class RunServer(AsgiServer):
    """``python manage.py runserver`` (daphne's) in the tutorial's project, as the tutorial starts it."""

    def __init__(self, project: Path, log_dir: Path) -> None:
        self.project = project
        super().__init__(settings="mysite.settings", env={"PYTHONPATH": project_env()["PYTHONPATH"]},
                         log_dir=log_dir, start=False)

    def command(self) -> list[str]:
        return [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"]

    def start(self) -> None:
        self._spawn(self.command(), env=self.env, cwd=self.project)
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tutorial's steps up to "Run it": a migrated project with three users."""
    root = tmp_path_factory.mktemp("tutorial")
    run([sys.executable, "-m", "django", "startproject", "mysite"], root)  # django-admin startproject mysite
    project = root / "mysite"
    manage(project, "startapp", "tchat")
    shutil.copytree(TUTORIAL, project, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    manage(project, "makemigrations", "tchat")
    manage(project, "migrate")
    with open(project / "create_users.py") as script:
        manage(project, "shell", stdin=script)
    return project


@pytest.fixture(scope="module")
def server(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunServer]:
    with RunServer(project, tmp_path_factory.mktemp("runserver-log")) as instance:
        instance.start()
        yield instance


class Browser:
    """A logged-in HTTP client (cookies, CSRF token) for one user, without a real browser."""

    def __init__(self, server: AsgiServer, username: str | None) -> None:
        self.server = server
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        if username:
            self.get("/accounts/login/")
            body, url = self.post("/accounts/login/", {"username": username, "password": PASSWORDS[username]})
            assert url.endswith("/chat/lobby/"), f"login as {username} failed: {body[:500]}"

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.cookies if c.name == name), None)

    def get(self, path: str) -> str:
        with self.opener.open(self.server.url + path, timeout=10) as response:
            return response.read().decode()

    def post(self, path: str, data: dict[str, str]) -> tuple[str, str]:
        data = {**data, "csrfmiddlewaretoken": self.cookie("csrftoken") or ""}
        request = urllib.request.Request(self.server.url + path, data=urllib.parse.urlencode(data).encode())
        with self.opener.open(request, timeout=10) as response:
            return response.read().decode(), response.url

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

    def websocket(self, path: str = SOCKET) -> ClientConnection:
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.cookies)
        headers = {"Origin": self.server.url, **({"Cookie": cookies} if cookies else {})}
        return connect(self.server.ws_url + path, additional_headers=headers, open_timeout=10)


def receive(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=10))


# -- the steps before the server runs -------------------------------------------------------------------------


def test_every_file_of_the_tutorial_project_is_in_the_tutorial() -> None:
    """Nothing in tests/tutorial_project/ that the reader is not shown (and nothing shown that is not there)."""
    doc = DOC.read_text(encoding="utf-8")
    files = sorted(p.relative_to(TUTORIAL).as_posix() for p in TUTORIAL.rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts)
    for name in files:
        assert f"literalinclude:: ../tests/tutorial_project/{name}" in doc, f"{name} is not included in {DOC}"


def test_the_project_passes_the_system_checks(project: Path) -> None:
    output = manage(project, "check", "--fail-level", "WARNING")
    assert "System check identified no issues" in output


def test_the_migrations_match_the_models(project: Path) -> None:
    assert (project / "tchat" / "migrations" / "0001_initial.py").exists()
    manage(project, "makemigrations", "--check", "--dry-run")


def test_the_consumer_is_listed_with_its_route_and_permission(project: Path) -> None:
    output = manage(project, "hypergen_ws_consumers")
    assert "tchat.send_message" in output
    assert "/ws/tchat/send_message/<slug:room_name>/" in output
    assert "tchat.can_chat" in output


def test_the_users_script_made_two_chatters_and_a_reader(project: Path) -> None:
    script = (
        "from django.contrib.auth.models import User\n"
        "print(sorted((u.username, u.has_perm('tchat.can_chat')) for u in User.objects.all()))"
    )
    output = manage(project, "shell", "-c", script)
    assert "[('ann', True), ('ben', True), ('cy', False)]" in output


def test_the_tutorials_own_tests_pass(project: Path) -> None:
    """Step 10: ``python manage.py test tchat``, Django's runner, on hypergen_ws.testing."""
    output = manage(project, "test", "tchat", "-v", "2")
    assert "Ran 3 tests" in output and "\nOK" in output
    for name in ("test_a_message_reaches_everyone_in_the_room", "test_only_chatters_may_connect",
                 "test_the_view_publishes_to_the_room"):
        assert f"{name} (tchat.tests." in output and "... ok" in output.split(name, 1)[1].splitlines()[0], name


# -- runserver ------------------------------------------------------------------------------------------------


def test_the_room_page_renders_the_script_and_the_consumer_url(server: RunServer) -> None:
    html = Browser(server, "ann").get("/chat/lobby/")
    assert '<script src="/static/hypergen_ws/hypergen-ws.js"></script>' in html
    assert f'data-url="{SOCKET}"' in html
    assert 'action="/chat/lobby/announce/"' in html
    assert "csrfmiddlewaretoken" in html
    assert "hypergen.websocket.open(url)" in html
    status, headers, body = server.get("/static/hypergen_ws/hypergen-ws.js")
    assert status == 200 and b"hypergen" in body


def test_the_room_page_needs_a_login(server: RunServer) -> None:
    status, headers, _ = server.get("/chat/lobby/")
    assert status == 302 and headers["Location"] == "/accounts/login/?next=/chat/lobby/"


def test_people_in_a_room_chat_and_the_messages_are_stored(server: RunServer) -> None:
    ann, ben = Browser(server, "ann"), Browser(server, "ben")
    with ann.websocket() as ann_ws, ben.websocket() as ben_ws, ann.websocket("/ws/tchat/send_message/vip/") as vip:
        ann_ws.send(json.dumps({"args": ["Hello <b>ben</b>"], "id": 1}))
        for ws in (ann_ws, ben_ws):
            frame = receive(ws)
            assert frame["type"] == "commands"
            [[name, target, html]] = frame["commands"]
            assert (name, target) == ("hypergen.append", "messages")
            assert "<b>ann</b> Hello &lt;b&gt;ben&lt;/b&gt;</li>" in html
        assert receive(ann_ws) == {"type": "reply", "id": 1}
        # Another room: a message there is the next (and only) frame the vip socket gets.
        vip.send(json.dumps({"args": ["VIP only"]}))
        assert "VIP only" in receive(vip)["commands"][0][2]
    assert "Hello &lt;b&gt;ben&lt;/b&gt;" in ben.get("/chat/lobby/")
    assert "VIP only" not in ben.get("/chat/lobby/")


@pytest.mark.parametrize(("user", "code"), [("cy", 4403), (None, 4401)])
def test_a_socket_without_the_permission_is_refused(server: RunServer, user: str | None, code: int) -> None:
    with Browser(server, user).websocket() as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code


def test_the_announce_view_publishes_to_the_room(server: RunServer) -> None:
    ann, cy = Browser(server, "ann"), Browser(server, "cy")
    with ann.websocket() as ws:
        assert ann.status_of_post("/chat/lobby/announce/", {"text": "Pizza at <noon>"}) == 204
        [[name, target, html]] = receive(ws)["commands"]
        assert (name, target, html) == ("hypergen.append", "messages",
                                        '<li class="announcement">📣 Pizza at &lt;noon&gt;</li>')
    assert ann.status_of_post("/chat/lobby/announce/", {"text": " "}) == 400
    assert cy.status_of_post("/chat/lobby/announce/", {"text": "hi"}) == 403
    assert Browser(server, None).status_of_post("/chat/lobby/announce/", {"text": "hi"}) == 403
    assert ann.get("/chat/lobby/").count("Pizza") == 0  # announcements are not stored


# -- the page in a real browser -------------------------------------------------------------------------------


def browser_login(page: Any, server: RunServer, username: str) -> None:
    page.goto(f"{server.url}/chat/lobby/")  # redirected to the login page
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORDS[username])
    page.click("button")
    page.wait_for_url(f"{server.url}/chat/lobby/")
    expect(page.locator("#state")).to_have_text("open")


def test_the_page_in_two_browsers(server: RunServer, page: Any, browser: Any) -> None:
    browser_login(page, server, "ann")
    other = browser.new_context()
    try:
        ben = other.new_page()
        browser_login(ben, server, "ben")

        page.fill("#text", "Anyone here?")
        page.click("#send button")
        expect(page.locator("#text")).to_have_value("")
        for tab in (page, ben):
            expect(tab.locator("#messages li").last).to_have_text("ann Anyone here?")

        ben.fill("#announcement", "Meeting in five minutes")
        ben.click("#announce button")  # a plain form POST; the 204 answer leaves the page as it is
        for tab in (page, ben):
            expect(tab.locator("#messages li.announcement")).to_have_text("📣 Meeting in five minutes")
        expect(ben.locator("#state")).to_have_text("open")
    finally:
        other.close()


def test_the_page_of_a_user_without_the_permission(server: RunServer, page: Any) -> None:
    page.goto(f"{server.url}/chat/lobby/")
    page.fill("#id_username", "cy")
    page.fill("#id_password", PASSWORDS["cy"])
    page.click("button")
    page.wait_for_url(f"{server.url}/chat/lobby/")
    expect(page.locator("#state")).to_have_text("permission denied")


def test_the_page_comes_back_after_a_restart(server: RunServer, page: Any) -> None:
    """Step 8: stop the server, start it again; a message typed meanwhile is sent after the reconnect.

    Last in this module: it restarts the module's server.
    """
    browser_login(page, server, "ben")
    server.stop()
    expect(page.locator("#state")).to_have_text("reconnecting")
    page.fill("#text", "Typed while the server was down")
    page.click("#send button")
    server.start()
    expect(page.locator("#state")).to_have_text("open", timeout=15_000)
    expect(page.locator("#messages li").last).to_have_text("ben Typed while the server was down", timeout=10_000)
    expect(page.locator("#text")).to_have_value("")
