"""Recovery with real parts: two server processes sharing a real redis-server, ``kill -9``, a Redis restart,
presence across processes, and a browser page catching up after its server was down.

The servers serve ``tests.e2e.recovery_app`` (the consumers of ``tests.recovery_consumers``); this process
publishes through the same Redis with ``agroup_send``/``group_send``, like any other publisher.
"""
from __future__ import annotations

import asyncio
import time

import pytest

from hypergen_ws import aget_groups, aget_presence, agroup_send, group_send
from hypergen_ws.features.history import get_history
from tests import recovery_consumers as rc
from tests.e2e.recovering_client import RecoveringClient, wait_for
from tests.recutil import use_layer
from tests.support.browser import expect

pytestmark = [pytest.mark.timeout(180), pytest.mark.django_db(transaction=True)]

APP = "tests.e2e.recovery_app:application"
SETTINGS = "tests.e2e.recovery_settings"


def start_servers(factory, redis_url: str, kinds=("daphne", "uvicorn")):
    return [factory(APP, server=kind, redis_url=redis_url, settings=SETTINGS, migrate=True) for kind in kinds]


@pytest.fixture
def publisher(settings, redis_server):
    """This process publishes through the servers' Redis."""
    use_layer("redis", settings, redis_server.url)
    settings.HYPERGEN_WS = {"PUBLISH_TIMEOUT": 3.0}


async def publish_retrying(group: str, data, attempts: int = 20) -> int:
    """Publish; after a Redis restart the first try may meet a pooled connection the restart closed."""
    for attempt in range(attempts):
        try:
            return await agroup_send(group, data)
        except Exception:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.25)
    raise AssertionError("unreachable")


async def test_kill_9_one_server_its_clients_fail_over_and_get_every_message_once_in_order(
        redis_server, live_server_factory, publisher):
    a, b = start_servers(live_server_factory, redis_server.url)
    path = rc.rec_feed.reverse(room="failover")
    group = rc.rec_feed.group_name(room="failover")
    on_a = [RecoveringClient([a.ws_url, b.ws_url], path).start() for _ in range(6)]
    on_b = [RecoveringClient([b.ws_url, a.ws_url], path).start() for _ in range(3)]
    clients = on_a + on_b
    try:
        await wait_for(lambda: all(c.synced for c in clients), 20, "every client connected")
        total = 300
        for i in range(total):
            await agroup_send(group, i)
            if i == 100:
                a.kill()  # SIGKILL during the stream: no close frames, no cleanup
            await asyncio.sleep(0.01)
        await wait_for(lambda: all(len(c.messages) >= total for c in clients), 30,
                       "every client got every message")
        await asyncio.sleep(0.3)  # nothing more may arrive
        for n, client in enumerate(clients):
            assert client.messages == list(range(total)), f"client {n}: {len(client.messages)} messages"
            assert client.resyncs == [] and client.duplicates == 0, f"client {n}"
        assert all(len(c.connects) >= 2 and b.ws_url in c.connects[-1] for c in on_a), "failed over to b"
        assert all(len(c.connects) == 1 for c in on_b)
    finally:
        await asyncio.gather(*(c.stop() for c in clients))


