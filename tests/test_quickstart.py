"""The quickstart (docs/quickstart.rst), step by step, from the page itself, on a real project, driven in Chromium.

:class:`~tests.support.projects.PageProject` reads the page's code blocks in order and does what a reader does:
``startproject`` and ``startapp``, every file the page shows (whole, or its part of the settings), every command
it runs; ``manage.py check`` passes after every step, and ``runserver`` serves the project as it is after steps 6
(open to everyone), 7 (a permission, nobody logged in), 8 (logins and a granted permission) and 9 (a LOGGING
setting).
"""
from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.bodies import MiB, post_huge_body
from tests.support.browser import expect
from tests.support.projects import PageProject, RunServer, manage_in, run

PAGE = "quickstart.rst"
PASSWORDS = {"ann": "ann-quickstart", "bob": "bob-quickstart"}
SOCKET = r"ws://127\.0\.0\.1:\d+/ws/chat/send_message/lobby/"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[PageProject, dict[int, Path]]:
    """The project of the page, and a copy of it after each step, built in the page's order."""
    root = tmp_path_factory.mktemp("quickstart")
    project = PageProject(PAGE, root)
    return project, project.build(root)


@pytest.fixture(scope="module")
def snapshots(built: tuple[PageProject, dict[int, Path]]) -> dict[int, Path]:
    return built[1]


def manage(directory: Path, *args: str) -> str:
    return manage_in(directory, *args)


