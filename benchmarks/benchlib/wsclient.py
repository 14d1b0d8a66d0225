"""A minimal websocket client (RFC 6455) on a bare ``asyncio.Protocol``.

The benchmarks need thousands of clients on the same small machine as the server, so the client side must cost
as little CPU as possible: this one does the opening handshake by hand, parses unmasked server frames straight
out of the receive buffer and answers pings: the server's websocket pings, and hypergen_ws's protocol pings
(``{"type": "ping"}``, answered with ``{"type": "pong"}`` before the frame is handed on). It offers no extension (no ``permessage-deflate``), so every server
under test sends plain frames. It is a measuring instrument, not a general-purpose client.
"""
from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import Callable

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
PROTOCOL_PING, PROTOCOL_PONG = b'{"type":"ping"}', b'{"type":"pong"}'


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """Return one final, masked client frame (clients must mask, RFC 6455 §5.3)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    mask = os.urandom(4)
    if n:
        key = (mask * (n // 4 + 1))[:n]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return header + mask + payload


class HandshakeError(ConnectionError):
    """The server answered the upgrade request with something other than ``101``."""


class WSClient(asyncio.Protocol):
    """One websocket connection; ``on_message(payload_bytes)`` is called for every complete text frame."""

    def __init__(self, host: str, port: int, path: str, on_message: Callable[[bytes], None]) -> None:
        self.host, self.port, self.path = host, port, path
        self.on_message = on_message
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.close_code: int | None = None
        self._buf = bytearray()
        self._handshaken = False
        self._fragments: list[bytes] = []

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are no asyncio.Transport
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: http://{self.host}:{self.port}\r\n\r\n"
        )
        transport.write(request.encode())

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status_line = bytes(buf[: buf.find(b"\r\n")])
            if b" 101 " not in status_line + b" ":
                if not self.opened.done():
                    self.opened.set_exception(HandshakeError(status_line.decode(errors="replace")))
                self.transport.close()  # type: ignore[union-attr]
                return
            del buf[: end + 4]
            self._handshaken = True
            if not self.opened.done():
                self.opened.set_result(None)
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                (length,) = struct.unpack_from("!H", buf, pos + 2)
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                (length,) = struct.unpack_from("!Q", buf, pos + 2)
                head = 10
            if b1 & 0x80:  # servers must not mask, but accept it
                head += 4
            if size - pos < head + length:
                break
            payload = bytes(buf[pos + head : pos + head + length])
            if b1 & 0x80:
                mask = buf[pos + head - 4 : pos + head]
                payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
            pos += head + length
            self._frame(b0 & 0x80, b0 & 0x0F, payload)
        if pos:
            del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("connection closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    # frames

    def _frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode == OP_TEXT or opcode == OP_BINARY:
            if payload == PROTOCOL_PING:
                self.transport.write(encode_frame(OP_TEXT, PROTOCOL_PONG))  # type: ignore[union-attr]
            if fin:
                self.on_message(payload)
            else:
                self._fragments = [payload]
        elif opcode == OP_CONT:
            self._fragments.append(payload)
            if fin:
                self.on_message(b"".join(self._fragments))
                self._fragments = []
        elif opcode == OP_PING:
            self.transport.write(encode_frame(OP_PONG, payload))  # type: ignore[union-attr]
        elif opcode == OP_CLOSE:
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            if not self.transport.is_closing():  # type: ignore[union-attr]
                self.transport.write(encode_frame(OP_CLOSE, payload[:2]))  # type: ignore[union-attr]
                self.transport.close()  # type: ignore[union-attr]

    # API

    def send_text(self, data: bytes) -> None:
        """Send one text frame (``data`` is UTF-8 already)."""
        self.transport.write(encode_frame(OP_TEXT, data))  # type: ignore[union-attr]

    def close(self) -> None:
        """Start the closing handshake (code 1000) and drop the connection."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(OP_CLOSE, struct.pack("!H", 1000)))
            self.transport.close()


async def connect(host: str, port: int, path: str, on_message: Callable[[bytes], None],
                  timeout: float = 30.0) -> WSClient:
    """Open one connection and wait for the ``101`` answer; raise on refusal or timeout."""
    loop = asyncio.get_running_loop()
    _, proto = await asyncio.wait_for(
        loop.create_connection(lambda: WSClient(host, port, path, on_message), host, port), timeout
    )
    await asyncio.wait_for(asyncio.shield(proto.opened), timeout)
    return proto
