"""Group histories in Redis (hypergen_ws.backends.redis.store), against a real redis-server."""
from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer
from redis.exceptions import ConnectionError as RedisConnectionError

from hypergen_ws.backends.layers import get_store
from hypergen_ws.backends.redis.store import RedisStore, checked_host, crc_hash
from tests.recutil import use_layer


@pytest.fixture
def store(settings, redis_url) -> RedisStore:
    use_layer("redis", settings, redis_url)
    found = get_store()
    assert isinstance(found, RedisStore)
    return found


async def test_append_and_read_keep_the_last_n_in_order(store):
    seqs = [await store.append("g", f"f{i}", 3) for i in range(5)]
    assert [s for s, _e in seqs] == [1, 2, 3, 4, 5] and len({e for _s, e in seqs}) == 1
    snapshot = await store.read("g", 0)
    assert snapshot.seq == 5 and [t for _s, _ts, t in snapshot.entries] == ["f2", "f3", "f4"]
    assert [s for s, _ts, _t in (await store.read("g", 3)).entries] == [4, 5]
    assert (await store.read("g", None)).entries == []


async def test_a_flushed_group_starts_a_new_epoch(store):
    _seq, epoch = await store.append("g", "x", 10)
    await store.flush("g")
    assert (await store.read("g", None)).epoch != epoch
    await store.append("h", "y", 10)
    assert "h" in await store.groups()
    await store.flush()
    assert await store.groups() == []


async def test_a_restarted_redis_gives_a_new_epoch(store, redis_server):
    _seq, epoch = await store.append("g", "x", 10)
    await asyncio.to_thread(redis_server.kill)  # kill -9; this event loop runs meanwhile, as a server's does
    await asyncio.to_thread(redis_server.start)
    snapshot = await store.read("g", None)  # no dead pooled connection is handed out
    assert snapshot.epoch != epoch and snapshot.seq == 0


async def test_after_a_restart_the_first_append_and_group_send_find_no_dead_connection(store, redis_server):
    """Appending (it adds) and publishing may not be retried; they never meet a dead connection."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    await store.append("g", "before", 10)
    await layer.group_send("g", {"type": "t.before"})
    await asyncio.to_thread(redis_server.kill)
    await asyncio.to_thread(redis_server.start)
    assert await store.append("g", "after", 10) == (1, (await store.read("g", None)).epoch)
    await layer.group_add("g", channel)
    await layer.group_send("g", {"type": "t.after"})
    assert (await layer.receive(channel))["type"] == "t.after"


async def test_reads_run_again_on_a_fresh_connection_when_redis_closed_theirs(store, redis_server):
    """A restart this event loop has not seen yet (it was blocked): the pooled connection fails when used; an
    operation that may run twice (a read) is retried once on a fresh connection, one that adds is not."""
    await store.append("g", "x", 10)
    redis_server.kill()
    redis_server.start()  # blocking: the loop has not seen the old connection close
    snapshot = await store.read("g", None)
    assert snapshot.seq == 0
    redis_server.kill()
    redis_server.start()
    with pytest.raises(RedisConnectionError):
        await store.append("g", "y", 10)
    assert (await store.append("g", "y", 10))[0] == 1, "the failed append was not stored"


def test_the_pools_test_idle_connections_and_the_settings_stay_untouched(settings, redis_url):
    from redis.maint_notifications import MaintNotificationsConfig

    use_layer("redis", settings, redis_url)
    hosts = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
    layer = get_channel_layer()
    assert [h["maint_notifications_config"].enabled for h in layer.hosts] == [False]
    assert "maint_notifications_config" not in hosts[0], "a copy of the host options, not the settings' dict"
    assert checked_host({"address": redis_url})["maint_notifications_config"].enabled is False
    own = MaintNotificationsConfig(enabled=True)
    assert checked_host({"address": redis_url, "maint_notifications_config": own})["maint_notifications_config"] is own


def test_groups_go_to_the_hosts_the_layer_puts_them_on(settings, redis_url):
    use_layer("redis", settings, redis_url)
    layer = get_channel_layer()
    store = RedisStore.for_layer(layer)
    assert store.clients.index("any.group") == layer.consistent_hash("any.group")
    assert crc_hash("x", 1) == 0 and {crc_hash(f"g{i}", 4) for i in range(200)} == {0, 1, 2, 3}


async def test_a_record_nothing_was_published_to_lives_a_short_ttl_unless_kept_alive(store):
    from redis.asyncio import Redis

    from hypergen_ws.backends.base import EMPTY_RECORD_TTL

    client = Redis.from_url(store.clients.hosts[0]["address"])
    empty = await store.read("room-a", None)
    ttl = await client.pttl("hgws:seq:room-a")
    assert empty.seq == 0 and 0 < ttl <= EMPTY_RECORD_TTL * 1000, "a read does not make a record for a day"
    await client.pexpire("hgws:seq:room-a", 1000)
    await store.keep_alive(["room-a"])  # a process has members in the room: the record and its epoch stay
    assert await client.pttl("hgws:seq:room-a") > 1000
    assert (await store.read("room-a", None)).epoch == empty.epoch
    await store.append("room-b", "x", 10)
    assert await client.pttl("hgws:seq:room-b") > EMPTY_RECORD_TTL * 1000, "a published group keeps SEQUENCE_TTL"
    await store.keep_alive(["room-b"])
    await store.read("room-b", None)
    assert await client.pttl("hgws:seq:room-b") > EMPTY_RECORD_TTL * 1000, "neither shortens it"
    await client.aclose()
