"""The tutorial (docs/tutorial.rst), step by step, on a real project.

The tutorial holds its code inline, and :class:`~tests.support.projects.PageProject` follows it from the page, in
order: ``startproject`` and ``startapp`` make a fresh project in a temporary directory, then each step's files are
written into it (whole, or their part of the settings and of a template) and its commands run (``makemigrations``,
``migrate``, the users script, ``manage.py test``), and the project as it stands after every step passes
``manage.py check``. The steps that say something works are
driven over websockets and in Chromium, with ``runserver`` on the project as it is after step 8 and after step 9.
Step 10's tests run under ``manage.py test``.
"""
from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from tests.support.browser import expect
from tests.support import pages
from tests.support.projects import HttpUser, PageProject, RunServer, manage_in, receive, run

PAGE = "tutorial.rst"
SOCKET = "/ws/tchat/send_message/lobby/"
PASSWORDS = {name: f"{name}-tutorial" for name in ("ann", "ben", "cy")}
STEPS = list(range(1, 11))
LAST = STEPS[-1]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[PageProject, dict[int, Path]]:
    """The project of the page, and a copy of it after each step, built in the page's order."""
    root = tmp_path_factory.mktemp("tutorial")
    project = PageProject(PAGE, root)
    return project, project.build(root)


@pytest.fixture(scope="module")
def snapshots(built: tuple[PageProject, dict[int, Path]]) -> dict[int, Path]:
    return built[1]


def manage(directory: Path, *args: str, check: bool = True) -> str:
    return manage_in(directory, *args, check=check)


def user(server: RunServer, name: str | None) -> HttpUser:
    return HttpUser(server, name, PASSWORDS.get(name or ""), landing="/chat/lobby/")


