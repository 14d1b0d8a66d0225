"""Process-level fan-out: the outbox, the hub, and one layer message per process on every layer."""
from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer, channel_layers, get_channel_layer

from hypergen_ws import agroup_send
from hypergen_ws.fanout import FRAME_TYPE, HUB_MARK, Hub, get_hub, hub_channel, prepare_layer
from hypergen_ws.outbox import Outbox
from hypergen_ws.testing import ConsumerCommunicator
from tests import sample_consumers as sc
from tests.wsutil import application

LAYERS = ["memory", "redis", "pubsub"]

pytestmark = pytest.mark.django_db(transaction=True)


# ---- the outbox ------------------------------------------------------------------------------------------------
class Socket:
    """An ASGI ``send`` that records frames; ``block()`` makes the next sends wait like a full write buffer."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.error: Exception | None = None

    def block(self) -> None:
        self.gate = asyncio.Event()

    def unblock(self) -> None:
        assert self.gate is not None
        self.gate.set()
        self.gate = None

    async def send(self, message: dict[str, Any]) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error
        if self.gate is not None:
            await self.gate.wait()
        self.sent.append(message.get("text", message["type"]))


def started_outbox(socket: Socket, limit: int = 1000, overflows: list[int] | None = None) -> Outbox:
    outbox = Outbox(socket.send, limit, lambda: overflows.append(1) if overflows is not None else None)
    outbox.start()
    return outbox


async def test_outbox_writes_to_an_idle_socket_at_once_without_a_task():
    socket = Socket()
    outbox = started_outbox(socket)
    tasks_before = len(asyncio.all_tasks())
    for i in range(100):
        outbox.push_text(str(i))
        assert socket.sent[-1] == str(i), "an idle socket gets the frame inside push()"
    assert outbox._task is None and len(asyncio.all_tasks()) == tasks_before
    assert len(outbox) == 0


async def test_outbox_keeps_order_behind_a_blocked_send():
    socket = Socket()
    outbox = started_outbox(socket)
    outbox.push_text("0")
    socket.block()
    for i in range(1, 50):
        outbox.push_text(str(i))
    assert socket.sent == ["0"] and len(outbox) == 48, "frame 1 is in the blocked send, 2..49 wait"
    socket.unblock()
    await asyncio.sleep(0.01)
    assert socket.sent == [str(i) for i in range(50)]
    outbox.push_text("50")
    assert socket.sent[-1] == "50", "after draining the socket is idle again"


async def test_outbox_frames_before_start_wait_and_are_not_overflow():
    socket = Socket()
    overflows: list[int] = []
    outbox = Outbox(socket.send, 3, lambda: overflows.append(1))
    outbox.push_text("b")
    outbox.push_first({"type": "websocket.send", "text": "a"})
    for i in range(10):
        outbox.push_text(f"c{i}")
    assert socket.sent == []
    outbox.start()
    await asyncio.sleep(0.01)
    assert socket.sent == ["a", "b", *(f"c{i}" for i in range(10))]
    assert not overflows


async def test_outbox_overflows_only_when_limit_frames_wait_behind_a_blocked_send():
    socket = Socket()
    overflows: list[int] = []
    outbox = started_outbox(socket, limit=5, overflows=overflows)
    for i in range(1000):  # a burst to an idle, reading socket is no overflow
        outbox.push_text(str(i))
    assert not overflows and len(socket.sent) == 1000
    socket.block()
    outbox.push_text("blocked")
    for i in range(5):
        outbox.push_text(f"w{i}")
    assert not overflows and len(outbox) == 5
    outbox.push_text("one too many")
    assert overflows == [1] and outbox.overflowed and len(outbox) == 0
    calls = socket.calls
    for i in range(10_000):  # nothing more is kept or sent
        outbox.push_text(str(i))
    assert len(outbox) == 0 and socket.calls == calls and overflows == [1]
    await outbox.flush_and_stop()


async def test_outbox_pause_holds_frames_and_resume_sends_them_in_order():
    socket = Socket()
    overflows: list[int] = []
    outbox = started_outbox(socket, limit=3, overflows=overflows)
    outbox.push_text("0")
    outbox.pause()
    outbox.push_text("1")
    outbox.push_text("2")
    assert socket.sent == ["0"] and len(outbox) == 2
    outbox.resume()
    await asyncio.sleep(0.01)
    assert socket.sent == ["0", "1", "2"]
    outbox.pause()
    for i in range(4):
        outbox.push_text(str(i))
    assert overflows == [1], "paused frames count towards the limit"


async def test_outbox_send_failure_closes_it_quietly():
    socket = Socket()
    outbox = started_outbox(socket)
    socket.error = OSError("client went away")
    outbox.push_text("x")
    assert outbox.closed
    socket.error = None
    outbox.push_text("y")
    assert socket.sent == []


async def test_outbox_close_ends_sending_and_flush_and_stop_cancels_a_blocked_send():
    socket = Socket()
    outbox = started_outbox(socket)
    outbox.push({"type": "websocket.close", "code": 1000})
    outbox.push_text("after close")
    assert socket.sent == ["websocket.close"] and outbox.closed

    socket = Socket()
    outbox = started_outbox(socket)
    socket.block()
    outbox.push_text("stuck")
    outbox.push_text("waiting")
    await asyncio.sleep(0.01)
    await outbox.flush_and_stop()
    assert outbox._task is None and len(outbox) == 0 and socket.sent == []


# ---- the hub ---------------------------------------------------------------------------------------------------
class CountingLayer(InMemoryChannelLayer):
    """An in-memory layer whose subscription calls take a while and are counted."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: Counter[str] = Counter()
        self.fail = False

    async def new_channel(self, prefix: str = "specific.") -> str:
        self.calls["new_channel"] += 1
        await asyncio.sleep(0.02)
        return await super().new_channel(prefix)

    async def group_add(self, group: str, channel: str) -> None:
        self.calls["group_add"] += 1
        await asyncio.sleep(0.02)
        if self.fail:
            raise ConnectionError("the layer is down")
        await super().group_add(group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        self.calls["group_discard"] += 1
        await super().group_discard(group, channel)


class Member:
    label = "tests.member"

    def __init__(self) -> None:
        self.socket = Socket()
        self.outbox = started_outbox(self.socket)
        self.events: list[dict[str, Any]] = []

    def enqueue_layer_message(self, message: dict[str, Any]) -> None:
        self.events.append(message)


async def test_concurrent_joins_subscribe_the_process_once_and_the_last_leave_unsubscribes():
    layer = CountingLayer()
    hub = Hub(asyncio.get_running_loop(), layer)
    members = [Member() for _ in range(50)]
    await asyncio.gather(*(hub.join("g", m) for m in members))
    assert layer.calls == {"new_channel": 1, "group_add": 1}
    assert hub.members["g"] == set(members) and len(layer.groups["g"]) == 1
    (channel,) = layer.groups["g"]
    assert HUB_MARK in channel
    await layer.group_send("g", {"type": "x.y"})
    await asyncio.sleep(0.01)
    assert all(m.events == [{"type": "x.y"}] for m in members)

    await asyncio.gather(*(hub.leave("g", m) for m in members[:-1]))
    assert layer.calls["group_discard"] == 0 and hub.members["g"] == {members[-1]}
    await hub.leave("g", members[-1])
    await hub.leave("g", members[-1])  # leaving twice is harmless
    assert layer.calls["group_discard"] == 1 and "g" not in hub.members and "g" not in hub._readers
    assert "g" not in layer.groups or not layer.groups["g"]


async def test_members_that_leave_while_the_subscription_is_made_are_accounted_for():
    layer = CountingLayer()
    hub = Hub(asyncio.get_running_loop(), layer)
    first, second = Member(), Member()
    joining = asyncio.gather(hub.join("g", first), hub.join("g", second))
    await asyncio.sleep(0.005)  # the subscription is under way
    await hub.leave("g", first)
    await hub.leave("g", second)
    await joining
    assert "g" not in hub.members and "g" not in hub._readers
    assert layer.calls["group_discard"] == 1, "the process unsubscribed once the subscription was done"
    # ... and a join after that subscribes again.
    await hub.join("g", first)
    assert layer.calls["group_add"] == 2 and hub.members["g"] == {first}


async def test_a_failed_subscription_fails_every_waiting_join_and_the_next_join_retries():
    layer = CountingLayer()
    layer.fail = True
    hub = Hub(asyncio.get_running_loop(), layer)
    results = await asyncio.gather(*(hub.join("g", Member()) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results), results
    assert "g" not in hub.members and "g" not in hub._readers
    layer.fail = False
    member = Member()
    await hub.join("g", member)
    assert hub.members["g"] == {member} and "g" in hub._readers


async def test_deliver_text_writes_one_shared_message_to_every_member():
    hub = Hub(asyncio.get_running_loop(), None)
    members = [Member() for _ in range(10)]
    for m in members:
        await hub.join("g", m)
    assert hub.deliver_text("g", '{"type":"message","data":1}') == 10
    assert all(m.socket.sent == ['{"type":"message","data":1}'] for m in members)
    assert hub.deliver_text("nobody", "x") == 0


async def test_hub_channels_get_group_capacity_and_consumer_channels_keep_the_layer_default(settings):
    settings.HYPERGEN_WS = {"GROUP_CAPACITY": 12345}
    layer = InMemoryChannelLayer(capacity=7)
    prepare_layer(layer)
    prepare_layer(layer)  # idempotent
    assert len(layer.channel_capacity) == 1
    hub = await hub_channel(layer)
    assert layer.get_capacity(hub) == 12345
    assert layer.get_capacity(await layer.new_channel()) == 7
    # Every layer the process creates is prepared (apps.ready installs the hook).
    channel_layers.backends.clear()
    assert get_channel_layer().get_capacity(hub) == 12345


# ---- over real layers ------------------------------------------------------------------------------------------
@pytest.fixture(params=LAYERS)
def layer_kind(request: pytest.FixtureRequest, settings: Any) -> str:
    kind = request.param
    if kind == "memory":
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    else:
        url = request.getfixturevalue("redis_url")
        backend = ("channels_redis.core.RedisChannelLayer" if kind == "redis"
                   else "channels_redis.pubsub.RedisPubSubChannelLayer")
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": backend, "CONFIG": {
            "hosts": [{"address": url, "socket_timeout": None}]}}}
    channel_layers.backends.clear()
    return kind


