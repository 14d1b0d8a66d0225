"""Bounded resources against real servers: request bodies, rooms, dead processes, rate limits."""
from __future__ import annotations

import socket

import psutil
import pytest

pytestmark = pytest.mark.timeout(180)

MiB = 2**20


def rss(pid: int) -> int:
    """Resident memory of a server process, in bytes."""
    return int(psutil.Process(pid).memory_info().rss)


def post_huge_body(port: int, size: int, *, chunked: bool) -> tuple[bytes, int]:
    """POST ``size`` bytes to the publish endpoint without a key, as fast as the server takes them.

    Returns the start of the answer and how many bytes were sent before the server stopped reading.
    """
    head = "POST /hypergen_ws/publish/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {size}\r\n\r\n"
    chunk = b"x" * MiB
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        try:
            while sent < size:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                sent += len(chunk)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server answered and closed the connection: it stopped reading
            pass
        answer = b""
        try:
            while len(answer) < 400:
                data = sock.recv(4096)
                if not data:
                    break
                answer += data
        except OSError:
            pass
    return answer, sent


@pytest.mark.parametrize("server_kind", ["daphne", "uvicorn"])
def test_a_huge_unauthenticated_post_is_refused_before_it_is_read(server_kind, live_server_factory):
    server = live_server_factory(server=server_kind)
    assert server.process is not None
    limit = MiB  # PUBLISH_MAX_BODY_SIZE's default
    post_huge_body(server.port, 2 * MiB, chunked=False)  # warm up: the first request imports and allocates
    before = rss(server.process.pid)
    for chunked in (False, True):
        answer, sent = post_huge_body(server.port, 400 * MiB, chunked=chunked)
        assert answer.startswith(b"HTTP/1.1 413"), answer
        assert b"over the limit of 1048576 bytes" in answer
        assert sent < 100 * MiB, f"the server read {sent // MiB} MiB of a body it had to refuse"
    grown = rss(server.process.pid) - before
    assert grown < 3 * limit, f"{server_kind} grew by {grown / MiB:.1f} MiB for two refused 400 MiB bodies"


@pytest.mark.parametrize("server_kind", ["daphne", "uvicorn"])
async def test_a_client_flooding_calls_is_refused_then_closed_with_1008(server_kind, live_server_factory):
    import json

    from websockets.asyncio.client import connect as ws_connect
    from websockets.exceptions import ConnectionClosed

    from tests.e2e.wsclients import _origin

    server = live_server_factory(server=server_kind)
    url = server.ws_url + "/ws/counter/increment/"
    async with ws_connect(url, origin=_origin(url), open_timeout=30) as flooder, \
            ws_connect(url, origin=_origin(url), open_timeout=30) as honest:
        for n in range(300):  # the default limit: 20 calls/s, bursts of 40
            await flooder.send(json.dumps({"args": [], "id": n}))
        replies, limited = set(), set()
        try:
            while True:
                frame = json.loads(await flooder.recv())
                if frame["type"] == "reply":
                    replies.add(frame["id"])
                elif frame["type"] == "error":
                    assert frame["code"] == "rate_limited", frame
                    limited.add(frame["id"])
        except ConnectionClosed:
            pass
        assert flooder.close_code == 1008, flooder.close_code
        assert 40 <= len(replies) < 300 and limited and not replies & limited
        await honest.send(json.dumps({"args": [], "id": "after"}))  # another client is not affected
        while (frame := json.loads(await honest.recv())).get("type") != "reply":
            pass
        assert frame["id"] == "after"
