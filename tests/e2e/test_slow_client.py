"""A client that stops reading is cut off; the others keep receiving everything, in order, on time.

Real servers (uvicorn and daphne) serve the test project over a real redis-server; the stuck client is a raw
TCP websocket client that completes the handshake and never reads again (a 4 KiB receive buffer). The publisher
runs in its own process and sends 10 KB messages, so the stuck connection's kernel buffers fill quickly.
"""
from __future__ import annotations

import asyncio

import pytest

from tests.e2e.wsclients import LISTEN_PATH, StuckClient, collect, first_gap, open_clients, run_publisher
from tests.support.servers import log_tail

pytestmark = pytest.mark.timeout(300)

MESSAGES = 3000
PAD = 10_000


@pytest.mark.parametrize("server_kind", ["uvicorn", "daphne"])
async def test_a_client_that_stops_reading_is_closed_and_the_others_get_everything(
        server_kind, redis_server, live_server_factory):
    server = live_server_factory(server=server_kind, redis_url=redis_server.url)
    stuck = StuckClient(server.port)
    clients = await open_clients([server.ws_url + LISTEN_PATH], 3)
    try:
        publishing = asyncio.to_thread(run_publisher, redis_server.url, "--count", str(MESSAGES),
                                       "--pad", str(PAD))
        result, *received = await asyncio.gather(publishing, *(collect(ws, MESSAGES, 180) for ws in clients))
        assert result.returncode == 0, result.stderr
        expected = list(range(MESSAGES))
        for got in received:
            numbers = [data["i"] for data in got]
            assert numbers == expected, f"{len(numbers)} of {MESSAGES}, first gap at {first_gap(numbers, expected)}"
        log = log_tail(server.log_path, 400)
        assert "frames behind" in log, log
        # Once the stuck client reads again it finds a bounded number of frames, then the end of the connection.
        frames, close_code, ended = await asyncio.to_thread(stuck.read_rest, 30)
        assert frames < MESSAGES - 500, f"{frames} frames were kept for a client that did not read"
        assert close_code == 1013 or ended, (frames, close_code, ended)
    finally:
        stuck.close()
        await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)


@pytest.mark.parametrize("server_kind", ["uvicorn", "daphne"])
async def test_a_client_cut_off_gets_1013_when_it_reads_again_and_is_dropped_when_it_never_does(
        server_kind, redis_server, live_server_factory):
    import time

    import psutil

    from tests.e2e.wsclients import start_publisher, wait_until

    server = live_server_factory(server=server_kind, redis_url=redis_server.url)
    assert server.process is not None
    comes_back, gone_for_good = StuckClient(server.port), StuckClient(server.port)
    gone_port = gone_for_good.sock.getsockname()[1]
    publisher = start_publisher(redis_server.url, "--count", "100000", "--pad", str(PAD))
    try:
        cut_off = await asyncio.to_thread(
            wait_until, lambda: log_tail(server.log_path, 400).count("frames behind") >= 2, 120)
        assert cut_off, log_tail(server.log_path, 50)
        frames, close_code, _ended = await asyncio.to_thread(comes_back.read_rest, 10)
        assert close_code == 1013, (frames, close_code)
        start = time.monotonic()

        def dropped() -> bool:
            connections = psutil.Process(server.process.pid).net_connections("tcp")
            return not any(c.laddr and c.raddr and c.raddr.port == gone_port for c in connections)

        assert await asyncio.to_thread(wait_until, dropped, 30), "the server keeps the connection of a dead reader"
        print(f"{server_kind}: the connection of a client that never read again was dropped "
              f"{time.monotonic() - start:.1f} s after the other one got its 1013")
    finally:
        publisher.kill()
        publisher.communicate()
        comes_back.close()
        gone_for_good.close()