def instrument(layer: Any) -> Counter[str]:
    """Count what the layer carries: messages received on hub channels, on consumers' channels, group sends.

    The in-memory layer's ``group_send`` calls ``send`` per member channel, and hypergen_ws waits on its queues
    without ``receive()``: there, what reaches a channel is counted at ``send`` (``hub_sent``, ``own_sent``).
    """
    counts: Counter[str] = Counter()
    receive, group_send, send = layer.receive, layer.group_send, layer.send

    def kind(channel: str) -> str:
        return "hub" if HUB_MARK in channel or "!" not in channel and channel in _hub_channels(layer) else "own"

    async def counting_receive(channel: str) -> dict[str, Any]:
        message = await receive(channel)
        counts[kind(channel)] += 1
        return message

    async def counting_send(channel: str, message: dict[str, Any]) -> None:
        counts[kind(channel) + "_sent"] += 1
        await send(channel, message)

    async def counting_group_send(group: str, message: dict[str, Any]) -> None:
        counts["group_send"] += 1
        await group_send(group, message)

    layer.receive, layer.group_send, layer.send = counting_receive, counting_group_send, counting_send
    return counts


def _hub_channels(layer: Any) -> set[str]:
    return {channel for channel, _task in get_hub()._readers.values()}


async def connect(consumer: Any, **url_kwargs: Any) -> ConsumerCommunicator:
    comm = ConsumerCommunicator(consumer, application=application, **url_kwargs)
    assert await comm.connect()
    return comm


