"""MAX_CONNECTIONS_PER_USER across server processes (hypergen_ws.features.connlimit) on a real redis-server: the
cap holds across processes, a killed process's sockets stop counting, nothing stays in Redis, and a frozen Redis
never holds a connect. In one process (the in-memory layer): tests/test_access.py."""
from __future__ import annotations

import asyncio
import time

import pytest
from django.contrib.auth.models import User
from redis import asyncio as aioredis

from hypergen_ws.delivery.heartbeats import node_of
from hypergen_ws.delivery.hub import get_hub
from hypergen_ws.decorators import Consumer
from hypergen_ws.features import connlimit
from hypergen_ws.testing import ConsumerCommunicator
from tests import sample_consumers as sc
from tests.recutil import OtherProcess, use_layer
from tests.users import make_user
from tests.wsutil import application

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(consumer: Consumer, user: User | None = None, timeout: float = 5) -> ConsumerCommunicator:
    """A socket of ``user`` (anonymous without one) that the test closes with ``disconnect()``; refused or not."""
    comm = ConsumerCommunicator(consumer, application=application, user=user, timeout=timeout)
    await comm.connect()
    return comm


async def outcome(comm: ConsumerCommunicator, quiet: float = 0.3) -> int | None:
    """The close code the server sent, or None when the socket stays open (nothing for ``quiet`` seconds)."""
    if comm.close_code is None:
        try:
            await comm.assert_nothing(quiet)
        except AssertionError:
            if comm.close_code is None:
                raise  # a frame, not the close
    return comm.close_code


async def redis_fields(redis_url: str, user: User) -> dict[str, int]:
    """The user's count per process in Redis."""
    client = aioredis.from_url(redis_url)
    try:
        raw = await client.hgetall(f"hgws:uconn:u:{user.pk}")
        return {k.decode(): int(v) for k, v in raw.items()}
    finally:
        await client.aclose()


async def redis_keys(redis_url: str, pattern: str) -> list[bytes]:
    client = aioredis.from_url(redis_url)
    try:
        return [key async for key in client.scan_iter(match=pattern)]
    finally:
        await client.aclose()


async def wait_for(condition, what: str, timeout: float = 15) -> None:
    """Poll ``condition`` (an async callable) until it is true; Redis gives no event to wait on."""
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.05)


def this_node_id() -> str:
    node = node_of(get_hub())
    assert node is not None
    return node.id


async def test_the_cap_holds_across_processes_and_nothing_stays_in_redis(settings, redis_url):
    use_layer("redis", settings, redis_url)
    settings.HYPERGEN_WS = {"MAX_CONNECTIONS_PER_USER": 2, "PROCESS_HEARTBEAT_INTERVAL": 0.2, "PROCESS_TTL": 2.0}
    sam, kim = await make_user("c_sam", "auth.view_user"), await make_user("c_kim", "auth.view_user")
    here = await connect(sc.guarded, sam)
    other = OtherProcess()  # a second server process: its own hub, heartbeat and process id
    try:
        there = await other.arun(connect(sc.listen_only, sam))
        fields = await redis_fields(redis_url, sam)
        assert sorted(fields.values()) == [1, 1] and this_node_id() in fields, fields
        # A third socket is refused in either process: the count is the user's across both.
        assert await outcome(await connect(sc.guarded, sam)) == 1008
        assert await other.arun(outcome(await other.arun(connect(sc.guarded, sam)))) == 1008
        kims = await connect(sc.guarded, kim)
        assert await outcome(kims) is None, "another user is not affected"
        # A socket that closes in the other process gives its place back.
        await other.arun(there.disconnect())
        assert list(await redis_fields(redis_url, sam)) == [this_node_id()]
        again = await connect(sc.listen_only, sam)
        assert await outcome(again) is None
        assert await redis_fields(redis_url, sam) == {this_node_id(): 2}
    finally:
        other.stop()
    for comm in (here, again):
        await comm.disconnect()
    # The user's last socket took the hash with it; only kim's (still open) is left, with a TTL.
    assert await redis_keys(redis_url, f"hgws:uconn:u:{sam.pk}") == []
    client = aioredis.from_url(redis_url)
    try:
        assert 0 < await client.ttl(f"hgws:uconn:u:{kim.pk}") <= 3600
        assert 0 < await client.ttl(f"hgws:puser:{this_node_id()}") <= 3600
    finally:
        await client.aclose()
    await kims.disconnect()
    assert await redis_keys(redis_url, "hgws:uconn:*") == [] and await redis_keys(redis_url, "hgws:puser:*") == []


async def test_the_sockets_of_a_killed_process_stop_counting_and_the_sweep_removes_them(settings, redis_url):
    use_layer("redis", settings, redis_url)
    settings.HYPERGEN_WS = {"MAX_CONNECTIONS_PER_USER": 2, "PROCESS_HEARTBEAT_INTERVAL": 0.2, "PROCESS_TTL": 1.0}
    sam = await make_user("c_sam", "auth.view_user")
    watcher = await connect(sc.listen_only)  # anonymous: this process's heartbeat runs, uncapped
    other = OtherProcess()
    try:
        doomed = [await other.arun(connect(sc.guarded, sam)) for _ in range(2)]
        assert list((await redis_fields(redis_url, sam)).values()) == [2]
        assert await outcome(await connect(sc.guarded, sam)) == 1008
        await other.hang()  # like kill -9: no more heartbeats, its sockets never say goodbye
        await wait_for(lambda: _no_fields(redis_url, sam), "the sweep of the dead process")
        assert await redis_keys(redis_url, "hgws:puser:*") == []
        fresh = [await connect(sc.guarded, sam) for _ in range(2)]
        assert [await outcome(comm) for comm in fresh] == [None, None]
        assert await redis_fields(redis_url, sam) == {this_node_id(): 2}
        assert await outcome(await connect(sc.guarded, sam)) == 1008
        del doomed
    finally:
        other.stop()
    for comm in [*fresh, watcher]:
        await comm.disconnect()
    assert await redis_keys(redis_url, "hgws:uconn:*") == []


