"""Groups across processes (get_groups, flush_groups), runtime join/leave, connection expiry, clean_expired."""
from __future__ import annotations

import asyncio
import json

import pytest

from hypergen_ws import aclean_expired, aflush_groups, agroup_send, aget_groups, aget_presence, clean_expired
from hypergen_ws import get_groups
from hypergen_ws.delivery.hub import get_hub
from hypergen_ws.core.protocol import CLOSE_EXPIRED
from hypergen_ws.backends.layers import get_store
from tests import recovery_consumers as rc
from tests.recutil import OtherProcess, next_close, opened, use_layer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def layer(heartbeat_layer):
    return heartbeat_layer


async def eventually(check, timeout: float = 5):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value or loop.time() > deadline:
            return value
        await asyncio.sleep(0.05)


async def test_get_groups_counts_sockets_and_follows_join_and_leave(layer):
    a = await opened(rc.rec_plain, room="g1")
    b = await opened(rc.rec_plain, room="g1")
    c = await opened(rc.rec_custom, query="t=x")
    await c.receive_all()
    g1, custom = rc.rec_plain.group_name(room="g1"), "rec.custom.t-x"
    groups = await aget_groups()
    assert groups[g1] == 2 and groups[custom] == 1
    await c.send({"args": ["sports"]})  # consumer.join("rec.topic.sports")
    assert (await c.receive())["commands"] == [["joined", "sports"]]
    assert (await aget_groups())["rec.topic.sports"] == 1
    await agroup_send("rec.topic.sports", "goal")
    assert (await c.receive())["data"] == "goal"
    instance = next(m for m in get_hub().members[custom])
    await instance.leave("rec.topic.sports")
    assert "rec.topic.sports" not in await aget_groups()
    await agroup_send("rec.topic.sports", "missed")
    await c.assert_nothing()  # a socket that left a group gets nothing from it
    await instance.leave("rec.topic.sports")  # leaving twice is harmless
    await a.disconnect()
    await asyncio.sleep(0.05)
    assert (await aget_groups())[g1] == 1
    for comm in (b, c):
        await comm.disconnect()
    await asyncio.sleep(0.05)
    remaining = await aget_groups()
    assert g1 not in remaining and custom not in remaining


def test_get_groups_from_sync_code(settings):
    use_layer("memory", settings)
    assert get_groups() == {}
    assert clean_expired() == {"connections": 0, "history_entries": 0, "processes": 0}


async def test_groups_across_processes_and_flush_groups(settings, redis_url):
    use_layer("pubsub", settings, redis_url)  # one Redis connection per event loop: two loops act as processes
    settings.HYPERGEN_WS = {"PROCESS_HEARTBEAT_INTERVAL": 0.2, "PROCESS_TTL": 1.0}
    here = await opened(rc.rec_room, room="shared")
    group = rc.rec_room.group_name(room="shared")
    other = OtherProcess()
    try:
        remote = [await other.arun(opened(rc.rec_room, room="shared")) for _ in range(2)]
        await other.arun(opened(rc.rec_plain, room="remote-only"))
        groups = await eventually(lambda: _when(aget_groups(), lambda g: g.get(group) == 3))
        assert groups[group] == 3 and groups[rc.rec_plain.group_name(room="remote-only")] == 1
        # stale entries of a process that is gone for good
        store = get_store()
        redis = store.clients.get(0)
        await redis.hset(f"{store.prefix}:pg:ghost", mapping={group: 40})
        await redis.hset(f"{store.prefix}:presence:{group}", "u:999|ghost", json.dumps(
            {"id": "u:999", "user_id": 999, "username": "ghost", "count": 1, "since": 0}))
        await redis.hincrby(f"{store.prefix}:pcount:{group}", "u:999", 1)
        await aflush_groups()
        assert await redis.exists(f"{store.prefix}:pg:ghost", f"{store.prefix}:presence:{group}") == 0
        groups = await eventually(lambda: _when(aget_groups(), lambda g: g.get(group) == 3))
        assert groups[group] == 3, "the live processes wrote their counts again"
        users = await eventually(lambda: _when(aget_presence(group), lambda u: len(u) == 3))
        assert len(users) == 3 and "ghost" not in [u["username"] for u in users]
        assert await redis.hgetall(f"{store.prefix}:pcount:{group}") != {}, "totals recounted"
        for comm in remote:
            await other.arun(comm.disconnect())
    finally:
        other.stop()
    await here.disconnect()


async def _when(coro, predicate):
    value = await coro
    return value if predicate(value) else None


async def test_expired_connection_is_closed_with_4408_and_leaves_its_groups(layer):
    comm = await opened(rc.rec_brief, room="e1")
    assert (await comm.receive())["type"] == "sync"
    group = rc.rec_brief.group_name(room="e1")
    assert (await aget_groups())[group] == 1
    assert await next_close(comm, 2) == (CLOSE_EXPIRED, "")
    await comm.disconnect()
    await asyncio.sleep(0.05)
    assert group not in await aget_groups()


async def test_clean_expired_closes_what_the_timer_missed_and_trims_memory_history(layer, settings):
    comm = await opened(rc.rec_feed, room="e2")
    await comm.receive()
    instance = next(iter(get_hub().members[rc.rec_feed.group_name(room="e2")]))
    instance.state.expires_at = 0  # as if its lifetime had been over for long
    await agroup_send(rc.rec_feed.group_name(room="e2"), "x")
    await comm.receive()
    settings.HYPERGEN_WS = {"HISTORY_TTL": 0}
    await asyncio.sleep(0.01)
    done = await aclean_expired()
    assert done["connections"] == 1
    assert done["history_entries"] == (1 if layer == "memory" else 0)
    assert await next_close(comm, 2) == (CLOSE_EXPIRED, "")
    await comm.disconnect()


async def test_clean_expired_removes_dead_processes_on_redis(settings, redis_url):
    use_layer("redis", settings, redis_url)
    settings.HYPERGEN_WS = {"PROCESS_HEARTBEAT_INTERVAL": 0.2, "PROCESS_TTL": 1.0}
    store = get_store()
    redis = store.clients.get(0)
    await redis.zadd(f"{store.prefix}:procs", {"dead-one": 1})
    await redis.hset(f"{store.prefix}:pg:dead-one", mapping={"some.group": 3})
    assert (await aclean_expired())["processes"] == 1
    assert await redis.exists(f"{store.prefix}:pg:dead-one") == 0
    assert (await aclean_expired())["processes"] == 0


async def test_flush_groups_in_memory_writes_every_live_socket_again(settings):
    from hypergen_ws.backends.layers import get_engine

    use_layer("memory", settings)
    a = await opened(rc.rec_room, room="flushed")
    b = await opened(rc.rec_room, room="flushed")
    group = rc.rec_room.group_name(room="flushed")
    before = await aget_presence(group)
    assert len(before) == 2, before  # two anonymous sockets: two users
    await get_engine().presence.join(group, "ghost:1", "u:ghost", json.dumps(
        {"id": "u:ghost", "user_id": None, "username": "ghost", "count": 1, "since": 0.0}))  # left by a bug
    assert len(await aget_presence(group)) == len(before) + 1
    await aflush_groups()
    assert await aget_presence(group) == before, "the ghost is gone, the live sockets are back at once"
    await a.disconnect()
    await b.disconnect()
    assert await aget_presence(group) == []