@pytest.fixture(scope="module")
def server(snapshots: dict[int, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunServer]:
    """``runserver`` on the project as it is after step 8 ("Users, and run it")."""
    with RunServer(snapshots[8], "mysite.settings", tmp_path_factory.mktemp("runserver-8")) as instance:
        instance.start()
        yield instance


@pytest.fixture(scope="module")
def final_server(snapshots: dict[int, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunServer]:
    """``runserver`` on the project as it is after step 9, "Publishing from a view" (step 10 adds only tests)."""
    with RunServer(snapshots[9], "mysite.settings", tmp_path_factory.mktemp("runserver-final")) as instance:
        instance.start()
        yield instance


# -- the page and the steps -----------------------------------------------------------------------------------


def test_the_page_is_ten_steps_and_starts_the_server_in_step_8(built: tuple[PageProject, dict[int, Path]]) -> None:
    project, snapshots = built
    assert sorted(snapshots) == STEPS
    assert project.served == {8}


def test_step_9_adds_one_form_to_the_room_template(snapshots: dict[int, Path]) -> None:
    """Step 9 shows only the announce form: the rest of room.html stays step 6's."""
    name = "tchat/templates/tchat/room.html"
    before = (snapshots[6] / name).read_text(encoding="utf-8")
    after = (snapshots[9] / name).read_text(encoding="utf-8")
    form = re.search(r"\n *\{% if perms\.tchat\.can_chat %\}\n.*?\{% endif %\}\n", after, re.S)
    assert form is not None and after.replace(form.group(0), "\n") == before
    assert 'id="announce"' in form.group(0) and "{% url 'announce' room_name %}" in form.group(0)
    assert after.index('<p id="error"></p>') < form.start()


@pytest.mark.parametrize("step", STEPS)
def test_the_project_passes_the_checks_after_every_step(snapshots: dict[int, Path], step: int) -> None:
    output = manage(snapshots[step], "check", "--fail-level", "WARNING", "--database", "default")
    assert "System check identified no issues" in output


def test_without_step_2_the_checks_say_that_websockets_are_routed_nowhere(
        built: tuple[PageProject, dict[int, Path]], tmp_path: Path) -> None:
    """A reader who skips the ASGI step: asgi.py as startproject wrote it, step 3's settings."""
    project, snapshots = built
    skipped = tmp_path / "mysite"
    shutil.copytree(snapshots[1], skipped)
    for block in project.steps()[3]:
        pages.write(block, skipped)
    output = manage(skipped, "check", check=False)
    assert "hypergen_ws.E042" in output and "Websockets are routed nowhere" in output
    assert "is Django's ASGIHandler, as `startproject` wrote asgi.py" in output


def test_the_migrations_match_the_models(snapshots: dict[int, Path]) -> None:
    assert (snapshots[LAST] / "tchat" / "migrations" / "0001_initial.py").exists()
    manage(snapshots[LAST], "makemigrations", "--check", "--dry-run")


def test_the_consumer_is_listed_with_its_route_and_permission(snapshots: dict[int, Path]) -> None:
    output = manage(snapshots[5], "hypergen_ws_consumers")
    assert "tchat.send_message" in output
    assert "/ws/tchat/send_message/<slug:room_name>/" in output
    assert "tchat.can_chat" in output


def test_the_users_script_made_two_chatters_and_a_reader(snapshots: dict[int, Path]) -> None:
    script = (
        "from django.contrib.auth.models import User\n"
        "print(sorted((u.username, u.has_perm('tchat.can_chat')) for u in User.objects.all()))"
    )
    output = manage(snapshots[8], "shell", "-c", script)
    assert "[('ann', True), ('ben', True), ('cy', False)]" in output


def test_step_10_the_tutorials_own_tests_pass(snapshots: dict[int, Path]) -> None:
    """``python manage.py test tchat``: Django's runner, on hypergen_ws.testing."""
    output = manage(snapshots[10], "test", "tchat", "-v", "2")
    assert "Ran 3 tests" in output and "\nOK" in output and "FAILED" not in output
    assert "System check identified no issues" in output, "W002 is quiet under the runner, which sets DEBUG=False"
    for name in ("ChatTests.test_a_message_reaches_everyone_in_the_room", "ChatTests.test_only_chatters_may_connect",
                 "AnnounceTests.test_the_view_publishes_to_the_room"):
        assert f"(tchat.tests.{name})" in output, name


def test_the_tutorials_tests_run_under_pytest_with_the_configuration_testing_rst_shows(
        snapshots: dict[int, Path], tmp_path: Path) -> None:
    """docs/testing.rst's pyproject.toml (the settings module, asyncio_mode, the fixture loop scope) is all pytest
    needs: the tutorial's Django TestCase tests pass with every warning an error (none from pytest-asyncio)."""
    project = tmp_path / "mysite"
    shutil.copytree(snapshots[10], project)
    for block in pages.blocks("testing.rst"):
        if block.path == "pyproject.toml":
            pages.write(block, project)
    result = run([sys.executable, "-m", "pytest", "-W", "error", "-p", "no:randomly", "-p", "no:cacheprovider",
                  "tchat/tests.py"], project, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout and "warning" not in result.stdout.lower(), result.stdout


# -- step 8: runserver ----------------------------------------------------------------------------------------


def test_the_room_page_renders_the_script_and_the_consumer_url(server: RunServer) -> None:
    html = user(server, "ann").get("/chat/lobby/")
    assert '<script src="/static/hypergen_ws/hypergen-ws.js"></script>' in html
    assert f'data-url="{SOCKET}"' in html
    assert "hypergen.websocket.open(url)" in html
    assert 'id="announce"' not in html, "the announce form comes in step 9"
    status, headers, body = server.get("/static/hypergen_ws/hypergen-ws.js")
    assert status == 200 and b"hypergen" in body


def test_the_room_page_needs_a_login(server: RunServer) -> None:
    status, headers, _ = server.get("/chat/lobby/")
    assert status == 302 and headers["Location"] == "/accounts/login/?next=/chat/lobby/"


def test_people_in_a_room_chat_and_the_messages_are_stored(server: RunServer) -> None:
    ann, ben = user(server, "ann"), user(server, "ben")
    with ann.websocket(SOCKET) as ann_ws, ben.websocket(SOCKET) as ben_ws, \
            ann.websocket("/ws/tchat/send_message/vip/") as vip:
        ann_ws.send('{"args": ["Hello <b>ben</b>"], "id": 1}')
        for ws in (ann_ws, ben_ws):
            frame = receive(ws)
            assert frame["type"] == "commands"
            [[name, target, html]] = frame["commands"]
            assert (name, target) == ("hypergen.append", "messages")
            assert "<b>ann</b> Hello &lt;b&gt;ben&lt;/b&gt;</li>" in html
        assert receive(ann_ws) == {"type": "reply", "id": 1}
        # Another room: a message there is the next (and only) frame the vip socket gets.
        vip.send('{"args": ["VIP only"]}')
        assert "VIP only" in receive(vip)["commands"][0][2]
    assert "Hello &lt;b&gt;ben&lt;/b&gt;" in ben.get("/chat/lobby/")
    assert "VIP only" not in ben.get("/chat/lobby/")


@pytest.mark.parametrize(("name", "code", "log"), [
    ("cy", 4403, "Refused a websocket to tchat.send_message (close 4403, permission denied) for user 'cy'"),
    (None, 4401, "Refused a websocket to tchat.send_message (close 4401, not logged in) for an anonymous user"),
])
def test_a_socket_without_the_permission_is_refused_and_the_console_says_why(
        server: RunServer, name: str | None, code: int, log: str) -> None:
    with user(server, name).websocket(SOCKET) as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code
    assert log in server.log(), "runserver's console shows the refusal without any LOGGING setting"


def browser_login(page: Any, server: RunServer, username: str) -> None:
    page.goto(f"{server.url}/chat/lobby/")  # redirected to the login page
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORDS[username])
    page.click("button")
    page.wait_for_url(f"{server.url}/chat/lobby/")


def test_the_page_in_two_browsers(server: RunServer, page: Any, browser: Any) -> None:
    browser_login(page, server, "ann")
    expect(page.locator("#state")).to_have_text("open")
    other = browser.new_context()
    try:
        ben = other.new_page()
        browser_login(ben, server, "ben")
        expect(ben.locator("#state")).to_have_text("open")
        page.fill("#text", "Anyone here?")
        page.click("#send button")
        expect(page.locator("#text")).to_have_value("")
        for tab in (page, ben):
            expect(tab.locator("#messages li").last).to_have_text("ann Anyone here?")
        page.reload()
        expect(page.locator("#messages li").last).to_have_text("ann Anyone here?")  # stored
        page.goto(f"{server.url}/chat/vip/")
        expect(page.locator("#state")).to_have_text("open")
        expect(page.locator("#messages")).not_to_contain_text("Anyone here?")
    finally:
        other.close()


def test_the_page_of_a_user_without_the_permission(server: RunServer, page: Any) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    browser_login(page, server, "cy")
    expect(page.locator("#state")).to_have_text("permission denied")
    page.fill("#text", "Let me in")
    page.click("#send button")
    expect(page.locator("#error")).to_have_text(re.compile(
        r"^Not sent: the server refused the websocket to ws://127\.0\.0\.1:\d+/ws/tchat/send_message/lobby/: "
        r"permission denied \(close 4403\); call \d+ did not run$"))
    expect(page.locator("#text")).to_have_value("Let me in")
    assert errors == [], "the refusal is caught, nothing is uncaught"


def test_the_page_comes_back_after_a_restart(server: RunServer, page: Any) -> None:
    """Step 8: stop the server, start it again; a message typed meanwhile is sent after the reconnect."""
    browser_login(page, server, "ben")
    expect(page.locator("#state")).to_have_text("open")
    server.stop()
    expect(page.locator("#state")).to_have_text("reconnecting")
    page.fill("#text", "Typed while the server was down")
    page.click("#send button")
    server.start()
    expect(page.locator("#state")).to_have_text("open", timeout=15_000)
    expect(page.locator("#messages li").last).to_have_text("ben Typed while the server was down", timeout=10_000)
    expect(page.locator("#text")).to_have_value("")


def test_a_message_typed_during_a_long_outage_gives_up_and_stays_in_the_box(server: RunServer, page: Any) -> None:
    """Step 8: past the client's callTimeout (10 s) the call is given up, as the page says, and never sent later."""
    browser_login(page, server, "ann")
    expect(page.locator("#state")).to_have_text("open")
    server.stop()
    expect(page.locator("#state")).to_have_text("reconnecting")
    page.fill("#text", "Typed during a long outage")
    page.click("#send button")
    try:
        expect(page.locator("#error")).to_have_text(re.compile(
            r"^Not sent: no reply to call \d+ on ws://127\.0\.0\.1:\d+/ws/tchat/send_message/lobby/ within 10000 ms$"),
            timeout=30_000)
        expect(page.locator("#text")).to_have_value("Typed during a long outage")
    finally:
        server.start()
    expect(page.locator("#state")).to_have_text("open", timeout=60_000)  # the backoff grew during the outage
    page.click("#send button")  # the same text, sent again
    expect(page.locator("#text")).to_have_value("", timeout=10_000)
    expect(page.locator("#messages li", has_text="Typed during a long outage")).to_have_count(1)


# -- step 9: publishing from a view ---------------------------------------------------------------------------


def test_the_announce_view_publishes_to_the_room(final_server: RunServer) -> None:
    ann, cy = user(final_server, "ann"), user(final_server, "cy")
    assert 'action="/chat/lobby/announce/"' in ann.get("/chat/lobby/")
    assert 'id="announce"' not in cy.get("/chat/lobby/"), "the form is shown only to those who may announce"
    with ann.websocket(SOCKET) as ws:
        assert ann.status_of_post("/chat/lobby/announce/", {"text": "Pizza at <noon>"}) == 204
        [[name, target, html]] = receive(ws)["commands"]
        assert (name, target, html) == ("hypergen.append", "messages",
                                        '<li class="announcement">📣 Pizza at &lt;noon&gt;</li>')
    assert ann.status_of_post("/chat/lobby/announce/", {"text": " "}) == 400
    assert cy.status_of_post("/chat/lobby/announce/", {"text": "hi"}) == 403
    assert user(final_server, None).status_of_post("/chat/lobby/announce/", {"text": "hi"}) == 403
    assert ann.get("/chat/lobby/").count("Pizza") == 0  # announcements are not stored


def test_announcing_in_two_browsers(final_server: RunServer, page: Any, browser: Any) -> None:
    browser_login(page, final_server, "ann")
    expect(page.locator("#state")).to_have_text("open")
    other = browser.new_context()
    try:
        ben = other.new_page()
        browser_login(ben, final_server, "ben")
        expect(ben.locator("#state")).to_have_text("open")
        ben.fill("#announcement", "Meeting in five minutes")
        ben.click("#announce button")  # a plain form POST; the 204 answer leaves the page as it is
        for tab in (page, ben):
            expect(tab.locator("#messages li.announcement")).to_have_text("📣 Meeting in five minutes")
        expect(ben.locator("#state")).to_have_text("open")
    finally:
        other.close()