@pytest.fixture(scope="module")
def runserver(built: tuple[PageProject, dict[int, Path]], tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Callable[[int], RunServer]]:
    """``runserver`` on the project as it is after a step that starts it; started once per step."""
    project, snapshots = built
    servers: dict[int, RunServer] = {}

    def after(step: int) -> RunServer:
        assert step in project.served, f"step {step} of the quickstart does not start runserver"
        if step not in servers:
            server = RunServer(snapshots[step], "mysite.settings", tmp_path_factory.mktemp(f"runserver-{step}"))
            server.start()
            servers[step] = server
        return servers[step]

    try:
        yield after
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture
def page_errors(page: Any) -> list[str]:
    """Uncaught errors and unhandled promise rejections of ``page``."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def send(page: Any, text: str) -> None:
    page.fill("#text", text)
    page.click("#form button")


def login(page: Any, server: RunServer, username: str) -> None:
    page.goto(f"{server.url}/accounts/login/?next=/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORDS[username])
    page.click("button")
    page.wait_for_url(f"{server.url}/")


# -- the page and the steps -----------------------------------------------------------------------------------


def test_the_page_is_nine_steps_and_starts_the_server_where_it_says(built: tuple[PageProject, dict[int, Path]]
                                                                    ) -> None:
    project, snapshots = built
    assert sorted(snapshots) == list(range(1, 10))
    assert project.served == {6, 7, 8, 9}


def test_the_settings_are_startprojects_with_the_pages_parts(snapshots: dict[int, Path]) -> None:
    settings = (snapshots[9] / "mysite" / "settings.py").read_text(encoding="utf-8")
    assert settings.count("INSTALLED_APPS = [") == 1 and '"daphne",  # first' in settings
    assert settings.index("WSGI_APPLICATION") < settings.index("ASGI_APPLICATION") < settings.index("DATABASES")
    assert settings.rstrip().endswith("}") and settings.index("LOGGING = {") > settings.index("STATIC_URL")
    assert "LOGGING" not in (snapshots[8] / "mysite" / "settings.py").read_text(encoding="utf-8")


@pytest.mark.parametrize("step", range(1, 10))
def test_the_project_passes_the_checks_after_every_step(snapshots: dict[int, Path], step: int) -> None:
    output = manage(snapshots[step], "check", "--fail-level", "WARNING", "--database", "default")
    assert "System check identified no issues" in output


def test_a_misspelt_permission_is_reported_by_a_plain_check_before_any_migration(snapshots: dict[int, Path],
                                                                                  tmp_path: Path) -> None:
    project = tmp_path / "mysite"
    shutil.copytree(snapshots[7], project)
    (project / "db.sqlite3").unlink()  # nothing migrated: the model's Meta says which permissions there are
    consumers = project / "chat" / "consumers.py"
    consumers.write_text(consumers.read_text().replace('perm="chat.can_chat"', 'perm="chat.can_chatt"'))
    result = run([sys.executable, "manage.py", "check"], project, check=False)
    assert result.returncode == 1
    assert ("chat.send_message: (hypergen_ws.E046) requires the permission 'chat.can_chatt', which does not exist"
            in result.stderr)
    assert "HINT: Did you mean perm='chat.can_chat'?" in result.stderr


# -- in the browser -------------------------------------------------------------------------------------------


def test_step_6_everyone_chats(runserver: Callable[[int], RunServer], page: Any, browser: Any,
                               page_errors: list[str]) -> None:
    server = runserver(6)
    page.goto(server.url + "/")
    expect(page.locator("#state")).to_have_text("open")
    other = browser.new_context()
    try:
        second = other.new_page()
        second.goto(server.url + "/")
        expect(second.locator("#state")).to_have_text("open")
        send(page, "Hello <everyone>")
        for tab in (page, second):
            expect(tab.locator("#messages li")).to_have_text(["Hello <everyone>"])
        expect(page.locator("#text")).to_have_value("")
        expect(page.locator("#error")).to_have_text("")
    finally:
        other.close()
    assert page_errors == []


def test_step_7_an_anonymous_visitor_is_refused_and_told_why(runserver: Callable[[int], RunServer], page: Any,
                                                             page_errors: list[str]) -> None:
    server = runserver(7)
    page.goto(server.url + "/")
    expect(page.locator("#state")).to_have_text("refused: not logged in")
    send(page, "Let me in")
    expect(page.locator("#error")).to_have_text(re.compile(
        rf"^Not sent: the server refused the websocket to {SOCKET}: not logged in \(close 4401\); "
        r"call \d+ did not run$"))
    assert page_errors == [], "nothing is uncaught"
    assert ("Refused a websocket to chat.send_message (close 4401, not logged in) for an anonymous user: it "
            "requires chat.can_chat.") in server.log(), "runserver's console says why, with no LOGGING setting"


def test_step_8_a_user_with_the_permission_chats(runserver: Callable[[int], RunServer], page: Any,
                                                 page_errors: list[str]) -> None:
    server = runserver(8)
    login(page, server, "ann")
    expect(page.locator("#state")).to_have_text("open")
    send(page, "ann was here")
    expect(page.locator("#messages li")).to_have_text(["ann was here"])
    assert page_errors == []


def test_step_8_a_user_without_the_permission_is_refused(runserver: Callable[[int], RunServer], page: Any,
                                                         page_errors: list[str]) -> None:
    server = runserver(8)
    login(page, server, "bob")
    expect(page.locator("#state")).to_have_text("refused: permission denied")
    send(page, "bob was here")
    expect(page.locator("#error")).to_have_text(re.compile(r"permission denied \(close 4403\); call \d+ did not run$"))
    assert page_errors == []


def test_step_9_the_console_shows_refusals_in_the_logging_format(runserver: Callable[[int], RunServer],
                                                                 page: Any) -> None:
    server = runserver(9)
    login(page, server, "bob")
    expect(page.locator("#state")).to_have_text("refused: permission denied")
    pattern = (r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING hypergen_ws: Refused a websocket to chat.send_message "
               r"\(close 4403, permission denied\) for user 'bob' \(id \d+\): it requires chat\.can_chat\.$")
    assert re.search(pattern, server.log(), re.M), server.log()[-2000:]


def test_step_8_a_huge_post_to_the_login_page_is_refused_before_it_is_read(runserver: Callable[[int], RunServer]
                                                                          ) -> None:
    server = runserver(8)  # asgi.py wraps all of HTTP in BodyLimit: MAX_BODY_SIZE, Django's 2.5 MiB
    for chunked in (False, True):
        answer, sent = post_huge_body(server.port, 400 * MiB, chunked=chunked, path="/accounts/login/")
        assert answer.startswith(b"HTTP/1.1 413") and b"over the limit of 2621440 bytes" in answer, answer
        assert sent < 100 * MiB, f"runserver read {sent // MiB} MiB of a body it had to refuse"