async def _no_fields(redis_url: str, user: User) -> bool:
    return not await redis_fields(redis_url, user)


async def test_with_redis_frozen_a_connect_is_answered_and_the_cap_counts_this_process(settings, redis_server,
                                                                                       caplog):
    use_layer("redis", settings, redis_server.url)
    settings.HYPERGEN_WS = {"MAX_CONNECTIONS_PER_USER": 2, "PROCESS_HEARTBEAT_INTERVAL": 0.2, "PROCESS_TTL": 5.0,
                            "PUBLISH_TIMEOUT": 0.5}
    sam = await make_user("c_sam", "auth.view_user")
    first = await connect(sc.listen_only, sam)
    assert await redis_fields(redis_server.url, sam) == {this_node_id(): 1}
    redis_server.freeze()
    try:
        started = time.monotonic()
        # Answered although Redis does not answer: the cap and the group join each give up after PUBLISH_TIMEOUT.
        second = await connect(sc.listen_only, sam, timeout=10)
        print(f"a connect with Redis frozen answered after {time.monotonic() - started:.2f} s")
        assert await outcome(second) is None
        started = time.monotonic()
        third = await connect(sc.listen_only, sam, timeout=10)
        assert await outcome(third) == 1008, "this process's count (2) is the cap while Redis is frozen"
        print(f"the next connect (refused) answered after {time.monotonic() - started:.2f} s")
    finally:
        redis_server.thaw()
    unavailable = [r for r in caplog.records if getattr(r, "event", None) == "connection_count_unavailable"]
    assert len(unavailable) == 1 and unavailable[0].levelname == "WARNING", "one WARNING for the outage"
    # Back: a heartbeat writes this process's count again, and Redis counts across processes again.
    await wait_for(lambda: _has(redis_server.url, sam, 2), "this process's count written again")
    assert not connlimit.tables.down
    assert await outcome(await connect(sc.guarded, sam)) == 1008
    for comm in (first, second):
        await comm.disconnect()
    assert await redis_keys(redis_server.url, "hgws:uconn:*") == []


async def _has(redis_url: str, user: User, count: int) -> bool:
    return list((await redis_fields(redis_url, user)).values()) == [count]


async def test_a_socket_that_closes_while_the_counts_are_written_again_gives_its_place_back(settings, redis_server):
    use_layer("redis", settings, redis_server.url)
    settings.HYPERGEN_WS = {"MAX_CONNECTIONS_PER_USER": 2, "PROCESS_HEARTBEAT_INTERVAL": 0.2, "PROCESS_TTL": 60.0,
                            "PUBLISH_TIMEOUT": 0.5}
    sam = await make_user("c_sam", "auth.view_user")
    first = await connect(sc.listen_only, sam)
    redis_server.freeze()
    try:
        second = await connect(sc.listen_only, sam, timeout=10)  # counted here only: Redis does not answer
        assert await outcome(second) is None
        node = node_of(get_hub())
        assert node is not None
        # A rewrite of this process's counts ({sam: 2}) is on its way to the frozen Redis when both sockets close.
        rewrite = asyncio.create_task(connlimit.listener.reassert(node.hub, node.id))
        await asyncio.sleep(0.1)
        for comm in (first, second):
            await comm.disconnect()
    finally:
        redis_server.thaw()
    await rewrite
    # The rewrite landed with a count of 2; the table changed meanwhile, so it is written again, and again at the
    # heartbeat after the outage: no place stays taken.
    await wait_for(lambda: _no_fields(redis_server.url, sam), "the places of the closed sockets given back")
    await wait_for(lambda: _settled(get_hub()), "the counts written once more after the outage")
    assert await redis_fields(redis_server.url, sam) == {}
    again = [await connect(sc.guarded, sam) for _ in range(2)]
    assert [await outcome(comm) for comm in again] == [None, None], "sam can connect again"
    for comm in again:
        await comm.disconnect()
    assert await redis_keys(redis_server.url, "hgws:uconn:*") == []


async def _settled(hub) -> bool:
    return hub not in connlimit.tables.stale and hub not in connlimit.tables.down


async def test_an_admission_that_timed_out_and_ran_late_in_redis_is_taken_back(settings, redis_server):
    use_layer("redis", settings, redis_server.url)
    settings.HYPERGEN_WS = {"MAX_CONNECTIONS_PER_USER": 2, "PROCESS_HEARTBEAT_INTERVAL": 0.2, "PROCESS_TTL": 60.0,
                            "PUBLISH_TIMEOUT": 0.5}
    sam = await make_user("c_sam", "auth.view_user")
    watcher = await connect(sc.listen_only)  # anonymous: this process's heartbeat runs, uncapped
    redis_server.freeze()
    try:
        # The admission's script waits in the frozen Redis; the cap gives up after PUBLISH_TIMEOUT and counts here.
        late = await connect(sc.listen_only, sam, timeout=10)
        assert await outcome(late) is None
        await late.disconnect()  # closed before Redis runs the admission
    finally:
        redis_server.thaw()
    await wait_for(lambda: _settled(get_hub()), "the counts written again after the outage")
    assert await redis_fields(redis_server.url, sam) == {}, "the late admission is taken back"
    await watcher.disconnect()
    assert await redis_keys(redis_server.url, "hgws:uconn:*") == []
