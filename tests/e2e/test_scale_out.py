"""Scale-out over a real redis-server: two server processes, clients on both, publishers in other processes.

Every test starts its own ``redis-server`` and servers (daphne and uvicorn serving the test project with
``REDIS_URL`` set); the clients are ``websockets`` clients of the notifications consumer, and the publisher is
``python -m tests.e2e.publisher`` in its own process, calling the sync ``group_send`` like a task worker.
"""
from __future__ import annotations

import asyncio
import json
import threading

import pytest

from tests.e2e.wsclients import LISTEN_PATH, collect, first_gap, open_clients, run_publisher, start_publisher

pytestmark = pytest.mark.timeout(300)

CLIENTS_PER_SERVER = 20
MESSAGES = 1000


def layer_env(layer: str) -> dict[str, str]:
    return {"HYPERGEN_WS_LAYER": "pubsub"} if layer == "pubsub" else {}


@pytest.mark.parametrize("layer", ["redis", "pubsub"])
async def test_two_servers_share_redis_and_every_client_gets_every_message_in_order(
        layer, redis_server, live_server_factory):
    env = layer_env(layer)
    servers = [live_server_factory(server=kind, redis_url=redis_server.url, env=env)
               for kind in ("daphne", "uvicorn")]
    clients = await open_clients([s.ws_url + LISTEN_PATH for s in servers], CLIENTS_PER_SERVER)
    try:
        publishing = asyncio.to_thread(run_publisher, redis_server.url, "--count", str(MESSAGES), env=env)
        result, *received = await asyncio.gather(publishing, *(collect(ws, MESSAGES, 120) for ws in clients))
        assert result.returncode == 0, result.stderr
        expected = list(range(MESSAGES))
        for n, got in enumerate(received):
            numbers = [data["i"] for data in got]
            server = servers[n // CLIENTS_PER_SERVER].server
            assert numbers == expected, (f"client {n} on {server}: {len(numbers)} of {MESSAGES}, "
                                         f"first difference at {first_gap(numbers, expected)}")
    finally:
        await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)


def redis_client_count(url: str) -> int:
    from redis import Redis

    with Redis.from_url(url) as client:
        return len(client.client_list())


async def test_sync_publisher_like_a_task_worker_keeps_one_connection_and_no_loop_errors(
        redis_server, live_server_factory):
    """1000 ``group_send`` calls, each from a new thread: no "event loop is closed", a bounded connection count."""
    server = live_server_factory(server="uvicorn", redis_url=redis_server.url)
    clients = await open_clients([server.ws_url + LISTEN_PATH], 5)
    baseline = redis_client_count(redis_server.url)
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], redis_client_count(redis_server.url))
            done.wait(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        publisher = start_publisher(redis_server.url, "--count", str(MESSAGES), "--threads")
        received = await asyncio.gather(*(collect(ws, MESSAGES, 180) for ws in clients))
        stdout, stderr = await asyncio.to_thread(publisher.communicate, timeout=180)
    finally:
        done.set()
        sampler.join()
        await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)
    assert publisher.returncode == 0, stderr
    assert "Event loop is closed" not in stderr and "Traceback" not in stderr, stderr
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["max_redis_connections"] <= 2, report
    assert peak[0] - baseline <= 2, f"{peak[0] - baseline} more Redis clients while publishing"
    for got in received:
        assert [data["i"] for data in got] == list(range(MESSAGES))


async def test_a_burst_from_four_publisher_processes_reaches_100_clients_complete_and_in_order(
        redis_server, live_server_factory):
    """4 x 2,500 messages as fast as four processes publish: with channels_redis's default capacity of 100 per
    channel about a quarter of them were lost in a measurement (docs/scaling.rst); ``GROUP_CAPACITY`` loses none."""
    publishers, per_publisher = 4, 2500
    server = live_server_factory(server="uvicorn", redis_url=redis_server.url)
    clients = await open_clients([server.ws_url + LISTEN_PATH], 100)
    try:
        runs = [asyncio.to_thread(run_publisher, redis_server.url, "--count", str(per_publisher), "--tag", str(p))
                for p in range(publishers)]
        *results, = await asyncio.gather(*runs)
        for result in results:
            assert result.returncode == 0, result.stderr
        received = await asyncio.gather(*(collect(ws, publishers * per_publisher, 180) for ws in clients))
        for n, got in enumerate(received):
            assert len(got) == publishers * per_publisher, f"client {n}: {len(got)} of {publishers * per_publisher}"
            for p in range(publishers):
                numbers = [data["i"] for data in got if data["tag"] == str(p)]
                assert numbers == list(range(per_publisher)), f"client {n}, publisher {p}: out of order or missing"
    finally:
        await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)
