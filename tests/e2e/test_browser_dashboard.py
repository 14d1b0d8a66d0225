"""The live dashboard in a real browser: two server processes on a real redis-server, test clients connecting,
publishing and being refused; the page's numbers follow. A screenshot is kept in ``artifacts/dashboard.png``."""
from __future__ import annotations

import json
import sqlite3
import urllib.request
from contextlib import ExitStack
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.e2e.conftest import OpenPage
from tests.e2e.monitoring_settings import MONITORING_KEY
from tests.support.browser import expect
from tests.support.servers import AsgiServer

pytestmark = pytest.mark.timeout(180)

DASHBOARD = "/hypergen_ws/dashboard/"
LISTEN = "/ws/notifications/listen/"
SETTINGS = {"DJANGO_SETTINGS_MODULE": "tests.e2e.monitoring_settings"}


def tile(page: Any, name: str) -> float:
    return float(page.locator(f"#tile-{name}").get_attribute("data-value") or 0)


def wait_tile(page: Any, name: str, test: str) -> None:
    """Wait until the tile's number passes ``test`` (a JavaScript expression of ``n``)."""
    page.wait_for_function(f"() => {{ const n = Number(document.getElementById('tile-{name}').dataset.value); "
                           f"return {test}; }}", timeout=15_000)


def publish(server: AsgiServer, data: Any) -> None:
    body = json.dumps({"consumer": "notifications.listen", "data": data}).encode()
    request = urllib.request.Request(f"{server.url}/hypergen_ws/publish/", data=body, method="POST", headers={
        "Authorization": f"Bearer {MONITORING_KEY}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_the_dashboard_follows_connects_publishes_and_refusals(
        redis_server: Any, live_server_factory: Any, open_page: OpenPage, artifacts_dir: Any) -> None:
    a = live_server_factory(server="daphne", redis_url=redis_server.url, env=SETTINGS)
    b = live_server_factory(server="uvicorn", redis_url=redis_server.url, env=SETTINGS)
    with sqlite3.connect(a.env["HYPERGEN_WS_DB"]) as db:
        db.execute("UPDATE auth_user SET is_staff = 1 WHERE username = 'alice'")

    page = open_page(a, DASHBOARD, "alice")
    expect(page.locator("#ws-state")).to_have_attribute("data-state", "open", timeout=10_000)
    expect(page.locator("#scope")).to_have_text("every live process (Redis)")
    wait_tile(page, "connections", "n === 1")  # the dashboard's own socket
    wait_tile(page, "processes", "n === 1")  # the other process has no sockets yet, so no heartbeat
    messages_before = tile(page, "messages-out")

    origin = {"origin": b.url}
    with ExitStack() as stack:
        clients = [stack.enter_context(connect(b.ws_url + LISTEN, **origin)) for _ in range(3)]
        wait_tile(page, "processes", "n === 2")
        wait_tile(page, "connections", "n === 4")
        expect(page.locator("#consumers")).to_contain_text("notifications.listen")
        expect(page.locator("#groups")).to_contain_text("hgws.notifications.listen")
        expect(page.locator("#processes tbody tr")).to_have_count(2)

        for i in range(30):
            publish(b, {"n": i})
        for client in clients:
            for _ in range(30):
                client.recv(timeout=10)
        wait_tile(page, "messages-out", f"n >= {messages_before + 90}")
        page.wait_for_function("() => Number(document.getElementById('chart-peak').textContent) > 0",
                               timeout=15_000)
        assert page.locator("#line-out").get_attribute("points"), "the chart has a line"

        assert tile(page, "refusals") == 0
        with pytest.raises(ConnectionClosed) as refused:  # chat needs a login: accepted, then closed with 4401
            with connect(b.ws_url + "/ws/chat/send_message/lobby/", **origin) as anonymous:
                anonymous.recv(timeout=10)
        assert refused.value.rcvd is not None and refused.value.rcvd.code == 4401
        wait_tile(page, "refusals", "n === 1")
        expect(page.locator("#events")).to_contain_text("chat.send_message")
        expect(page.locator("#events")).to_contain_text("4401")

        path = artifacts_dir / "dashboard.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000
    wait_tile(page, "connections", "n === 1")
