"""Connections that tell the truth, with real parts: daphne and uvicorn, a TCP proxy that blackholes the path
(the network dies, nothing is closed), the Python client, the JavaScript client in Chromium, and SIGTERM.

The servers serve ``tests.e2e.recovery_app`` with a one-second heartbeat (``tests.e2e.liveness_settings``). Every
wait is bounded and waits for an event; no test measures a time.
"""
from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect as ws_connect

from hypergen_ws import group_send
from hypergen_ws.client import connect
from hypergen_ws.core import protocol
from tests import recovery_consumers as rc
from tests.e2e import liveness_settings
from tests.e2e.recovering_client import RecoveringClient, wait_for
from tests.recutil import use_layer
from tests.support.browser import expect
from tests.support.proxy import BlackholeProxy

pytestmark = [pytest.mark.timeout(180), pytest.mark.django_db(transaction=True)]

APP = "tests.e2e.recovery_app:application"
SETTINGS = "tests.e2e.liveness_settings"
SERVERS = ["daphne", "uvicorn"]
LIVENESS = liveness_settings.HYPERGEN_WS


def serve(factory, kind: str, redis_url: str | None = None):
    return factory(APP, server=kind, redis_url=redis_url, settings=SETTINGS, migrate=True)


async def frames_until(ws, predicate, bound: float, answer_pings: bool = True) -> list[dict]:
    """Frames of a ``websockets`` client until one satisfies ``predicate`` (pings answered); fails after ``bound``
    seconds."""
    seen: list[dict] = []
    async with asyncio.timeout(bound):
        while True:
            frame = json.loads(await ws.recv())
            if answer_pings and frame.get("type") == "ping":
                await ws.send(protocol.PONG)
                continue
            seen.append(frame)
            if predicate(frame):
                return seen


class Peer:
    """A ``websockets`` client read all the time: it answers every ping (counted in ``pongs``) and keeps the other
    frames, so it stays alive however long a test waits for something else."""

    def __init__(self, ws) -> None:
        self.ws, self.frames, self.pongs = ws, [], 0
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for text in self.ws:
            frame = json.loads(text)
            if frame.get("type") == "ping":
                await self.ws.send(protocol.PONG)
                self.pongs += 1
            else:
                self.frames.append(frame)

    def first(self, predicate) -> dict | None:
        return next((f for f in self.frames if predicate(f)), None)

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def presence(event: str):
    return lambda f: f.get("event") == event


@pytest.mark.parametrize("kind", SERVERS)
async def test_the_server_closes_a_silent_socket_and_presence_drops_the_member_across_processes(
        redis_server, live_server_factory, kind):
    """The member is on one server, behind the proxy, and answers every ping until its network dies; the watcher
    is on the other server. The member's leave reaches the watcher within PING_INTERVAL + PING_TIMEOUT + 1 s of
    the blackhole (docs/protocol.rst, "Heartbeat")."""
    member_side = serve(live_server_factory, kind, redis_server.url)
    watcher_side = serve(live_server_factory, "uvicorn" if kind == "daphne" else "daphne", redis_server.url)
    path = rc.rec_room.reverse(room="truth")
    bound = LIVENESS["PING_INTERVAL"] + LIVENESS["PING_TIMEOUT"] + 1.0
    with BlackholeProxy(member_side.port) as proxy:
        async with ws_connect(watcher_side.ws_url + path, ping_interval=None) as w, \
                ws_connect(proxy.ws_url + path, ping_interval=None, close_timeout=0.1) as m:
            watcher, member = Peer(w), Peer(m)
            try:
                await wait_for(lambda: member.first(presence("list")) and len(
                    [f for f in watcher.frames if presence("join")(f)]) >= 2, 10, lambda: watcher.frames)
                joined = [f for f in watcher.frames if presence("join")(f)][-1]  # the member (the first: itself)
                assert joined["id"] in {u["id"] for u in member.first(presence("list"))["users"]}
                pongs = member.pongs
                await wait_for(lambda: member.pongs >= pongs + 2, 10, "the member answering its pings")
                proxy.blackhole()  # the member's network dies: no close, no FIN, nothing
                await wait_for(lambda: watcher.first(presence("leave")), bound, lambda: watcher.frames)
                assert watcher.first(presence("leave"))["id"] == joined["id"], watcher.frames
                assert watcher.pongs >= 2 and not watcher.task.done(), "the watcher stayed connected all along"
            finally:
                await asyncio.gather(watcher.stop(), member.stop())
    log = member_side.log_path.read_text()
    assert "it answered no ping" in log, log[-2000:]  # the server closed it (4410): docs/protocol.rst


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_frames_json_consumer_gets_no_pings(live_server_factory, kind):
    server = serve(live_server_factory, kind)
    async with ws_connect(server.ws_url + rc.rec_raw.reverse(room="raw"), ping_interval=None) as ws:
        with pytest.raises(TimeoutError):  # 3 s of silence: three PING_INTERVALs, and not a frame
            async with asyncio.timeout(3):
                frame = await ws.recv()
                raise AssertionError(f"a raw consumer got {frame!r}")
        await ws.send(json.dumps({"type": "pong"}))  # a payload like any other
        assert json.loads(await ws.recv()) == {"type": "commands", "commands": [["raw", {"type": "pong"}]]}