async def test_redis_restart_gives_resync_publishers_error_then_publishing_resumes(
        redis_server, live_server_factory, publisher):
    servers = start_servers(live_server_factory, redis_server.url)
    pids = [s.process.pid for s in servers]
    path = rc.rec_feed.reverse(room="restart")
    group = rc.rec_feed.group_name(room="restart")
    clients = [RecoveringClient([s.ws_url], path).start() for s in servers for _ in range(3)]
    try:
        await wait_for(lambda: all(c.synced for c in clients), 20, "every client connected")
        for i in range(20):
            await agroup_send(group, i)
        await wait_for(lambda: all(len(c.messages) == 20 for c in clients), 10, "the first 20")

        redis_server.stop()  # redis-server runs without persistence: every key is gone after the restart
        with pytest.raises((ConnectionError, TimeoutError), match="Redis"):  # LayerUnavailable, or the timeout
            await agroup_send(group, "while down")  # an error, not a hang (pytest-timeout would catch that)

        redis_server.start()
        await publish_retrying(group, "first after restart")
        await wait_for(lambda: all(c.resyncs for c in clients), 20, "every client got a resync")
        for i in range(100, 120):
            await publish_retrying(group, i)
        await wait_for(lambda: all(c.messages[-1:] == [119] for c in clients), 20, lambda: f"publishing resumed: {clients}")
        for n, client in enumerate(clients):
            tail = [m for m in client.messages if isinstance(m, int) and m >= 100]
            assert tail == list(range(100, 120)), f"client {n}: {tail}"
            assert client.messages[:20] == list(range(20)), f"client {n}"
            assert client.resyncs[0]["reason"] in ("history_lost", "epoch_changed"), client.resyncs
        assert [s.process.pid for s in servers] == pids and all(s.running for s in servers), "no server restarted"
    finally:
        await asyncio.gather(*(c.stop() for c in clients))


async def test_presence_and_groups_across_servers_and_a_killed_server_leaves_within_the_process_ttl(
        redis_server, live_server_factory, publisher):
    a, b = start_servers(live_server_factory, redis_server.url)
    path = rc.rec_room.reverse(room="hall")
    group = rc.rec_room.group_name(room="hall")
    watcher = RecoveringClient([b.ws_url], path).start()
    on_a: list[RecoveringClient] = []
    try:
        await wait_for(lambda: watcher.presence, 20, "the watcher got the list")
        on_a = [RecoveringClient([a.ws_url], path).start() for _ in range(2)]
        await wait_for(lambda: len([p for p in watcher.presence if p["event"] == "join"]) == 3, 20,
                       lambda: f"the watcher saw itself and the two sockets on a join: {watcher.presence}")

        async def counts():
            return (await aget_groups()).get(group), len(await aget_presence(group))

        deadline = time.monotonic() + 10
        while await counts() != (3, 3) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert await counts() == (3, 3), "both processes' sockets are listed from a third process"

        for client in on_a:
            await client.stop()
        on_a = [RecoveringClient([a.ws_url], path).start() for _ in range(2)]
        await wait_for(lambda: all(c.presence for c in on_a), 10, "reconnected to a")
        joins_before = len([p for p in watcher.presence if p["event"] == "join"])
        for client in on_a:  # no reconnects to b: they stay gone with their server
            client.servers = [a.ws_url]
        a.kill()
        await wait_for(lambda: len([p for p in watcher.presence if p["event"] == "leave"]) >= 4, 10,
                       "leave frames for the killed server's sockets")
        assert await counts() == (1, 1)
        assert joins_before == 5
    finally:
        await asyncio.gather(watcher.stop(), *(c.stop() for c in on_a))


def test_browser_page_catches_up_on_what_it_missed_while_its_server_was_down(
        redis_server, live_server_factory, page, settings):
    use_layer("redis", settings, redis_server.url)
    (server,) = start_servers(live_server_factory, redis_server.url, kinds=("daphne",))
    group = rc.rec_feed.group_name(room="browser")
    page.goto(f"{server.url}/recovery/browser/")
    expect(page.locator("#state")).to_have_text("open")
    for i in range(5):
        group_send(group, f"m{i}")
    expect(page.locator("#messages li")).to_have_count(5)

    server.kill()
    expect(page.locator("#state")).to_have_text("reconnecting")
    for i in range(5, 15):  # published while the page is offline: kept in Redis
        group_send(group, f"m{i}")
    assert [h["data"] for h in get_history(group)][-1] == "m14"
    time.sleep(1)
    server.start()  # the same port; the page reconnects with its last seq and gets the rest

    expect(page.locator("#state")).to_have_text("open", timeout=20_000)
    expect(page.locator("#messages li")).to_have_count(15, timeout=10_000)
    group_send(group, "live")
    expect(page.locator("#messages li")).to_have_count(16)
    assert page.locator("#messages li").all_inner_texts() == [f"m{i}" for i in range(15)] + ["live"]
    assert page.evaluate("document.body.dataset.resyncs") == "0"
