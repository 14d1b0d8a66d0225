"""The transport port on uvicorn: group frames written straight to its transport, encoded once per publish for
every socket; closes at once; its own pings.

A group frame is the same text for every member, and a server never masks its frames, so without a websocket
extension the bytes on the wire are the same for every socket too. On uvicorn's ``websockets-sansio``
implementation (its default when the ``websockets`` package is installed) ``transport`` finds the connection
behind the ASGI ``send``, and its ``writer()`` is a function that writes those shared bytes to its transport,
doing what uvicorn's ``send`` does for a text frame minus building the frame again. It writes only while uvicorn itself
would write at once: the connection is open, no close was sent or received, its write buffer is below the
high-water mark, and no extension (``permessage-deflate``) was negotiated; otherwise it returns ``False`` and the
frame goes through the ASGI ``send`` as usual. Any other server, implementation or version gets ``None``: nothing
changes for it.

``take_pongs`` makes the heartbeat's pongs end where uvicorn parses them: a pong frame is not queued for the
application, whose task does not wake for it (and uvicorn does not pause and resume reading for it).
``replace_pings`` stops uvicorn's own keepalive pings on a connection the heartbeat pings: they would come every
``--ws-ping-interval`` seconds however busy the connection, and the heartbeat finds a dead client already.

``close_now`` closes a connection whose client stopped reading: uvicorn's ``send`` waits until the write buffer
drains, which it never does, and closing the transport waits for the same; so the close frame is written behind
the buffered frames (the client gets it if it reads again) and the connection is aborted ``grace`` seconds later
unless the client answered the close.

``incoming_limit`` reads the largest message the connection behind the ASGI ``send`` reads into memory before the
application sees it: uvicorn's ``--ws-max-size`` (``Config.ws_max_size``, 16 MiB by default), which every one of
its websocket implementations applies while a message arrives (a frame whose header declares more is refused with
1009 before its payload is read).
"""
from __future__ import annotations

import logging
import math
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from .layers import warn_fallback
from .signals import on_terminate
from .transport import Pausable, Transport, Writer

logger = logging.getLogger("hypergen_ws")

_MAX_WRAPPERS = 8
_SANSIO = ("uvicorn.protocols.websockets.websockets_sansio_impl", "WebSocketsSansIOProtocol")
_WS_IMPLEMENTATIONS = "uvicorn.protocols.websockets."
#: How to set the limit ``incoming_limit`` reads, for the message that says it is too high.
LIMIT_SETTING = "start uvicorn with --ws-max-size {size} (uvicorn.run(..., ws_max_size={size}))"


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


def _uvicorn_connection(send: Any) -> Any:
    """The protocol object of any of uvicorn's websocket implementations behind ``send``, or ``None``."""
    for _ in range(_MAX_WRAPPERS):
        owner = getattr(send, "__self__", None)
        if owner is None:
            return None
        if type(owner).__module__.startswith(_WS_IMPLEMENTATIONS):
            return owner
        send = getattr(owner, "real_send", None)  # channels.sessions.InstanceSessionWrapper
    return None


def incoming_limit(send: Any) -> tuple[float | None, str] | None:
    """``(largest message in bytes, how to set it)`` for uvicorn's connection behind ``send``: ``--ws-max-size``
    (``math.inf`` for none; ``None`` when this uvicorn keeps it elsewhere); ``None`` for another server."""
    connection = _uvicorn_connection(send)
    if connection is None:
        return None
    size = getattr(getattr(connection, "config", None), "ws_max_size", 0)
    if size is None:
        return math.inf, LIMIT_SETTING
    return (float(size) if isinstance(size, int) and size > 0 else None), LIMIT_SETTING


def transport(send: Any) -> UvicornTransport | None:
    """The transport of uvicorn's ``websockets-sansio`` connection behind ``send``, or None (another server)."""
    protocol = _uvicorn_protocol(send)
    return None if protocol is None else UvicornTransport(protocol)


