"""Fixtures of the browser end-to-end tests: the demo project served by daphne, and logged-in browser pages.

Every test gets its own daphne process on a free port (``server``) with its own freshly migrated SQLite file
(shared by every process the test starts, so sessions survive a restart). Pages are opened with ``open_page``:
each in a fresh browser context (its own cookies), logged in through the real login form when a user is given.
The tests wait on conditions (``expect``, ``wait_for_function``), never on fixed sleeps.
"""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import expect
from tests.support.fixtures import _CONSOLE, LiveServerFactory, _failed, _slug
from tests.support.servers import AsgiServer

#: Records every connection state change the client reports, before any page script runs.
STATE_RECORDER = """
window.__wsStates = [];
document.addEventListener("hypergen:websocket:state", (event) => {
  const {url, state, code} = event.detail;
  window.__wsStates.push({url, state, code});
});
"""

OpenPage = Callable[..., Any]


class SocketLog:
    """The URLs of the websockets a page opened, in order (an object, so that the browser proxy shares it)."""

    def __init__(self) -> None:
        self.urls: list[str] = []


@pytest.fixture
def server(live_server_factory: LiveServerFactory) -> AsgiServer:
    """The demo project served by one daphne process (in-memory channel layer, a fresh SQLite file)."""
    return live_server_factory(server="daphne")


def login(page: Any, server: AsgiServer, username: str, next_path: str = "/") -> None:
    """Log in through the login page (demo accounts: the password is the username) and land on ``next_path``."""
    page.goto(f"{server.url}/accounts/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", username)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{server.url}{next_path}")


@pytest.fixture
def open_page(request: pytest.FixtureRequest, browser: Any, artifacts_dir: Path) -> Iterator[OpenPage]:
    """``open_page(server, path, user=None, name=...)``: a page in a fresh context, logged in as ``user``.

    The page records every ``hypergen:websocket:state`` event in ``window.__wsStates``, and every websocket it
    opens in ``page.websocket_log.urls`` (Playwright's ``websocket`` event, failed attempts included). Console
    messages of every page are shown in the report of a failed test, and each page is saved as a screenshot then.
    """
    console: list[str] = request.node.stash.setdefault(_CONSOLE, [])
    opened: list[tuple[str, Any, Any]] = []

    def make(server: AsgiServer, path: str, user: str | None = None, name: str | None = None) -> Any:
        name = name or user or "anonymous"
        context = browser.new_context()
        context.add_init_script(STATE_RECORDER)
        page = context.new_page()
        opened.append((name, context, page))
        page.on("console", lambda message: console.append(f"[{name}] {message.type}: {message.text}"))
        page.on("pageerror", lambda error: console.append(f"[{name}] pageerror: {error}"))
        sockets = SocketLog()
        page.on("websocket", lambda ws: sockets.urls.append(ws.url))
        page.websocket_log = sockets  # type: ignore[attr-defined]
        if user:
            login(page, server, user, path)
        else:
            page.goto(f"{server.url}{path}")
        return page

    yield make
    try:
        if _failed(request.node):
            for index, (name, _context, page) in enumerate(opened):
                path = artifacts_dir / f"{_slug(request.node.nodeid)}-{index}-{name}-failed.png"
                try:
                    page.screenshot(path=str(path), full_page=True)
                    print(f"screenshot of the failed test: {path}")
                except Exception as exc:  # a page that is gone cannot be photographed
                    print(f"no screenshot of {name}: {exc}")
    finally:
        for _name, context, _page in opened:
            context.close()


def wait_open(page: Any, timeout: float = 10_000) -> None:
    """Wait until the page's state badge (``#ws-state``) shows every socket of the page open."""
    expect(page.locator("#ws-state")).to_have_attribute("data-state", "open", timeout=timeout)


def websocket_count(page: Any, fragment: str) -> int:
    """How many websockets the page has opened to URLs containing ``fragment``."""
    return sum(fragment in url for url in page.websocket_log.urls)


def db_value(server: AsgiServer, sql: str, *params: Any) -> Any:
    """The first column of the first row of ``sql`` in the server's SQLite file (read directly, not via Django)."""
    with sqlite3.connect(server.env["HYPERGEN_WS_DB"]) as connection:
        row = connection.execute(sql, params).fetchone()
    return None if row is None else row[0]


def eventually(condition: Callable[[], bool], what: Any = "", timeout: float = 5.0) -> None:
    """Wait until ``condition()`` is true (polling every 20 ms), for events that reach Python asynchronously,
    such as console messages; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {what}")
        time.sleep(0.02)
