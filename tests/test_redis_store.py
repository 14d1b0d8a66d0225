"""Group histories in Redis (hypergen_ws.backends.redis.store), against a real redis-server."""
from __future__ import annotations

import pytest
from channels.layers import get_channel_layer

from hypergen_ws.backends.layers import get_store
from hypergen_ws.backends.redis.store import RedisStore, crc_hash
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
    redis_server.kill()
    redis_server.start()
    for attempt in range(5):
        try:
            snapshot = await store.read("g", None)
            break
        except Exception:  # a pooled connection the restart closed
            if attempt == 4:
                raise
    assert snapshot.epoch != epoch and snapshot.seq == 0


def test_groups_go_to_the_hosts_the_layer_puts_them_on(settings, redis_url):
    use_layer("redis", settings, redis_url)
    layer = get_channel_layer()
    store = RedisStore.for_layer(layer)
    assert store.clients.index("any.group") == layer.consistent_hash("any.group")
    assert crc_hash("x", 1) == 0 and {crc_hash(f"g{i}", 4) for i in range(200)} == {0, 1, 2, 3}
