"""The dashboard's consumer (hypergen_ws.dashboard) and page (hypergen_ws.views.dashboard_view)."""
from __future__ import annotations

import asyncio
import re

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from django.contrib.auth.models import AnonymousUser, User
from django.test import AsyncClient

from hypergen_ws import agroup_send
from hypergen_ws.dashboard import COMMAND, _tickers, dashboard
from hypergen_ws.stats import counters as stats
from hypergen_ws.testing import ConsumerCommunicator
from tests import feature_consumers as fc
from tests.recutil import next_close, opened

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.http_urls")]

application = URLRouter([dashboard.urlpattern()])
PAGE_URL = "/hypergen_ws/dashboard/"


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.HYPERGEN_WS = {"DASHBOARD_INTERVAL": 0.05}
    stats.reset()


async def user(name: str, *, staff: bool) -> User:
    return await sync_to_async(User.objects.create_user)(name, password=name, is_staff=staff)


async def open_dashboard(who: User) -> ConsumerCommunicator:
    return await opened(dashboard, application=application, user=who)


async def update(comm: ConsumerCommunicator) -> dict:
    frame = await comm.receive(3)
    assert frame["type"] == "commands"
    ((name, data),) = frame["commands"]
    assert name == COMMAND
    return data


def test_route_and_label():
    assert dashboard.label == "hypergen_ws.dashboard"
    assert dashboard.reverse() == "/ws/hypergen_ws/dashboard/"
    assert not dashboard.receive


async def test_only_staff_may_connect():
    async with ConsumerCommunicator(dashboard, application=application, user=AnonymousUser()) as anonymous:
        assert anonymous.accepted and await next_close(anonymous) == (4401, "")
    plain = await user("d_plain", staff=False)
    async with ConsumerCommunicator(dashboard, application=application, user=plain) as refused:
        assert refused.accepted and await next_close(refused) == (4403, "")
    assert stats.snapshot()["events"]["refusals"]["hypergen_ws.dashboard"] == {"4401": 1, "4403": 1}


async def test_first_frame_is_the_state_then_updates_follow_the_traffic():
    comm = await open_dashboard(await user("d_staff", staff=True))
    first = await update(comm)
    assert first["scope"] == "process" and len(first["processes"]) == 1
    assert first["consumers"]["hypergen_ws.dashboard"]["connections"] == 1
    sockets = [await opened(fc.raw_json, application=fc.application, room="dash") for _ in range(2)]
    await agroup_send(fc.raw_json.group_name(room="dash"), "hi")
    for socket in sockets:
        await socket.receive()
    for _ in range(50):  # updates come every 0.05 s; wait for one that shows the new sockets
        data = await update(comm)
        if data["groups"].get(fc.raw_json.group_name(room="dash"), {}).get("messages_out") == 2:
            break
    else:
        raise AssertionError("no update showed the two sockets and their frame")
    assert data["consumers"]["tests.raw_json"]["connections"] == 2
    assert data["totals"]["connections"] == 3
    assert data["events"]["publishes"]["tests.raw_json"] == {"": 1}
    for socket in sockets:
        await socket.disconnect()
    await comm.disconnect()


async def test_the_ticker_stops_with_the_last_dashboard():
    staff = await user("d_staff2", staff=True)
    a = await open_dashboard(staff)
    b = await open_dashboard(staff)
    await update(a)
    await update(b)
    ticker = _tickers[asyncio.get_running_loop()]
    assert ticker.open == 2 and ticker.task is not None
    await a.disconnect()
    await update(b)  # b still gets updates
    await b.disconnect()
    for _ in range(100):
        if ticker.task is None:
            break
        await asyncio.sleep(0.01)
    assert ticker.open == 0 and ticker.task is None


async def test_page_is_for_staff_only_and_loads_nothing_from_elsewhere(settings):
    settings.LOGIN_URL = "/accounts/login/"
    client = AsyncClient()
    anonymous = await client.get(PAGE_URL)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/?next=")
    await client.aforce_login(await user("d_plain2", staff=False))
    assert (await client.get(PAGE_URL)).status_code == 403
    await client.aforce_login(await user("d_staff3", staff=True))
    page = await client.get(PAGE_URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-ws-url="/ws/hypergen_ws/dashboard/"' in html
    assert "hypergen.commands.register" in html and "function createClient" in html, "the client is inline"
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|@import|\burl\(", html), "nothing from elsewhere"
