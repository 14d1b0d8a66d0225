"""Server processes sharing Redis (hypergen_ws.delivery.heartbeats, the Redis engine's processes): beats and the dead."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from hypergen_ws.backends.layers import get_engine, get_store
from hypergen_ws.backends.redis import heartbeats as keys
from hypergen_ws.delivery import heartbeats
from hypergen_ws.delivery.hub import get_hub
from tests.recutil import use_layer


class RecordingListener:
    def __init__(self) -> None:
        self.died: list[str] = []
        self.reasserted = 0

    def needs_reassert(self, hub: Any) -> bool:
        return False

    async def reassert(self, hub: Any, process: str) -> None:
        self.reasserted += 1

    async def process_died(self, engine: Any, node_id: str) -> None:
        self.died.append(node_id)


@pytest.fixture
def listener():
    found = RecordingListener()
    heartbeats.add_listener(found)
    heartbeats.add_listener(found)  # once only
    assert heartbeats.listeners.count(found) == 1
    yield found
    heartbeats.listeners.remove(found)


async def test_a_process_beats_and_is_listed_live(settings, redis_url):
    use_layer("redis", settings, redis_url)
    settings.HYPERGEN_WS = {"PROCESS_HEARTBEAT_INTERVAL": 0.1, "PROCESS_TTL": 2.0}
    hub = get_hub()
    node = heartbeats.ensure_started(hub)
    assert node is not None and heartbeats.node_of(hub) is node and heartbeats.ensure_started(hub) is node
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while node.beats == 0 and loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert node.id in await node.engine.processes.live()
    node.task.cancel()


async def test_a_dead_process_is_swept_once_and_the_listeners_clean_up(settings, redis_url, listener):
    use_layer("redis", settings, redis_url)
    store: Any = get_store()
    await keys.beat(store, "gone:1", {"g": 3}, ttl=30.0, now=time.time() - 60)  # its last beat ran out
    assert await keys.group_counts(store, "gone:1") == {"g": 3}
    assert await heartbeats.sweep(get_engine()) == 1
    assert listener.died == ["gone:1"]
    assert await heartbeats.sweep(get_engine()) == 0, "claimed once"
    assert "gone:1" not in await get_engine().processes.live()


async def test_in_memory_hubs_have_no_heartbeat(settings):
    use_layer("memory", settings)
    assert heartbeats.ensure_started(get_hub()) is None


async def test_another_redis_server_answering_starts_new_epochs_and_a_new_instance_once(settings, redis_url, listener):
    use_layer("redis", settings, redis_url)
    settings.HYPERGEN_WS = {"PROCESS_HEARTBEAT_INTERVAL": 3600, "PROCESS_TTL": 7200}
    store: Any = get_store()
    run_id = await keys.server_run_id(store)
    assert run_id and len(run_id) == 40
    seq, epoch = await store.append("failover.group", '{"type":"message","data":1}', 10)
    node = heartbeats.ProcessHeartbeat(get_hub(), get_engine())
    node.task.cancel()  # beats are driven by hand below
    await node.beat()
    instance = node.instance
    assert node.run_id == run_id and listener.reasserted == 0
    node.run_id = "f" * 40  # the last beat reached another server: what a failover to a replica looks like
    await node.beat()
    assert node.instance != instance and node.run_id == run_id, "the instance got a new id: every process recovers"
    assert listener.reasserted == 1, "the listeners wrote their entries again"
    snapshot = await store.read("failover.group", None)
    assert snapshot.epoch != epoch and snapshot.seq == 0, "the group's history starts a new epoch"
    assert not await keys.declare_lost(store, instance), "a second process finds the id replaced already"


async def test_when_redis_lost_its_data_history_followers_get_a_resync_that_is_counted(settings, redis_url):
    from hypergen_ws.stats import counters as stats
    from tests import recovery_consumers as rc
    from tests.recutil import opened

    use_layer("redis", settings, redis_url)
    settings.HYPERGEN_WS = {"PROCESS_HEARTBEAT_INTERVAL": 30.0, "PROCESS_TTL": 60.0}
    stats.reset()
    comm = await opened(rc.rec_feed, room="lost")
    assert (await comm.receive())["type"] == "sync"
    node = heartbeats.node_of(get_hub())
    assert node is not None
    await node.recover(b"a new instance id")
    resync = await comm.receive()
    assert (resync["type"], resync["reason"]) == ("resync", "history_lost")
    assert stats.snapshot()["events"]["recoveries"] == {"tests.rec_feed": {"resynced.history_lost": 1}}
    await comm.disconnect()
    node.task.cancel()
