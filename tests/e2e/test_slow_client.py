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
