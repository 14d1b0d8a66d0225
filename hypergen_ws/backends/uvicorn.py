"""Group frames written straight to uvicorn's transport, encoded once per publish for every socket.

A group frame is the same text for every member, and a server never masks its frames, so without a websocket
extension the bytes on the wire are the same for every socket too. On uvicorn's ``websockets-sansio``
implementation (its default when the ``websockets`` package is installed) ``direct_writer`` finds the
connection behind the ASGI ``send`` and returns a function that writes those shared bytes to its transport, doing
what uvicorn's ``send`` does for a text frame minus building the frame again. It writes only while uvicorn itself
would write at once: the connection is open, no close was sent or received, its write buffer is below the
high-water mark, and no extension (``permessage-deflate``) was negotiated; otherwise it returns ``False`` and the
frame goes through the ASGI ``send`` as usual. Any other server, implementation or version gets ``None``: nothing
changes for it.
"""
from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import Any

from .layers import warn_fallback

logger = logging.getLogger("hypergen_ws")

_MAX_WRAPPERS = 8
_SANSIO = ("uvicorn.protocols.websockets.websockets_sansio_impl", "WebSocketsSansIOProtocol")

Writer = Callable[[bytes], bool]


def text_frame(text: str) -> bytes:
    """The bytes of an unmasked, unfragmented websocket text frame carrying ``text`` (RFC 6455, 5.2)."""
    data = text.encode()
    size = len(data)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 65536:
        head = struct.pack("!BBH", 0x81, 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 127, size)
    return head + data


def _uvicorn_protocol(send: Any) -> Any:
    for _ in range(_MAX_WRAPPERS):
        owner = getattr(send, "__self__", None)
        if owner is None:
            return None
        cls = type(owner)
        if (cls.__module__, cls.__qualname__) == _SANSIO:
            return owner
        send = getattr(owner, "real_send", None)  # channels.sessions.InstanceSessionWrapper
    return None


def direct_writer(send: Any) -> Writer | None:
    """A writer of encoded text frames for the connection behind ``send`` (an accepted socket), or ``None``."""
    protocol = _uvicorn_protocol(send)
    if protocol is None:
        return None
    try:
        from websockets.protocol import State

        conn = protocol.conn
        transport = protocol.transport
        writable = protocol.writable
        open_state = State.OPEN
        if conn.extensions or not protocol.handshake_complete or not hasattr(protocol, "close_sent"):
            return None
    except (AttributeError, ImportError):  # another uvicorn or websockets version: use the ASGI send
        warn_fallback("writing group frames to uvicorn's transport", "uvicorn",
                      "its websockets-sansio connection has an unexpected shape")
        return None
    write = transport.write

    def write_frame(frame: bytes) -> bool:
        if conn.state is open_state and writable.is_set() and not protocol.close_sent and not protocol.disconnected:
            write(frame)
            return True
        return False

    return write_frame
