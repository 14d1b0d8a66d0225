"""A Redis Sentinel failover with real parts: a master, a replica and a sentinel (real redis-server processes), a
uvicorn server of the recovery app and this process publishing, all finding the master through the sentinel.

The master is killed (SIGKILL) while clients follow a group with history. Publishers get an error, not a hang,
while no master answers; the sentinel promotes the replica; the server notices that another Redis answers, starts
the histories in a new epoch and sends its clients an explicit ``resync``; publishing works again, through the
same layer objects, and a client that connects afterwards is served.
"""
from __future__ import annotations

import asyncio

import pytest
from channels.layers import channel_layers

from hypergen_ws import agroup_send
from tests import recovery_consumers as rc
from tests.e2e.recovering_client import RecoveringClient, wait_for

pytestmark = [pytest.mark.timeout(240), pytest.mark.django_db(transaction=True)]

APP = "tests.e2e.recovery_app:application"
SETTINGS = "tests.e2e.recovery_settings"
PUBLISH_TIMEOUT = 3.0


async def publish_retrying(group: str, data, attempts: int = 40) -> int:
    """Publish; right after a failover the first tries may still meet the old master."""
    for attempt in range(attempts):
        try:
            return await agroup_send(group, data)
        except (TimeoutError, ConnectionError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.25)
    raise AssertionError("unreachable")


async def test_failover_gives_resync_publishers_error_then_publishing_resumes(
        redis_sentinel, live_server_factory, settings):
    env = {"REDIS_SENTINELS": f"127.0.0.1:{redis_sentinel.sentinel.port}",
           "REDIS_MASTER_NAME": redis_sentinel.master_name}
    server = live_server_factory(APP, server="uvicorn", env=env, settings=SETTINGS, migrate=True)
    settings.CHANNEL_LAYERS = {"default": redis_sentinel.layer_config()}  # this process publishes through it too
    settings.HYPERGEN_WS = {"PUBLISH_TIMEOUT": PUBLISH_TIMEOUT}
    channel_layers.backends.clear()

    path = rc.rec_feed.reverse(room="failover")
    group = rc.rec_feed.group_name(room="failover")
    clients = [RecoveringClient([server.ws_url], path).start() for _ in range(3)]
    late: RecoveringClient | None = None
    try:
        await wait_for(lambda: all(c.synced for c in clients), 20, "every client connected")
        for i in range(20):
            await agroup_send(group, i)
        await wait_for(lambda: all(len(c.messages) == 20 for c in clients), 10, "the first 20")

        redis_sentinel.master.kill()  # a crash: the sentinel promotes the replica a second later
        with pytest.raises((TimeoutError, ConnectionError)):
            async with asyncio.timeout(PUBLISH_TIMEOUT + 10):  # a guard against a hang, not a measurement
                await agroup_send(group, "while no master answers")

        replica_port = redis_sentinel.replica.port
        await wait_for(lambda: redis_sentinel.sentinel.master_port() == replica_port, 30,
                       "the sentinel promoting the replica")
        await publish_retrying(group, "first after the failover")
        await wait_for(lambda: all(c.resyncs for c in clients), 30, lambda: f"every client got a resync: {clients}")
        for i in range(100, 120):
            await publish_retrying(group, i)
        await wait_for(lambda: all(c.messages[-1:] == [119] for c in clients), 20,
                       lambda: f"publishing resumed: {clients}")
        for n, client in enumerate(clients):
            tail = [m for m in client.messages if isinstance(m, int) and m >= 100]
            assert tail == list(range(100, 120)), f"client {n}: {tail}"
            assert client.messages[:20] == list(range(20)), f"client {n}"
            assert client.resyncs[0]["reason"] in ("history_lost", "epoch_changed"), client.resyncs

        late = RecoveringClient([server.ws_url], path).start()  # the server still serves new sockets
        await wait_for(lambda: late.synced, 20, "a client connecting after the failover")
        await publish_retrying(group, 200)
        await wait_for(lambda: all(c.messages[-1:] == [200] for c in [*clients, late]), 20,
                       "a frame to old and new clients")
        assert server.running, "the server did not stop or restart"
    finally:
        await asyncio.gather(*(c.stop() for c in [*clients, *([late] if late else [])]))


async def test_a_planned_failover_is_noticed_once_the_old_master_is_demoted(redis_sentinel, live_server_factory, settings):
    """SENTINEL FAILOVER demotes a master that keeps answering: pooled connections to it stay open and its INFO
    names the old server until the sentinel reconfigures it as a replica, closing its clients. The server then
    notices, starts a new epoch and resyncs its clients, so no seq of the old history is handed out twice."""
    from tests.support.servers import redis_command

    env = {"REDIS_SENTINELS": f"127.0.0.1:{redis_sentinel.sentinel.port}",
           "REDIS_MASTER_NAME": redis_sentinel.master_name}
    server = live_server_factory(APP, server="uvicorn", env=env, settings=SETTINGS, migrate=True)
    settings.CHANNEL_LAYERS = {"default": redis_sentinel.layer_config()}
    settings.HYPERGEN_WS = {"PUBLISH_TIMEOUT": PUBLISH_TIMEOUT}
    channel_layers.backends.clear()
    path, group = rc.rec_feed.reverse(room="planned"), rc.rec_feed.group_name(room="planned")
    clients = [RecoveringClient([server.ws_url], path).start() for _ in range(2)]
    try:
        await wait_for(lambda: all(c.synced for c in clients), 20, "every client connected")
        for i in range(10):
            await agroup_send(group, i)
        await wait_for(lambda: all(len(c.messages) == 10 for c in clients), 10, "the first 10")
        assert redis_command(redis_sentinel.sentinel.port, "SENTINEL", "FAILOVER",
                             redis_sentinel.master_name).startswith(b"+OK")
        await wait_for(lambda: redis_sentinel.sentinel.master_port() == redis_sentinel.replica.port, 30,
                       "the sentinel promoting the replica")
        # Noticed once the sentinel reconfigures the old master as a replica (closing its clients): Sentinel waits
        # for two INFO reports of it (10 s apart) first, and 30 s more when a stalled machine put it in TILT mode.
        await wait_for(lambda: all(c.resyncs for c in clients), 120, lambda: f"every client got a resync: {clients}")
        for i in range(100, 110):
            await publish_retrying(group, i)
        await wait_for(lambda: all(c.messages[-1:] == [109] for c in clients), 20, lambda: f"resumed: {clients}")
        for client in clients:
            assert [m for m in client.messages if isinstance(m, int) and m >= 100] == list(range(100, 110))
            assert client.duplicates == 0 and client.gaps == 0, client
    finally:
        await asyncio.gather(*(c.stop() for c in clients))
