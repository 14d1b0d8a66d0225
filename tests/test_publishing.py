"""The one publish path (hypergen_ws.delivery.publishing), on the in-memory layer and on a real Redis."""
from __future__ import annotations

from typing import Any

import pytest
from channels.layers import get_channel_layer

from hypergen_ws import agroup_send
from hypergen_ws.stats import counters as stats
from hypergen_ws.delivery.hub import FRAME_TYPE, get_hub
from hypergen_ws.delivery.publishing import LayerUnavailable, apublish
from hypergen_ws.testing import ConsumerCommunicator
from hypergen_ws.testing.fixtures import CommunicatorFactory
from tests import recovery_consumers as rc
from tests import sample_consumers as sc
from tests.recutil import opened, use_layer
from tests.wsutil import application

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hgws_application() -> Any:
    return application


@pytest.fixture(params=["memory", "redis", "pubsub"])
def any_layer(request, settings):
    kind = request.param
    use_layer(kind, settings, request.getfixturevalue("redis_url") if kind != "memory" else None)
    return kind


async def test_a_call_s_own_commands_reach_the_caller_before_its_reply(
        hgws_communicator: CommunicatorFactory, any_layer: str) -> None:
    async with hgws_communicator(sc.echo, room="order") as caller, hgws_communicator(sc.echo, room="order") as other:
        for n in range(20):
            result = await caller.call(f"hi {n}")
            first, second = result.frames
            assert first["type"] == "commands" and f"hi {n}" in first["commands"][0][2], (any_layer, first)
            assert second == {"type": "reply", "id": n + 1}, (any_layer, second)
            assert (await other.receive())["type"] == "commands"
        await caller.assert_nothing(0.2)  # the copy that came back over the layer was not sent again
        await other.assert_nothing()


async def test_frames_this_process_published_are_not_delivered_twice(
        hgws_communicator: CommunicatorFactory, any_layer: str) -> None:
    group = sc.echo.group_name(room="twice")
    async with hgws_communicator(sc.echo, room="twice") as a, hgws_communicator(sc.echo, room="twice") as b, \
            hgws_communicator(sc.echo, room="twice") as c:
        for i in range(5):
            await agroup_send(group, i)
        for client in (a, b, c):
            assert [await client.receive_message() for _ in range(5)] == list(range(5))
            await client.assert_nothing(0.2)


async def test_a_layer_message_from_another_process_is_delivered(
        hgws_communicator: CommunicatorFactory, settings: Any, redis_url: str) -> None:
    """A frame whose origin is another hub (another process) is delivered, once."""
    use_layer("redis", settings, redis_url)
    group = sc.echo.group_name(room="other")
    async with hgws_communicator(sc.echo, room="other") as client:
        layer = get_channel_layer()
        await layer.group_send(group, {"type": FRAME_TYPE, "text": '{"type":"message","data":1}', "origin": "x.1"})
        assert await client.receive() == {"type": "message", "data": 1}
        await client.assert_nothing(0.2)


async def test_group_frames_of_a_socket_that_catches_up_are_counted_and_written_once(settings):
    """While a socket is being replayed what it missed, live frames still go through the hub's writer."""
    use_layer("memory", settings)
    stats.reset()
    group = rc.rec_feed.group_name(room="count")
    first = await opened(rc.rec_feed, room="count")
    assert (await first.receive())["type"] == "sync"
    hub = get_hub()
    feed = hub.feed(group)
    feed.floors[object()] = (10**9, 1)  # a socket catching up: the feed takes its slow path
    await agroup_send(group, "live")
    got = await first.receive()
    assert got["data"] == "live"
    assert stats.snapshot()["groups"][group]["messages_out"] == 1
    await first.disconnect()


async def test_a_failing_layer_raises_layer_unavailable_saying_what_to_check(settings, redis_server):
    use_layer("redis", settings, redis_server.url)
    settings.HYPERGEN_WS = {"PUBLISH_TIMEOUT": 2}
    redis_server.kill()
    with pytest.raises((LayerUnavailable, TimeoutError)) as info:
        await apublish(sc.echo.group_name(room="down"), '{"type":"message","data":1}')
    assert "Redis" in str(info.value)
    redis_server.start()


async def test_a_call_whose_delivery_fails_gets_an_unavailable_error_frame_and_the_socket_stays_open(
        settings: Any, redis_server: Any) -> None:
    use_layer("redis", settings, redis_server.url)
    settings.HYPERGEN_WS = {"PUBLISH_TIMEOUT": 2}
    async with ConsumerCommunicator(sc.echo, application=application, timeout=15, room="fail") as client:
        redis_server.freeze()
        try:
            # What reached this process's sockets before the layer failed comes first, then the error.
            error = (await client.call("lost?")).error
            assert error is not None and error["code"] == "unavailable", error
        finally:
            redis_server.thaw()
        assert (await client.call("back")).reply == {"type": "reply", "id": 2}


@pytest.mark.parametrize("sync", [False, True])
async def test_a_publish_that_timed_out_says_its_outcome_is_unknown_and_may_still_arrive(sync, settings,
                                                                                         redis_server):
    import asyncio

    from hypergen_ws import aget_history, group_send

    use_layer("redis", settings, redis_server.url)
    settings.HYPERGEN_WS = {"PUBLISH_TIMEOUT": 0.5}
    group = rc.rec_feed.group_name(room="unknown")
    await agroup_send(group, {"text": "before"})  # connections to Redis are open: the next append is sent on one
    await asyncio.to_thread(group_send, group, {"text": "before"})
    redis_server.freeze()
    try:
        with pytest.raises(TimeoutError) as timed_out:
            if sync:
                await asyncio.to_thread(group_send, group, {"text": "lost?"})
            else:
                await agroup_send(group, {"text": "lost?"})
    finally:
        redis_server.thaw()
    message = str(timed_out.value)
    assert "outcome is unknown" in message and "PUBLISH_TIMEOUT" in message and "twice" in message, message
    # As it says: the frame's append was already on its way to Redis, which runs it once it answers again, so
    # clients that recover from the history get the frame the publisher was told had timed out.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while len(kept := await aget_history(group)) < 3 and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert [frame["data"] for frame in kept] == [{"text": "before"}] * 2 + [{"text": "lost?"}]
