"""Tests of the test fixtures themselves: real redis-server, daphne/uvicorn processes, headless Chromium."""
from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support import fixtures
from tests.support.browser import expect
from tests.support.fixtures import REQUIRE_SERVICES_ENV, require_tool, services_required
from tests.support.servers import AsgiServer, RedisServer, ServerStartError, free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ECHO = "tests.support.echo_asgi:application"


def redis_command(port: int, *parts: str) -> bytes:
    """Send one RESP command over a raw socket and return the raw answer."""
    payload = f"*{len(parts)}\r\n".encode() + b"".join(f"${len(p)}\r\n{p}\r\n".encode() for p in parts)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        return sock.recv(1024)


# -- skipping and failing -------------------------------------------------------------------------------------


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


@pytest.mark.parametrize(
    ("env", "required"),
    [({}, False), ({"CI": "true"}, True), ({"CI": "false"}, False), ({REQUIRE_SERVICES_ENV: "1"}, True)],
)
def test_services_required(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], required: bool) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv(REQUIRE_SERVICES_ENV, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert services_required() is required


def test_require_tool_skips_without_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv(REQUIRE_SERVICES_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-such-tool-xyz not found: apt-get install xyz"):
        require_tool("no-such-tool-xyz", "apt-get install xyz")


def test_require_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no-such-tool-xyz not found: apt-get install xyz"):
        require_tool("no-such-tool-xyz", "apt-get install xyz")


def test_require_tool_checks_an_explicit_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv(REQUIRE_SERVICES_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=REQUIRE_SERVICES_ENV):
        require_tool("chromium", "apt-get install chromium", path=str(tmp_path / "chromium"))


# -- redis ----------------------------------------------------------------------------------------------------


def test_redis_server_answers_ping(redis_server: RedisServer, redis_url: str) -> None:
    assert redis_server.ping()
    assert redis_url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_command(redis_server.port, "PING") == b"+PONG\r\n"


def test_redis_restart_keeps_the_port_and_loses_the_data(redis_server: RedisServer) -> None:
    port = redis_server.port
    assert redis_command(port, "SET", "key", "value") == b"+OK\r\n"
    assert redis_command(port, "GET", "key") == b"$5\r\nvalue\r\n"
    redis_server.restart()
    assert redis_server.port == port
    assert redis_command(port, "GET", "key") == b"$-1\r\n"


def test_redis_kill_and_stop(redis_server: RedisServer) -> None:
    redis_server.kill()
    assert not redis_server.running
    assert not redis_server.ping()
    redis_server.start()
    assert redis_server.ping()
    redis_server.stop()
    assert not redis_server.ping()


def test_redis_server_is_usable_by_redis_py(redis_url: str) -> None:
    import redis
    client = redis.Redis.from_url(redis_url)
    try:
        client.set("a", "1")
        assert client.get("a") == b"1"
    finally:
        client.close()


def test_redis_fixed_port_in_use_names_the_log(tmp_path: Path) -> None:
    require_tool("redis-server", "apt-get install redis-server")
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(ServerStartError, match=r"Log: .*redis-1\.log"):
            RedisServer(port, log_dir=tmp_path, timeout=5)


# -- ASGI servers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_asgi_server_serves_http_and_websockets(live_server_factory: fixtures.LiveServerFactory, kind: str) -> None:
    from websockets.sync.client import connect

    server = live_server_factory(ECHO, server=kind)
    assert server.get("/")[0] == 200
    assert server.url == f"http://127.0.0.1:{server.port}"
    with connect(f"{server.ws_url}/echo/") as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"


def test_asgi_server_env_overrides(live_server_factory: fixtures.LiveServerFactory, tmp_path: Path) -> None:
    server = live_server_factory(ECHO, redis_url="redis://127.0.0.1:1/0", db=tmp_path / "shared.sqlite3",
                                 env={"HYPERGEN_WS_EXTRA": "yes"})
    assert server.get("/env/REDIS_URL")[2] == b"redis://127.0.0.1:1/0"
    assert server.get("/env/HYPERGEN_WS_DB")[2] == str(tmp_path / "shared.sqlite3").encode()
    assert server.get("/env/DJANGO_SETTINGS_MODULE")[2] == b"testproject.settings"
    assert server.get("/env/HYPERGEN_WS_EXTRA")[2] == b"yes"


def test_asgi_server_does_not_inherit_redis_url(live_server_factory: fixtures.LiveServerFactory,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:2/0")
    server = live_server_factory(ECHO)
    assert server.get("/env/REDIS_URL")[2] == b""


def test_asgi_server_kill_and_restart_on_the_same_port(live_server_factory: fixtures.LiveServerFactory) -> None:
    server = live_server_factory(ECHO)
    port = server.port
    server.kill()
    assert not server.running
    with pytest.raises(OSError):
        server.get("/", timeout=2)
    server.restart()
    assert server.port == port
    assert server.get("/")[0] == 200
    server.stop()
    assert not server.running


def test_several_servers_at_once(live_server_factory: fixtures.LiveServerFactory) -> None:
    servers = [live_server_factory(ECHO), live_server_factory(ECHO, server="uvicorn")]
    assert len({server.port for server in servers}) == 2
    assert all(server.get("/")[0] == 200 for server in servers)


def test_asgi_server_start_failure_names_the_log(tmp_path: Path) -> None:
    with pytest.raises(ServerStartError, match=r"(?s)exited during start-up.*Log: .*daphne-1\.log.*last lines"):
        AsgiServer("tests.support.no_such_module:application", log_dir=tmp_path, timeout=20)


def test_daphne_server_serves_the_test_project(daphne_server: AsgiServer) -> None:
    status, headers, _ = daphne_server.get("/")
    assert status in (200, 302), (status, headers)
    assert daphne_server.get("/static/hypergen_ws/hypergen-ws.js")[0] == 200


def test_test_project_processes_share_one_migrated_database(
    live_server_factory: fixtures.LiveServerFactory,
) -> None:
    first = live_server_factory(server="daphne")
    second = live_server_factory(server="uvicorn")
    assert first.env["HYPERGEN_WS_DB"] == second.env["HYPERGEN_WS_DB"]
    assert Path(first.env["HYPERGEN_WS_DB"]).stat().st_size > 0
    assert first.get("/accounts/login/")[0] == second.get("/accounts/login/")[0] == 200


# -- browser --------------------------------------------------------------------------------------------------


def test_browser_loads_a_data_url_and_takes_a_screenshot(page: Page, artifacts_dir: Path) -> None:
    page.goto("data:text/html,<h1 id='title'>hypergen_ws</h1><p>fixture check</p>")
    assert page.locator("#title").inner_text() == "hypergen_ws"
    expect(page.locator("p")).to_have_text("fixture check")
    path = artifacts_dir / "test_support-browser.png"
    path.unlink(missing_ok=True)
    page.screenshot(path=str(path))
    assert path.read_bytes().startswith(b"\x89PNG")


def test_browser_events_reach_callbacks(page: Page) -> None:
    seen: list[str] = []
    page.on("console", lambda message: seen.append(message.text))
    page.goto("data:text/html,<script>console.log('from the page')</script>")
    page.wait_for_function("true")
    assert "from the page" in seen


def test_browser_opens_a_websocket_to_a_live_server(
    page: Page, live_server_factory: fixtures.LiveServerFactory
) -> None:
    server = live_server_factory(ECHO)
    page.goto(f"{server.url}/")
    with page.expect_websocket() as websocket_info:
        echoed = page.evaluate(
            """url => new Promise((resolve, reject) => {
                const ws = new WebSocket(url);
                ws.onopen = () => ws.send("ping");
                ws.onmessage = event => { resolve(event.data); ws.close(); };
                ws.onerror = () => reject(new Error("websocket error"));
            })""",
            f"{server.ws_url}/echo/",
        )
    assert echoed == "ping"
    assert websocket_info.value.url == f"{server.ws_url}/echo/"


async def test_async_tests_still_work_after_the_browser_started(browser: Browser) -> None:
    """The session browser must not leave an event loop marked as running in the main thread."""
    await asyncio.sleep(0)
    assert asyncio.get_running_loop() is not None


def test_no_event_loop_is_left_running_in_sync_tests(browser: Browser) -> None:
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


def test_node_executable(node_executable: str) -> None:
    assert os.access(node_executable, os.X_OK)
