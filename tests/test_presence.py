"""Presence: who is connected to a group, join/leave frames, across processes sharing Redis."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import User

from hypergen_ws import aget_presence
from hypergen_ws.features.presence import tables
from tests import recovery_consumers as rc
from tests.recutil import OtherProcess, opened, use_layer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def layer(heartbeat_layer):
    return heartbeat_layer


@database_sync_to_async
def user(name: str) -> User:
    return User.objects.create_user(name, password=name)


def presence_frames(frames: list[dict]) -> list[tuple]:
    return [(f["event"], f.get("username")) for f in frames if f.get("type") == "presence" and f["event"] != "list"]


async def test_join_and_leave_once_per_user_and_the_list(layer):
    ann, bob = await user("p_ann"), await user("p_bob")
    watcher = await opened(rc.rec_room, room="lobby")
    first = await watcher.receive()
    assert first["type"] == "presence" and first["event"] == "list"
    assert [u["username"] for u in first["users"]] == [None], "the watcher itself, anonymous"
    assert presence_frames(await watcher.receive_all()) == [("join", None)]

    a1 = await opened(rc.rec_room, room="lobby", user=ann)
    listing = await a1.receive()
    assert sorted(str(u["username"]) for u in listing["users"]) == ["None", "p_ann"]
    a2 = await opened(rc.rec_room, room="lobby", user=ann)
    b1 = await opened(rc.rec_room, room="lobby", user=bob)
    assert presence_frames(await watcher.receive_all()) == [("join", "p_ann"), ("join", "p_bob")]

    users = {u["username"]: u for u in await aget_presence(rc.rec_room.group_name(room="lobby"))}
    assert users["p_ann"]["connections"] == 2 and users["p_bob"]["connections"] == 1
    assert users["p_ann"]["user_id"] == ann.pk and users["p_ann"]["id"] == f"u:{ann.pk}"
    assert users["p_ann"]["since"].endswith("Z")
    assert await rc.rec_room.apresence(room="lobby") == await aget_presence(rc.rec_room.group_name(room="lobby"))

    await a1.disconnect()
    assert presence_frames(await watcher.receive_all()) == [], "ann still has a socket"
    await a2.disconnect()
    await b1.disconnect()
    assert presence_frames(await watcher.receive_all()) == [("leave", "p_ann"), ("leave", "p_bob")]
    assert [u["username"] for u in await rc.rec_room.apresence(room="lobby")] == [None]
    await watcher.disconnect()
    await asyncio.sleep(0.05)
    assert await rc.rec_room.apresence(room="lobby") == []
    group = rc.rec_room.group_name(room="lobby")
    assert all(group not in table for table in tables.by_hub.values()), \
        "nothing is kept for a room without members"


async def test_presence_frames_carry_no_seq_and_other_rooms_see_nothing(layer):
    a = await opened(rc.rec_room, room="one")
    other = await opened(rc.rec_room, room="two")
    await a.receive_all()
    await other.receive_all()
    b = await opened(rc.rec_room, room="one")
    joined = [f for f in await a.receive_all() if f["type"] == "presence"]
    assert len(joined) == 1 and "seq" not in joined[0] and joined[0]["event"] == "join"
    assert await other.receive_all() == []
    for c in (a, b, other):
        await c.disconnect()


def test_sync_presence_api(settings):
    use_layer("memory", settings)
    assert rc.rec_room.presence(room="empty") == []


async def test_presence_across_processes_and_a_crashed_process_disappears(settings, redis_url):
    # RedisPubSubChannelLayer keeps one connection per event loop, so two loops can share it like two processes
    use_layer("pubsub", settings, redis_url)
    settings.HYPERGEN_WS = {"PROCESS_HEARTBEAT_INTERVAL": 0.2, "PROCESS_TTL": 1.0}
    ann = await user("p_ann2")
    group = rc.rec_room.group_name(room="cluster")
    watcher = await opened(rc.rec_room, room="cluster")
    await watcher.receive_all()
    other = OtherProcess()
    try:
        remote = await other.arun(opened(rc.rec_room, room="cluster", user=ann))
        listing = await other.arun(remote.receive(3))
        assert sorted(str(u["username"]) for u in listing["users"]) == ["None", "p_ann2"], "both processes listed"
        assert presence_frames(await watcher.receive_all()) == [("join", "p_ann2")]
        assert {u["username"]: u["connections"] for u in await aget_presence(group)} == {None: 1, "p_ann2": 1}
        await other.hang()  # like kill -9: no more heartbeats, no disconnect, no leave frame from that process
        loop = asyncio.get_running_loop()
        started = loop.time()
        leaves: list[tuple] = []
        while not leaves and loop.time() - started < 5:
            leaves = presence_frames(await watcher.receive_all(0.2))
        assert leaves == [("leave", "p_ann2")], "a live process cleaned up after the dead one"
        assert [u["username"] for u in await aget_presence(group)] == [None]
    finally:
        other.stop()
    await watcher.disconnect()


async def test_a_presence_write_that_failed_is_redone_at_the_next_heartbeat(settings, redis_url, monkeypatch):
    use_layer("redis", settings, redis_url)
    settings.HYPERGEN_WS = {"PROCESS_HEARTBEAT_INTERVAL": 0.2, "PROCESS_TTL": 5.0}
    from hypergen_ws.backends.redis.scripts import LEAVE
    from hypergen_ws.delivery.hub import get_hub
    from hypergen_ws.features import presence

    group = rc.rec_room.group_name(room="flaky")
    a = await opened(rc.rec_room, room="flaky")
    b = await opened(rc.rec_room, room="flaky")
    assert len(await aget_presence(group)) == 2
    store: Any = get_hub().engine.store
    client = store.clients.get(store.clients.index(group))
    original = client.eval

    async def eval_failing_leave(script, *args, **kwargs):
        if script == LEAVE:
            raise ConnectionError("Redis is unreachable")
        return await original(script, *args, **kwargs)

    monkeypatch.setattr(client, "eval", eval_failing_leave)
    await b.disconnect()
    await asyncio.sleep(0.05)
    assert presence.listener.needs_reassert(get_hub())
    monkeypatch.setattr(client, "eval", original)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3
    while len(await aget_presence(group)) != 1 and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert len(await aget_presence(group)) == 1, "the stale entry was replaced by the next heartbeat"
    assert not presence.listener.needs_reassert(get_hub())
    await a.disconnect()


async def test_a_herd_of_closes_on_redis_leaves_no_ghost(settings, redis_url):
    """Hundreds of sockets closing at once: every removal reaches Redis (the store runs a bounded number of calls
    at once on a pool that holds them), and a watcher sees every user leave."""
    use_layer("redis", settings, redis_url)
    settings.HYPERGEN_WS = {"PROCESS_HEARTBEAT_INTERVAL": 0.5, "PROCESS_TTL": 30.0}
    herd = 400
    group = rc.rec_room.group_name(room="herd")
    watcher = await opened(rc.rec_room, room="herd")
    sockets = []
    for _batch in range(herd // 20):  # anonymous sockets, each a user of its own; they close all at once
        sockets += await asyncio.gather(*(opened(rc.rec_room, room="herd") for _ in range(20)))
    assert len(await aget_presence(group)) == herd + 1
    await watcher.receive_all()
    await asyncio.gather(*(comm.disconnect() for comm in sockets))
    left: set[str] = set()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while len(left) < herd and loop.time() < deadline:
        for frame in await watcher.receive_all(0.5):
            if frame.get("type") == "presence" and frame["event"] == "leave":
                left.add(frame["id"])
    assert len(left) == herd, f"the watcher saw {len(left)} of {herd} users leave"
    assert len(await aget_presence(group)) == 1, "only the watcher is left in Redis"
    await watcher.disconnect()


async def test_a_leave_that_could_not_reach_redis_is_announced_by_the_next_heartbeat(settings, redis_server):
    use_layer("redis", settings, redis_server.url)
    settings.HYPERGEN_WS = {"PROCESS_HEARTBEAT_INTERVAL": 0.2, "PROCESS_TTL": 60.0, "PUBLISH_TIMEOUT": 0.5}
    group = rc.rec_room.group_name(room="frozen")
    watcher = await opened(rc.rec_room, room="frozen")
    ann = await opened(rc.rec_room, room="frozen", user=await user("p_ann3"))
    assert ("join", "p_ann3") in presence_frames(await watcher.receive_all())
    redis_server.freeze()
    try:
        await ann.disconnect()  # its removal from Redis times out (PUBLISH_TIMEOUT), and may run when Redis is back
    finally:
        redis_server.thaw()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    seen: list[tuple] = []
    while ("leave", "p_ann3") not in seen and loop.time() < deadline:
        seen += presence_frames(await watcher.receive_all(0.2))
    assert seen == [("leave", "p_ann3")], "the watcher sees ann leave once Redis answers again"
    assert [u["username"] for u in await aget_presence(group)] == [None]
    await watcher.disconnect()
