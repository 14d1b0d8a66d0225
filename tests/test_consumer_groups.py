"""Joining a connection's groups (hypergen_ws.consumers.groups) with a real redis-server frozen (SIGSTOP): one
budget for the whole connect, the join that goes on in the background, what a late joiner is told, and the clean-up
of a join cut short by a close."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hypergen_ws import agroup_send
from hypergen_ws.delivery.hub import get_hub
from hypergen_ws.features.history import aget_position
from hypergen_ws.testing import ConsumerCommunicator
from tests import recovery_consumers as rc
from tests.recutil import use_layer

pytestmark = pytest.mark.django_db(transaction=True)

UNAVAILABLE = {"type": "resync", "reason": "unavailable", "seq": None, "epoch": None}
#: A budget far below PUBLISH_TIMEOUT: a connect that waited for the layer would not be answered within it.
SETTINGS = {"CONNECT_TIMEOUT": 0.5, "PUBLISH_TIMEOUT": 20, "PROCESS_HEARTBEAT_INTERVAL": 0.2}
ANSWERED_WITHIN = 5.0  # seconds: the budget and some slack, a quarter of PUBLISH_TIMEOUT


@pytest.fixture
def redis_layer(settings: Any, redis_server: Any) -> Any:
    use_layer("redis", settings, redis_server.url)
    settings.HYPERGEN_WS = SETTINGS
    return redis_server


def socket(consumer: Any, **options: Any) -> ConsumerCommunicator:
    return ConsumerCommunicator(consumer, application=rc.application, timeout=ANSWERED_WITHIN, **options)


async def until(condition: Any, what: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def warm_up(room: str) -> None:
    """A socket that joins and leaves: this event loop has its connections to Redis (and its heartbeat)."""
    async with socket(rc.rec_plain, room=room):
        pass


async def test_a_connect_while_redis_is_frozen_is_answered_within_its_budget_and_told_when_it_joined(redis_layer):
    await warm_up("warm")
    redis_layer.freeze()
    try:
        plain = socket(rc.rec_plain, room="frozen")
        assert await plain.connect()  # the handshake: within ANSWERED_WITHIN, not PUBLISH_TIMEOUT
        assert await plain.receive() == UNAVAILABLE
        feed = socket(rc.rec_feed, room="frozen")
        assert await feed.connect()
        assert await feed.receive() == UNAVAILABLE
    finally:
        redis_layer.thaw()
    # Without history: frames may have been published before the join, and nothing can say which.
    assert await plain.receive(15) == {"type": "resync", "reason": "rejoined", "seq": None, "epoch": None}
    # With history but no position: a resync with the group's position, not a sync that would hide a gap.
    seq, epoch = await aget_position(rc.rec_feed.group_name(room="frozen"))
    assert await feed.receive(15) == {"type": "resync", "reason": "rejoined", "seq": seq, "epoch": epoch}
    await agroup_send(rc.rec_plain.group_name(room="frozen"), "plain")
    await agroup_send(rc.rec_feed.group_name(room="frozen"), "feed")
    assert await plain.receive() == {"type": "message", "data": "plain"}
    assert await feed.receive() == {"seq": seq + 1, "epoch": epoch, "type": "message", "data": "feed"}
    for comm in (plain, feed):
        await comm.assert_nothing()
        await comm.disconnect()


async def test_a_late_joiner_that_connected_with_a_position_gets_what_it_missed(redis_layer):
    group = rc.rec_feed.group_name(room="missed")
    for n in range(3):
        await agroup_send(group, n)
    seq, epoch = await aget_position(group)
    redis_layer.freeze()
    try:
        comm = socket(rc.rec_feed, room="missed", query=f"hgws_seq=1&hgws_epoch={epoch}")
        assert await comm.connect()
        assert await comm.receive() == UNAVAILABLE
    finally:
        redis_layer.thaw()
    assert await comm.receive(15) == {"type": "sync", "seq": 1, "epoch": epoch, "replayed": 2}
    assert [(await comm.receive())["data"] for _ in range(2)] == [1, 2]
    await comm.disconnect()


async def test_sockets_closed_while_their_join_is_under_way_leave_nothing_behind(redis_layer):
    await warm_up("warm")
    group = rc.rec_plain.group_name(room="gone")
    hub = get_hub()
    redis_layer.freeze()
    try:
        first, second = socket(rc.rec_plain, room="gone"), socket(rc.rec_plain, room="gone")
        for comm in (first, second):  # the first subscribes the process, the second waits for it
            assert await comm.connect()
            assert await comm.receive() == UNAVAILABLE
        assert len(hub.members[group]) == 2
        await second.disconnect()
        await first.disconnect()
        assert group not in hub.members
    finally:
        redis_layer.thaw()
    await until(lambda: group not in hub.subscriptions and group not in hub.members, "the hub left the group")
    # A new socket of the room joins it afresh and gets its frames.
    async with socket(rc.rec_plain, room="gone") as comm:
        await agroup_send(group, "again")
        assert await comm.receive() == {"type": "message", "data": "again"}