async def connect_many(n: int, room: str = "fan") -> list[ConsumerCommunicator]:
    return list(await asyncio.gather(*(connect(sc.echo, room=room) for _ in range(n))))


async def test_one_layer_message_per_process_per_publish(layer_kind, redis_url_or_none):
    layer = get_channel_layer()
    counts = instrument(layer)
    clients = await connect_many(20)
    group = sc.echo.group_name(room="fan")
    assert len(get_hub().members[group]) == 20 and len(get_hub()._readers) == 1
    if layer_kind == "redis":  # one membership in Redis for the whole process
        assert await redis_zcard(redis_url_or_none, f"asgi:group:{group}") == 1
    for i in range(10):
        await agroup_send(group, i)
    for client in clients:
        assert [await client.receive_message() for _ in range(10)] == list(range(10))
    hub_key = "hub_sent" if layer_kind == "memory" else "hub"
    if layer_kind == "memory":
        assert counts["group_send"] == 0 and counts[hub_key] == 0, "in-memory frames bypass the layer"
    else:
        assert counts["group_send"] == 10 and counts[hub_key] == 10, counts
    assert counts["own"] == counts["own_sent"] == 0
    # A plain channel-layer message also crosses the layer once, and reaches every member's own handler.
    counts.clear()
    handlers = await asyncio.gather(*(connect(sc.with_handlers) for _ in range(5)))
    await layer.group_send(sc.with_handlers.group_name(), {"type": "chat.note", "text": "hello"})
    for client in handlers:
        assert await client.receive() == {"type": "note", "text": "hello"}
    assert counts[hub_key] == 1 and counts["own"] == counts["own_sent"] == 0, counts
    for client in [*clients, *handlers]:
        await client.disconnect()