@pytest.mark.parametrize("kind", SERVERS)
async def test_the_python_client_gives_a_silent_socket_up_and_recovers_when_the_path_comes_back(
        live_server_factory, kind):
    server = serve(live_server_factory, kind)
    path = rc.rec_feed.reverse(room="path")
    with BlackholeProxy(server.port) as proxy:
        async with connect(proxy.ws_url + path, ping_interval=1.0, ping_timeout=1.0, open_timeout=5) as client, \
                connect(server.ws_url + path, ping_interval=1.0, ping_timeout=1.0) as publisher:
            received: list = []

            async def read() -> None:
                async for frame in client.frames():
                    if frame.get("type") == "commands":
                        received.extend(c[1] for c in frame["commands"])

            reader = asyncio.create_task(read())
            try:
                await publisher.call("before")
                await wait_for(lambda: received == ["before"], 10, lambda: received)
                proxy.blackhole()
                for n in range(3):  # published while the client's path is dead: kept in the history
                    await publisher.call(f"during {n}")
                await wait_for(lambda: client.state == "reconnecting", 15, lambda: client.state)
                proxy.restore()
                await wait_for(lambda: len(received) == 4, 30, lambda: (client.state, received))
                await publisher.call("after")
                await wait_for(lambda: len(received) == 5, 10, lambda: received)
                assert received == ["before", "during 0", "during 1", "during 2", "after"]
            finally:
                reader.cancel()


@pytest.mark.parametrize("kind", SERVERS)
def test_the_js_client_in_chromium_reconnects_when_the_path_comes_back(
        redis_server, live_server_factory, page, settings, kind):
    use_layer("redis", settings, redis_server.url)  # this process publishes through the server's Redis
    server = serve(live_server_factory, kind, redis_server.url)
    group = rc.rec_feed.group_name(room="browser")
    with BlackholeProxy(server.port) as proxy:
        page.goto(f"{proxy.url}/recovery/browser/")  # the page and its socket go through the proxy
        expect(page.locator("#state")).to_have_text("open")
        for text in ("m0", "m1"):
            group_send(group, text)
        expect(page.locator("#messages li")).to_have_count(2)
        proxy.blackhole()
        expect(page.locator("#state")).to_have_text("reconnecting", timeout=15_000)  # the silence was noticed
        for text in ("m2", "m3", "m4"):  # published while the page's path is dead: kept in the history
            group_send(group, text)
        proxy.restore()
        expect(page.locator("#state")).to_have_text("open", timeout=30_000)
        expect(page.locator("#messages li")).to_have_count(5, timeout=10_000)
        assert page.locator("#messages li").all_inner_texts() == ["m0", "m1", "m2", "m3", "m4"]
        assert page.evaluate("document.body.dataset.resyncs") == "0"


@pytest.mark.parametrize("kind", SERVERS)
async def test_sigterm_tells_every_client_when_to_reconnect_and_closes_with_1012(live_server_factory, kind):
    server = serve(live_server_factory, kind)
    clients = [RecoveringClient([server.ws_url], rc.rec_feed.reverse(room="deploy")).start() for _ in range(8)]
    try:
        await wait_for(lambda: all(c.synced for c in clients), 20, "every client connected")
        await asyncio.to_thread(server.stop)  # SIGTERM, and wait for the process to end
        await wait_for(lambda: all(c.closes for c in clients), 10, lambda: [c.closes for c in clients])
        assert all(c.closes[0] == protocol.CLOSE_SERVICE_RESTART for c in clients), [c.closes for c in clients]
        hints = [c.hints[0] for c in clients if c.hints]
        assert len(hints) == len(clients), "every client was told when to reconnect"
        assert all(0 <= h <= 2.0 for h in hints) and len(set(hints)) > 1, hints
        log = server.log_path.read_text()
        assert "told 8 sockets to reconnect" in log, log[-2000:]
    finally:
        await asyncio.gather(*(c.stop() for c in clients))
