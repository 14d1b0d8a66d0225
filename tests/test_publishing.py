"""The one publish path (hypergen_ws.delivery.publishing), on the in-memory layer and on a real Redis."""
from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer

from hypergen_ws import agroup_send
from hypergen_ws.delivery import stats
from hypergen_ws.delivery.hub import FRAME_TYPE, get_hub
from hypergen_ws.delivery.publishing import LayerUnavailable, apublish
from tests import recovery_consumers as rc
from tests import sample_consumers as sc
from tests.recutil import drain, frame, use_layer
from tests.wsutil import call, connect, receive

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["memory", "redis", "pubsub"])
def any_layer(request, settings):
    kind = request.param
    use_layer(kind, settings, request.getfixturevalue("redis_url") if kind != "memory" else None)
    return kind


async def test_a_call_s_own_commands_reach_the_caller_before_its_reply(any_layer):
    caller = await connect("/ws/tests/echo/order/")
    other = await connect("/ws/tests/echo/order/")
    for n in range(20):
        await call(caller, f"hi {n}", id=n)
        first, second = await receive(caller), await receive(caller)
        assert first["type"] == "commands" and f"hi {n}" in first["commands"][0][2], (any_layer, first)
        assert second == {"type": "reply", "id": n}, (any_layer, second)
        assert (await receive(other))["type"] == "commands"
    assert await caller.receive_nothing(0.2), "the copy that came back over the layer was not sent again"
    assert await other.receive_nothing(0.1)
    await caller.disconnect()
    await other.disconnect()


async def test_frames_this_process_published_are_not_delivered_twice(any_layer):
    clients = [await connect("/ws/tests/echo/twice/") for _ in range(3)]
    group = sc.echo.group_name(room="twice")
    for i in range(5):
        await agroup_send(group, i)
    for client in clients:
        assert [(await receive(client))["data"] for _ in range(5)] == list(range(5))
        assert await client.receive_nothing(0.2)
        await client.disconnect()


async def test_a_layer_message_from_another_process_is_delivered(settings, redis_url):
    """A frame whose origin is another hub (another process) is delivered, once."""
    use_layer("redis", settings, redis_url)
    client = await connect("/ws/tests/echo/other/")
    group = sc.echo.group_name(room="other")
    layer = get_channel_layer()
    await layer.group_send(group, {"type": FRAME_TYPE, "text": '{"type":"message","data":1}', "origin": "x.1"})
    assert await receive(client) == {"type": "message", "data": 1}
    assert await client.receive_nothing(0.2)
    await client.disconnect()


async def test_group_frames_of_a_socket_that_catches_up_are_counted_and_written_once(settings):
    """While a socket is being replayed what it missed, live frames still go through the hub's writer."""
    use_layer("memory", settings)
    stats.reset()
    group = rc.rec_feed.group_name(room="count")
    first = await connect_rec("/ws/tests/rec_feed/count/")
    hub = get_hub()
    feed = hub.feed(group)
    feed.floors[object()] = (10**9, 1)  # a socket catching up: the feed takes its slow path
    await agroup_send(group, "live")
    got = await frame(first)
    assert got["data"] == "live"
    assert stats.snapshot()["groups"][group]["messages_out"] == 1
    await first.disconnect()


async def connect_rec(path: str):
    from tests.recutil import open_ws

    comm = await open_ws(path)
    assert (await frame(comm))["type"] == "sync"
    return comm


async def test_a_failing_layer_raises_layer_unavailable_saying_what_to_check(settings, redis_server):
    use_layer("redis", settings, redis_server.url)
    settings.HYPERGEN_WS = {"PUBLISH_TIMEOUT": 2}
    redis_server.kill()
    with pytest.raises((LayerUnavailable, TimeoutError)) as info:
        await apublish(sc.echo.group_name(room="down"), '{"type":"message","data":1}')
    assert "Redis" in str(info.value)
    redis_server.start()


async def test_a_call_whose_delivery_fails_gets_an_unavailable_error_frame_and_the_socket_stays_open(
        settings, redis_server):
    use_layer("redis", settings, redis_server.url)
    settings.HYPERGEN_WS = {"PUBLISH_TIMEOUT": 2}
    client = await connect("/ws/tests/echo/fail/")
    redis_server.freeze()
    try:
        await call(client, "lost?", id=7)
        answer = await receive(client, timeout=15)
        while answer["type"] == "commands":  # delivered to this process's sockets before the layer failed
            answer = await receive(client, timeout=15)
        assert answer["type"] == "error" and answer["id"] == 7 and answer["code"] == "unavailable", answer
    finally:
        redis_server.thaw()
    await call(client, "back", id=8)
    frames = [await receive(client, timeout=10) for _ in range(2)]
    assert frames[-1] == {"type": "reply", "id": 8}
    await client.disconnect()