@pytest.fixture
def redis_url_or_none(layer_kind: str, request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("redis_url") if layer_kind != "memory" else None


async def redis_zcard(url: str | None, key: str) -> int:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        return int(await client.zcard(key))
    finally:
        await client.aclose()


async def test_direct_send_to_a_consumers_channel_name_reaches_its_handler(layer_kind):
    a = await connect(sc.with_handlers)
    b = await connect(sc.with_handlers)
    (first, second) = sorted(get_hub().members[sc.with_handlers.group_name()], key=id)
    for target in (first, second):
        assert target.channel_name
        await get_channel_layer().send(target.channel_name, {"type": "chat.note", "text": target.channel_name})
    got = {(await a.receive())["text"], (await b.receive())["text"]}
    assert got == {first.channel_name, second.channel_name}
    await a.assert_nothing()
    await b.assert_nothing()
    await a.disconnect()
    await b.disconnect()


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_group_membership_is_refreshed_before_group_expiry(kind, settings, request):
    config: dict[str, Any] = {"group_expiry": 2}
    if kind == "redis":
        config["hosts"] = [{"address": request.getfixturevalue("redis_url"), "socket_timeout": None}]
        backend = "channels_redis.core.RedisChannelLayer"
    else:
        backend = "channels.layers.InMemoryChannelLayer"
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": backend, "CONFIG": config}}
    channel_layers.backends.clear()
    a = await connect(sc.with_handlers)
    await asyncio.sleep(3.5)  # longer than group_expiry: without the refresh the membership would be gone
    await get_channel_layer().group_send(sc.with_handlers.group_name(), {"type": "chat.note", "text": "still here"})
    assert await a.receive(timeout=3) == {"type": "note", "text": "still here"}
    await a.disconnect()


async def test_plain_group_send_without_a_handler_is_ignored_not_fatal(layer_kind, caplog):
    a = await connect(sc.with_handlers)
    layer = get_channel_layer()
    group = sc.with_handlers.group_name()
    await layer.group_send(group, {"type": "no.such_handler"})
    await layer.group_send(group, {"type": FRAME_TYPE, "text": json.dumps({"type": "message", "data": 1})})
    assert await a.receive() == {"type": "message", "data": 1}
    await a.disconnect()


@pytest.mark.timeout(300)
async def test_burst_of_10000_messages_reaches_100_clients_complete_and_in_order(layer_kind):
    """No silent loss and no reordering, on every layer (channels_redis's default capacity is 100)."""
    clients = await connect_many(100, room="burst")
    group = sc.echo.group_name(room="burst")
    total = 10_000
    got: list[list[int]] = [[] for _ in clients]

    async def drain() -> None:
        for frames, client in zip(got, clients):
            queue = client.comm.output_queue
            while not queue.empty():
                frames.append(json.loads(queue.get_nowait()["text"])["data"])

    for i in range(total):
        await agroup_send(group, i)
        if i % 500 == 499:
            await drain()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while any(len(frames) < total for frames in got) and loop.time() < deadline:
        await asyncio.sleep(0.05)
        await drain()
    expected = list(range(total))
    for n, frames in enumerate(got):
        assert frames == expected, f"client {n}: {len(frames)} of {total} frames, first gap at " \
                                   f"{next((i for i, (x, y) in enumerate(zip(frames, expected)) if x != y), None)}"
    for client in clients:
        await client.disconnect()


async def test_waiting_on_in_memory_channels_skips_the_layers_scan_of_every_channel(settings):
    """``InMemoryChannelLayer.receive()`` walks every channel first: N sockets would cost O(N²) to connect."""
    layer = get_channel_layer()
    scans = Counter()
    clean = layer._clean_expired

    def counting_clean() -> None:
        scans["scan"] += 1
        clean()

    layer._clean_expired = counting_clean
    clients = await asyncio.gather(*(connect(sc.with_handlers) for _ in range(30)))
    assert scans["scan"] == 0
    await layer.group_send(sc.with_handlers.group_name(), {"type": "chat.note", "text": "one"})
    for client in clients:
        assert await client.receive() == {"type": "note", "text": "one"}
    (one,) = list(get_hub().members[sc.with_handlers.group_name()])[:1]
    await layer.send(one.channel_name, {"type": "chat.note", "text": "direct"})
    assert scans["scan"] == 1, "only the sender's group_send scanned, once"
    got = [await c.comm.receive_nothing(0.05) for c in clients]
    assert got.count(False) == 1  # exactly one socket got the direct message
    for client in clients:
        await client.disconnect()
    assert not any(c == one.channel_name for c in layer.channels), "a closed socket's queue is not kept"


# ---- direct writes (hypergen_ws.fastpath) -----------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_text_frame_matches_the_websockets_library(size):
    from websockets.frames import Frame, Opcode

    from hypergen_ws.fastpath import text_frame

    text = ("é" * size)[: max(0, size // 2)] + "x" * (size - size // 2)
    assert text_frame(text) == Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


def test_direct_writer_only_for_uvicorns_sansio_connections():
    import functools

    from hypergen_ws.fastpath import direct_writer

    async def plain_send(message):
        pass

    class Server:
        async def handle_reply(self, protocol, message):
            pass

    assert direct_writer(plain_send) is None
    assert direct_writer(functools.partial(Server().handle_reply, object())) is None
    assert direct_writer(None) is None


async def test_push_encoded_writes_directly_only_to_an_idle_socket():
    socket = Socket()
    outbox = started_outbox(socket)
    written: list[bytes] = []
    accept = [True]

    def direct(frame: bytes) -> bool:
        if accept[0]:
            written.append(frame)
        return accept[0]

    outbox.direct = direct
    outbox.push_encoded({"type": "websocket.send", "text": "a"}, b"A")
    assert written == [b"A"] and socket.sent == []
    accept[0] = False  # the server would not write at once: through the ASGI send
    outbox.push_encoded({"type": "websocket.send", "text": "b"}, b"B")
    assert socket.sent == ["b"]
    accept[0] = True
    socket.block()
    outbox.push_text("c")  # the socket is busy now: what follows queues, in order, and is not written directly
    outbox.push_encoded({"type": "websocket.send", "text": "d"}, b"D")
    assert written == [b"A"] and len(outbox) == 1
    socket.unblock()
    await asyncio.sleep(0.01)
    assert socket.sent == ["b", "c", "d"]
