"""Process-level fan-out (hypergen_ws.delivery.hub): the hub, and one layer message per process on every layer."""
from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer, channel_layers, get_channel_layer

from hypergen_ws import agroup_send
from hypergen_ws.backends.layers import HUB_MARK, hub_channel, prepare_layer
from hypergen_ws.delivery.hub import FRAME_TYPE, Hub, get_hub
from hypergen_ws.core.state import ConnectionState
from tests.support.sockets import Socket, started_outbox
from hypergen_ws.testing import ConsumerCommunicator
from tests import sample_consumers as sc
from tests.wsutil import application

LAYERS = ["memory", "redis", "pubsub"]

pytestmark = pytest.mark.django_db(transaction=True)


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
    _count = 0

    def __init__(self) -> None:
        Member._count += 1
        self.socket = Socket()
        self.outbox = started_outbox(self.socket)
        self.channel_name = f"specific.tests!member{Member._count}"
        self.state = ConnectionState()
        self.keeps_history = False

    def send_text(self, text: str) -> None:
        self.outbox.push_text(text)


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
    for m in members:  # handed on to each member's own channel, where its dispatch loop reads it
        assert await asyncio.wait_for(layer.receive(m.channel_name), 5) == {"type": "x.y"}

    await asyncio.gather(*(hub.leave("g", m) for m in members[:-1]))
    assert layer.calls["group_discard"] == 0 and hub.members["g"] == {members[-1]}
    await hub.leave("g", members[-1])
    await hub.leave("g", members[-1])  # leaving twice is harmless
    assert layer.calls["group_discard"] == 1 and "g" not in hub.members and "g" not in hub.subscriptions
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
    assert "g" not in hub.members and "g" not in hub.subscriptions
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
    assert "g" not in hub.members and "g" not in hub.subscriptions
    layer.fail = False
    member = Member()
    await hub.join("g", member)
    assert hub.members["g"] == {member} and "g" in hub.subscriptions


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


async def _until(condition: Any, limit: float = 10.0) -> None:
    """Wait until ``condition()`` holds (checked every 10 ms, for ``limit`` seconds at most)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition() and loop.time() < deadline:
        await asyncio.sleep(0.01)


def _hub_channels(layer: Any) -> set[str]:
    return {channel for channel, _task in get_hub().subscriptions.values()}


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
    socket_groups = [g for g in get_hub().subscriptions if g not in get_hub().listeners]  # not the control group
    assert len(get_hub().members[group]) == 20 and socket_groups == [group]
    if layer_kind == "redis":  # one membership in Redis for the whole process
        assert await redis_zcard(redis_url_or_none, f"asgi:group:{group}") == 1
    for i in range(10):
        await agroup_send(group, i)
    for client in clients:
        assert [await client.receive_message() for _ in range(10)] == list(range(10))
    hub_key = "hub_sent" if layer_kind == "memory" else "hub"
    if layer_kind != "memory":  # this process's sockets got the frames at once; the layer copies follow
        await _until(lambda: counts[hub_key] >= 10)
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
    # One layer message for the process; the hub hands it to each member's own channel: in the process on the
    # in-memory and pub/sub layers, with one plain send per socket on RedisChannelLayer.
    assert counts[hub_key] == 1, counts
    assert counts["own_sent"] == (5 if layer_kind == "redis" else 0), counts
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
async def test_burst_of_10000_messages_reaches_every_client_complete_and_in_order(layer_kind):
    """No silent loss and no reordering, on every layer (channels_redis's default capacity is 100)."""
    clients = await connect_many(10, room="burst")
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


async def test_every_socket_waits_on_its_own_channel_and_leaves_no_queue_behind(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    layer = get_channel_layer()
    plain = await connect(sc.counter)
    handled = await connect(sc.with_handlers)
    (without,) = get_hub().members[sc.counter.group_name()]
    (with_,) = get_hub().members[sc.with_handlers.group_name()]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while {with_.channel_name, without.channel_name} - set(layer.channels) and loop.time() < deadline:
        await asyncio.sleep(0.01)  # Channels' dispatch loop makes each channel's queue when it first waits
    assert with_.channel_name in layer.channels and without.channel_name in layer.channels
    for client in (plain, handled):
        await client.disconnect()
    assert with_.channel_name not in layer.channels and without.channel_name not in layer.channels, \
        "the wait stopped with its socket"
