"""A group's history that goes back to an older copy and forward again, with real parts: the redis-server of a
daphne server loads a copy of itself taken earlier (``REPLICAOF`` another redis-server, then ``REPLICAOF NO
ONE``), then a newer one. That is what a Sentinel that swaps a master and a lagging replica back and forth shows a
server process: the same epoch, its seq lower, then higher again. The Python client (``hypergen_ws.client``) is
told where it stands each time and never hands the same (epoch, seq) frame to the application twice; the frames
it drops so are followed by a ``resync`` (``rolled_back``), since they may have been new ones under reused seqs.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from hypergen_ws import agroup_send
from hypergen_ws.client import connect
from tests import recovery_consumers as rc
from tests.e2e.recovering_client import wait_for
from tests.recutil import use_layer
from tests.support.chaos.proxy import BlackholeProxy
from tests.support.servers import RedisServer, redis_command, replication_info

pytestmark = [pytest.mark.timeout(180), pytest.mark.django_db(transaction=True)]

APP = "tests.e2e.recovery_app:application"
SETTINGS = "tests.e2e.recovery_settings"


async def load_copy(target: RedisServer, source: RedisServer) -> None:
    """``target`` takes every key of ``source`` (a full resync from it) and is a writable master again."""
    assert redis_command(target.port, "REPLICAOF", "127.0.0.1", str(source.port)).startswith(b"+OK")

    def synced() -> bool:
        info = replication_info(target.port)
        return "master_link_status:up" in info and "master_sync_in_progress:0" in info

    await wait_for(synced, 30, lambda: f"{target} loading the keys of {source}: {replication_info(target.port)}")
    assert redis_command(target.port, "REPLICAOF", "NO", "ONE").startswith(b"+OK")


async def test_a_history_that_goes_back_then_forward_never_hands_a_frame_over_twice(
        redis_server, live_server_factory, settings, tmp_path: Path):
    use_layer("redis", settings, redis_server.url)  # this process publishes through the server's Redis
    settings.HYPERGEN_WS = {"PUBLISH_TIMEOUT": 3.0}
    server = live_server_factory(APP, server="daphne", redis_url=redis_server.url, settings=SETTINGS, migrate=True)
    path, group = rc.rec_feed.reverse(room="rollback"), rc.rec_feed.group_name(room="rollback")
    proxy = await BlackholeProxy(server.port).start()
    frames: list[dict[str, Any]] = []

    def data() -> list[Any]:
        return [f["data"] for f in frames if f.get("type") == "message"]

    def resyncs() -> list[str]:
        return [f["reason"] for f in frames if f.get("type") == "resync"]

    older = RedisServer(log_dir=tmp_path / "older")
    newer = RedisServer(log_dir=tmp_path / "newer")
    try:
        async with connect(f"ws://127.0.0.1:{proxy.port}{path}", backoff_base=0.05, backoff_max=0.5,
                           headers={"Origin": server.url}) as conn:

            async def read() -> None:
                async for frame in conn.frames():
                    frames.append(frame)

            reader = asyncio.get_running_loop().create_task(read())
            await wait_for(lambda: conn.position.synced, 20, "the client connected")
            for i in range(5):
                await agroup_send(group, i)  # seqs 1-5
            await wait_for(lambda: len(data()) == 5, 20, lambda: frames)
            await load_copy(older, redis_server)  # a copy at seq 5
            for i in range(5, 10):
                await agroup_send(group, i)  # seqs 6-10
            await wait_for(lambda: len(data()) == 10, 20, lambda: frames)
            await load_copy(newer, redis_server)  # a copy at seq 10

            await load_copy(redis_server, older)  # back to seq 5, same epoch
            proxy.cut()  # the client reconnects with seq 10: the server tells it the group is at 5
            await wait_for(lambda: "unknown_position" in resyncs(), 30, lambda: frames)

            await load_copy(redis_server, newer)  # forward to seq 10 again
            proxy.cut()  # the client reconnects with seq 5; the server replays 6-10, which it handed over already
            await wait_for(lambda: conn.position.synced and conn.position.last_seq == 10, 30,
                           lambda: (conn.position, frames))
            await agroup_send(group, 10)  # seq 11
            await wait_for(lambda: data()[-1:] == [10], 20, lambda: frames)
            reader.cancel()

        assert data() == list(range(11)), f"each frame once, in order: {frames}"
        last_resync = max(i for i, f in enumerate(frames) if f.get("type") == "resync")
        assert frames[last_resync]["reason"] == "rolled_back", frames
        assert frames[last_resync + 1].get("data") == 10, frames
    finally:
        await proxy.close()
        older.stop()
        newer.stop()