class UvicornTransport(Transport):
    """What uvicorn's ``websockets-sansio`` connection can do besides ASGI (one small object per connection)."""

    __slots__ = ("protocol",)
    name = "uvicorn"

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol

    def on_stop(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], Awaitable[Any]]) -> bool:
        """uvicorn stops on SIGTERM: ``callback`` runs before uvicorn's own handler
        (:mod:`hypergen_ws.backends.signals`), and uvicorn stops listening first."""
        return on_terminate(loop, callback, _stop_listening)

    @property
    def pings(self) -> bool:
        """uvicorn pings every ``--ws-ping-interval`` seconds (20 by default; 0 or None: never)."""
        interval = getattr(self.protocol, "ping_interval", None)
        return isinstance(interval, (int, float)) and interval > 0

    def take_pongs(self, text: str, heard: Callable[[], None]) -> bool:
        """uvicorn hands each text frame to ``handle_text`` as it parses it; the connection's own ``handle_text``
        calls ``heard()`` for a pong and passes every other frame on (nothing is queued, no task wakes)."""
        protocol = self.protocol
        handle_text = getattr(protocol, "handle_text", None)
        if not callable(handle_text):
            warn_fallback("taking the heartbeat's pongs out as they arrive", "uvicorn",
                          "its websockets-sansio connection has no handle_text")
            return False
        payload = text.encode()

        def take(event: Any) -> None:
            if event.fin and event.data == payload:
                heard()
                return
            handle_text(event)

        protocol.handle_text = take
        return True

    def replace_pings(self) -> bool:
        """uvicorn pings every connection every ``--ws-ping-interval`` seconds, busy or not; on a connection the
        heartbeat pings, those pings stop (``stop_keepalive``, and no interval for its ``start_keepalive``)."""
        protocol = self.protocol
        stop = getattr(protocol, "stop_keepalive", None)
        if not callable(stop) or not hasattr(protocol, "ping_interval"):
            warn_fallback("leaving the pings to the heartbeat", "uvicorn",
                          "its websockets-sansio connection has no stop_keepalive")
            return False
        protocol.ping_interval = None
        stop()
        return True

    def report_backpressure(self, outbox: Pausable) -> bool:
        """uvicorn's ``send`` waits while the transport's write buffer is above its high-water mark."""
        return True

    def writer(self) -> Writer | None:
        """A writer of encoded text frames to the transport, or None (an extension, or an unexpected shape)."""
        protocol = self.protocol
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
        return _SansIOWriter(protocol, conn, writable, transport.write, open_state)

    def close_now(self, code: int, grace: float) -> bool:
        """Write a close frame with ``code`` without waiting for the write buffer, and drop the connection
        ``grace`` seconds later unless the closing handshake completed."""
        protocol = self.protocol
        try:
            if protocol.close_sent or protocol.disconnected:
                return True
            transport, conn = protocol.transport, protocol.conn
            protocol.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": ""})
            conn.send_close(code, "")
            transport.write(b"".join(conn.data_to_send()))
            protocol.close_sent = True
            if protocol.close_timer is not None:
                protocol.close_timer.cancel()
            protocol.close_timer = protocol.loop.call_later(grace, transport.abort)
        except Exception:  # another uvicorn or websockets version: the ASGI send is tried instead
            warn_fallback("closing connections at once", "uvicorn",
                          "its websockets-sansio connection has an unexpected shape")
            return False
        return True


def _stop_listening(handler: Any) -> None:
    """Close uvicorn's listening sockets: its SIGTERM handler is ``Server.handle_exit``, and the ``Server`` keeps
    them in ``servers`` (asyncio servers; uvicorn's own shutdown closes them again, which does nothing)."""
    servers = getattr(getattr(handler, "__self__", None), "servers", None)
    if not isinstance(servers, list):
        warn_fallback("refusing new connections while shutting down", "uvicorn", "its Server has no servers list")
        return
    for server in servers:
        server.close()


class _SansIOWriter:
    """``UvicornTransport.writer``'s writer for one connection (a small object: one per open socket)."""

    __slots__ = ("protocol", "conn", "writable", "write", "open_state")

    def __init__(self, protocol: Any, conn: Any, writable: Any, write: Callable[[bytes], None], open_state: Any) -> None:
        self.protocol, self.conn, self.writable, self.write, self.open_state = protocol, conn, writable, write, open_state

    def __call__(self, frame: bytes) -> bool:
        protocol = self.protocol
        if (self.conn.state is self.open_state and self.writable.is_set() and not protocol.close_sent
                and not protocol.disconnected):
            self.write(frame)
            return True
        return False
