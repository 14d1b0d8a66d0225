"""The transport port (hypergen_ws.backends.transport, .servers, .uvicorn, .daphne): frame bytes, which server a
connection has, direct writes to idle sockets."""
from __future__ import annotations

import asyncio

import pytest

from tests.support.sockets import Socket, started_outbox


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_text_frame_matches_the_websockets_library(size):
    from websockets.frames import Frame, Opcode

    from hypergen_ws.core.protocol import text_frame

    text = ("é" * size)[: max(0, size // 2)] + "x" * (size - size // 2)
    assert text_frame(text) == Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


def test_a_send_of_no_known_server_gets_the_plain_asgi_transport():
    import functools

    from hypergen_ws.backends import uvicorn
    from hypergen_ws.backends.servers import transport_for
    from hypergen_ws.backends.transport import ASGI

    async def plain_send(message):
        pass

    class Server:
        async def handle_reply(self, protocol, message):
            pass

    not_daphne = functools.partial(Server().handle_reply, object())  # its qualname is not daphne's
    for send in (plain_send, not_daphne, None):
        assert uvicorn.transport(send) is None
        assert transport_for(send) is ASGI
    assert ASGI.name == "asgi" and not ASGI.pings and ASGI.writer() is None
    assert not ASGI.report_backpressure(object()) and not ASGI.close_now(1013, 1.0)
    assert not ASGI.close_with_code(1013, 1.0)  # the ASGI close is the only way here


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
    from hypergen_ws.backends.daphne import DaphneTransport
    from hypergen_ws.backends.servers import transport_for

    def direct_writer(send):
        return transport_for(send).writer()

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
    assert isinstance(transport_for(daphne_send(tls)), DaphneTransport)
    with caplog.at_level("WARNING", logger="hypergen_ws"):
        assert direct_writer(daphne_send(tls)) is None
    assert caplog.records == []  # expected: TLS connections use the ASGI send, nothing to warn about
    layers._warned.discard("writing group frames to daphne's socket")
    with caplog.at_level("WARNING", logger="hypergen_ws"):
        assert direct_writer(daphne_send(object())) is None  # daphne's send, but no connection of known shape
    assert "writing group frames to daphne's socket falls back to the plain path" in caplog.text


def test_daphne_writes_only_the_close_codes_autobahn_refuses_itself():
    import types

    from hypergen_ws.backends.daphne import DaphneTransport

    frames = []
    protocol = types.SimpleNamespace(closeHandshakeTimeout=5.0,
                                     sendCloseFrame=lambda code, isReply: frames.append((code, isReply)))
    transport = DaphneTransport(protocol)
    assert transport.name == "daphne"
    for code in (1000, 3000, 4403, 4999, None, "1013"):
        assert not transport.close_with_code(code, 1.0)  # autobahn's sendClose (the ASGI close) sends these
    assert frames == []
    for code in (1008, 1012, 1013):
        assert transport.close_with_code(code, 2.0)
    assert frames == [(1008, False), (1012, False), (1013, False)] and protocol.closeHandshakeTimeout == 2.0
    assert transport.close_now(4410, 0.5) and frames[-1] == (4410, False) and protocol.closeHandshakeTimeout == 0.5
