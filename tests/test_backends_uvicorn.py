"""Direct writes to uvicorn's transport (hypergen_ws.backends.uvicorn): frame bytes, detection, idle sockets."""
from __future__ import annotations

import asyncio

import pytest

from tests.support.sockets import Socket, started_outbox


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_text_frame_matches_the_websockets_library(size):
    from websockets.frames import Frame, Opcode

    from hypergen_ws.backends.uvicorn import text_frame

    text = ("é" * size)[: max(0, size // 2)] + "x" * (size - size // 2)
    assert text_frame(text) == Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


def test_direct_writer_only_for_uvicorns_sansio_connections():
    import functools

    from hypergen_ws.backends.uvicorn import direct_writer

    async def plain_send(message):
        pass

    class Server:
        async def handle_reply(self, protocol, message):
            pass

    assert direct_writer(plain_send) is None
    assert direct_writer(functools.partial(Server().handle_reply, object())) is None
    assert direct_writer(None) is None


async def test_push_encoded_writes_directly_only_to_an_idle_socket():
    socket = Socket()
    outbox = started_outbox(socket)
    written: list[bytes] = []
    accept = [True]

    def direct(frame: bytes) -> bool:
        if accept[0]:
            written.append(frame)
        return accept[0]

    outbox.direct = direct
    outbox.push_encoded({"type": "websocket.send", "text": "a"}, b"A")
    assert written == [b"A"] and socket.sent == []
    accept[0] = False  # the server would not write at once: through the ASGI send
    outbox.push_encoded({"type": "websocket.send", "text": "b"}, b"B")
    assert socket.sent == ["b"]
    accept[0] = True
    socket.block()
    outbox.push_text("c")  # the socket is busy now: what follows queues, in order, and is not written directly
    outbox.push_encoded({"type": "websocket.send", "text": "d"}, b"D")
    assert written == [b"A"] and len(outbox) == 1
    socket.unblock()
    await asyncio.sleep(0.01)
    assert socket.sent == ["b", "c", "d"]


def test_daphnes_direct_writer_only_for_daphne_connections_over_plain_tcp(caplog):
    import functools
    import types

    from hypergen_ws.backends import layers
    from hypergen_ws.backends.daphne import direct_writer

    async def plain_send(message):
        pass

    class Server:  # what daphne passes as ``send``: functools.partial(Server.handle_reply, protocol)
        async def handle_reply(self, protocol, message):
            pass

    Server.handle_reply.__qualname__ = "Server.handle_reply"  # as in daphne.server

    def daphne_send(protocol):
        return functools.partial(Server().handle_reply, protocol)

    assert direct_writer(plain_send) is None
    tls = types.SimpleNamespace(transport=types.SimpleNamespace(TLS=True))  # not twisted.internet.tcp.Server
    with caplog.at_level("WARNING", logger="hypergen_ws"):
        assert direct_writer(daphne_send(tls)) is None
    assert caplog.records == []  # expected: TLS connections use the ASGI send, nothing to warn about
    layers._warned.discard("writing group frames to daphne's socket")
    with caplog.at_level("WARNING", logger="hypergen_ws"):
        assert direct_writer(daphne_send(object())) is None  # daphne's send, but no connection of known shape
    assert "writing group frames to daphne's socket falls back to the plain path" in caplog.text
