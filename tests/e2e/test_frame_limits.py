"""The servers' own websocket message limits (docs/security.rst, "Frame sizes"), on real uvicorn and daphne.

Started the documented way (``uvicorn --ws-max-size 1048576``; daphne's defaults), a server refuses a frame larger
than ``MAX_MESSAGE_SIZE`` from its header, before reading the payload: the client gets 1009 while most of the
frame is still unsent. Started with a larger limit, the first connection logs one WARNING naming the fix.
"""
from __future__ import annotations

import os
import struct

import pytest

from tests.e2e.wsclients import StuckClient, wait_until
from tests.support.servers import MAX_MESSAGE_SIZE, AsgiServer

pytestmark = pytest.mark.timeout(120)

PATH = "/ws/counter/increment/"  # perm=NO_PERM_REQUIRED: anyone may connect
DECLARED = 15 * 2**20
SENT = 256 * 1024  # of the frame's payload: the server must answer before it has the rest


def send_part_of_a_big_frame(server: AsgiServer) -> tuple[int, int | None, bool]:
    """Open a socket, send the header of a 15 MiB text frame and its first 256 KiB, and read what comes back:
    ``(text frames, close code, connection ended)``."""
    client = StuckClient(port=server.port, path=PATH, rcvbuf=1 << 16)
    try:
        client.sock.sendall(bytes((0x81, 0x80 | 127)) + struct.pack("!Q", DECLARED) + os.urandom(4) + b"x" * SENT)
        return client.read_rest(timeout=20)
    finally:
        client.close()


def warnings_in(server: AsgiServer) -> list[str]:
    return [line for line in server.log_path.read_text(errors="replace").splitlines()
            if "websocket messages" in line and "MAX_MESSAGE_SIZE" in line]


@pytest.mark.parametrize("server_kind", ["uvicorn", "daphne"])
def test_a_server_started_the_documented_way_refuses_a_big_frame_before_reading_it(server_kind, live_server_factory):
    server = live_server_factory(server=server_kind)
    if server_kind == "uvicorn":
        assert server.command()[-3:-1] == ["--ws-max-size", str(MAX_MESSAGE_SIZE)]
    for _ in range(2):
        frames, code, ended = send_part_of_a_big_frame(server)
        assert (code, ended) == (1009, True), f"{server_kind} answered {code}, ended={ended}: it waits for the frame"
        assert frames == 0
    assert server.running
    assert warnings_in(server) == [], "the documented limit is not reported"


@pytest.mark.parametrize(("server_kind", "args", "shown", "fix"), [
    ("uvicorn", ["--ws-max-size", str(16 * 2**20)], "of up to 16777216 bytes", "--ws-max-size 1048576"),
    ("daphne", ["--websocket-max-message-size", "0"], "of any size",
     "--websocket-max-message-size 1048576 --websocket-max-frame-size 1048576"),
])
def test_a_server_that_reads_bigger_messages_is_reported_once(server_kind, args, shown, fix, live_server_factory):
    from websockets.sync.client import connect

    server = live_server_factory(server=server_kind, server_args=args)
    for _ in range(3):
        with connect(server.ws_url + PATH, origin=server.url, open_timeout=30) as ws:  # type: ignore[arg-type]
            ws.send('{"args": [], "id": 1}')
            while '"reply"' not in (frame := str(ws.recv(timeout=20))):
                pass
    assert wait_until(lambda: warnings_in(server), 10), "no warning about the server's limit"
    [warning] = warnings_in(server)
    assert shown in warning and "MAX_MESSAGE_SIZE (1048576 bytes)" in warning and fix in warning, warning
    assert frame
