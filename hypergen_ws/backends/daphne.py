"""The transport port on daphne: group frames written straight to the socket, write backpressure (its ASGI ``send``
never waits), closes at once and with codes autobahn refuses, its own pings. (Request bodies refused while they
arrive: :mod:`hypergen_ws.backends.daphne_bodies`.)

**Direct writes.** daphne's ``send`` for a text frame goes through autobahn (which builds the frame and formats a
debug log line whether debug logging is on or not) and Twisted (which buffers the bytes, registers the socket
with the event loop's selector and writes it on the next turn, then unregisters it): several times what the
write itself costs. A group frame is the same bytes for every member (a server never masks, and without a
websocket extension nothing else changes them), so ``DaphneTransport.writer`` returns a function that writes them
to the connection's socket at once, the way uvicorn's transport does: only while the autobahn connection is open,
has no per-message compression and nothing queued, and Twisted's transport is a plain TCP one (no TLS) with an
empty write buffer; what the kernel does not take goes into Twisted's buffer (``transport.write``), where it
counts towards the producer's pause below. Otherwise it returns ``False`` and the frame goes through the ASGI
``send``.

**Backpressure.** uvicorn's ``send`` waits while the connection's write buffer is above its high-water mark, so an
outbox sees a client that stops reading as a send that does not finish. daphne's ``send`` hands every frame to Twisted at
once, and Twisted buffers without limit unless a *streaming producer* is registered on the connection: then it
calls ``pauseProducing()`` when more than 64 KiB wait and ``resumeProducing()`` when the buffer is empty.
``report_backpressure`` registers such a producer that pauses and resumes the socket's outbox, so frames wait
(and count towards ``SEND_QUEUE_LIMIT``) in the outbox instead of in Twisted.

Finding daphne's connection goes through what daphne and Channels pass to the application: daphne's ``send``
is ``functools.partial(Server.handle_reply, protocol)``, and Channels' session middleware wraps it in a bound
method whose object keeps it as ``real_send``. When the chain looks different (another server, other
middleware) ``transport`` finds no connection; daphne then only drops a client that stops reading when its
keepalive ping goes unanswered (``--ping-interval`` + ``--ping-timeout``, 20 + 30 s by default).

**Close codes.** autobahn's ``sendClose`` refuses codes outside 1000 and 3000-4999, so daphne cannot send 1008,
1012 or 1013 through ASGI; ``close_with_code`` writes such a close frame itself, and ``close_now`` any close frame.

**Frame sizes.** autobahn refuses a message over ``maxMessagePayloadSize`` (or a frame over
``maxFramePayloadSize``) as soon as a frame header says so, before its payload is read; daphne sets both from
``--websocket-max-message-size`` and ``--websocket-max-frame-size`` (1 MiB by default since daphne 4.2.2; under
``runserver`` from the ``DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE`` and ``DAPHNE_WEBSOCKET_MAX_FRAME_SIZE`` settings since
4.2.3). ``incoming_limit`` reads them from the connection. autobahn then drops the TCP connection (the client sees
1006) unless ``failByDrop`` is off, which ``transport`` does per connection: the client gets a close frame with 1009,
as on uvicorn.

**Pings.** daphne pings a connection that sent nothing for ``--ping-interval`` seconds (20 by default) and drops
it when the pong does not come within ``--ping-timeout`` (30). ``take_pongs`` makes the protocol heartbeat's
pongs end where autobahn hands over each message: they are not queued for the application, whose task does not
wake for them.
"""
from __future__ import annotations

import functools
import logging
import math
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..core.logs import fields
from .layers import warn_fallback
from .signals import on_terminate
from .transport import Pausable, Transport, Writer

logger = logging.getLogger("hypergen_ws")

_MAX_WRAPPERS = 8
_TCP_SERVER = ("twisted.internet.tcp", "Server")


class OutboxProducer:
    """A Twisted streaming producer (``IPushProducer``) that pauses and resumes an outbox."""

    __slots__ = ("outbox",)

    def __init__(self, outbox: Pausable) -> None:
        self.outbox = outbox

    def pauseProducing(self) -> None:  # noqa: N802 - Twisted's interface
        self.outbox.pause()

    def resumeProducing(self) -> None:  # noqa: N802
        self.outbox.resume()

    def stopProducing(self) -> None:  # noqa: N802 - the connection is gone; the disconnect event follows
        self.outbox.resume()


def daphne_protocol(send: Any) -> Any:
    """daphne's websocket protocol object behind an ASGI ``send`` callable, or ``None``."""
    for _ in range(_MAX_WRAPPERS):
        if isinstance(send, functools.partial):
            func = getattr(send.func, "__func__", send.func)
            if getattr(func, "__qualname__", "") == "Server.handle_reply" and send.args:
                protocol = send.args[0]
                return protocol
            return None
        owner = getattr(send, "__self__", None)
        inner = getattr(owner, "real_send", None)  # channels.sessions.InstanceSessionWrapper
        if inner is None:
            return None
        send = inner
    return None


#: How to set the limits ``incoming_limit`` reads, for the message that says they are too high.
LIMIT_SETTING = ("start daphne with --websocket-max-message-size {size} --websocket-max-frame-size {size} (under "
                 "runserver, daphne 4.2.3+: DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE = DAPHNE_WEBSOCKET_MAX_FRAME_SIZE = "
                 "{size} in settings)")


def incoming_limit(send: Any) -> tuple[float | None, str] | None:
    """``(largest message in bytes, how to set it)`` for daphne's connection behind ``send``: autobahn's
    ``maxMessagePayloadSize`` (``math.inf`` for 0, no limit; ``None`` when the connection has no such option);
    ``None`` for another server."""
    protocol = daphne_protocol(send)
    if protocol is None:
        return None
    size = getattr(protocol, "maxMessagePayloadSize", None)
    if not isinstance(size, int) or size < 0:
        return None, LIMIT_SETTING
    return (float(size) if size > 0 else math.inf), LIMIT_SETTING


def _autobahn_allows(code: int) -> bool:
    return code == 1000 or 3000 <= code <= 4999


def transport(send: Any) -> DaphneTransport | None:
    """The transport of daphne's connection behind ``send``, or None (another server or middleware chain).

    It also switches autobahn's ``failByDrop`` off for the connection, so that a frame over daphne's size limit
    (or another protocol error) is answered with a close frame (1009) rather than a dropped TCP connection."""
    protocol = daphne_protocol(send)
    if protocol is None:
        return None
    if isinstance(getattr(protocol, "failByDrop", None), bool):
        protocol.failByDrop = False  # a frame over the size limit gets a close frame with 1009, not a dropped TCP
    return DaphneTransport(protocol)


class DaphneTransport(Transport):
    """What daphne's (autobahn on Twisted) connection can do besides ASGI (one small object per connection)."""

    __slots__ = ("protocol",)
    name = "daphne"

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol

    def on_stop(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], Awaitable[Any]]) -> bool:
        """daphne stops on SIGTERM: ``callback`` runs before daphne's own handler
        (:mod:`hypergen_ws.backends.signals`), and daphne stops listening first."""
        return on_terminate(loop, callback, self._stop_listening)

    def _stop_listening(self, handler: Any) -> None:
        """Stop daphne's listening ports: its ``Server.listeners`` are the Deferreds of Twisted's ``listen()``,
        whose results are the ports (daphne's own shutdown stops them again, which does nothing)."""
        listeners = getattr(getattr(self.protocol, "server", None), "listeners", None)
        if not isinstance(listeners, list):
            warn_fallback("refusing new connections while shutting down", "daphne", "its Server has no listeners")
            return
        for deferred in listeners:
            stop = getattr(getattr(deferred, "result", None), "stopListening", None)
            if callable(stop):
                stop()

    @property
    def pings(self) -> bool:
        """daphne pings a connection idle for ``--ping-interval`` seconds (its ``Server.ping_interval``)."""
        interval = getattr(getattr(self.protocol, "server", None), "ping_interval", None)
        return isinstance(interval, (int, float)) and interval > 0

    def take_pongs(self, text: str, heard: Callable[[], None]) -> bool:
        """autobahn hands each message to the connection's ``onMessage``; its own ``onMessage`` calls ``heard()``
        for a pong (and notes the sign of life, as daphne does, so daphne's own ping waits) and passes every other
        message on to daphne's."""
        protocol = self.protocol
        on_message = getattr(protocol, "onMessage", None)
        if not callable(on_message) or not hasattr(protocol, "last_ping"):
            warn_fallback("taking the heartbeat's pongs out as they arrive", "daphne",
                          "its protocol has no onMessage or last_ping")
            return False
        payload = text.encode()

        def take(data: bytes, is_binary: bool) -> None:
            if not is_binary and data == payload:
                protocol.last_ping = time.time()
                heard()
                return
            on_message(data, is_binary)

        protocol.onMessage = take
        return True

    def close_with_code(self, code: object, grace: float) -> bool:
        """Close with a code autobahn refuses to send through its ``sendClose`` (1001-2999: 1008 policy violation,
        1011, 1012 service restart, 1013 try again later), writing the close frame itself; False for any other
        code (the ASGI ``websocket.close`` does it)."""
        if not isinstance(code, int) or _autobahn_allows(code):
            return False
        return self.close_now(code, grace)

    def close_now(self, code: int, grace: float) -> bool:
        """Write a close frame with ``code`` (Twisted sends it behind what it buffered); the peer then has
        ``grace`` seconds to answer the close (a client that stopped reading gets its close frame if it reads again
        within them), after which daphne drops the TCP connection."""
        protocol = self.protocol
        send_frame = getattr(protocol, "sendCloseFrame", None)
        if not callable(send_frame) or not hasattr(protocol, "closeHandshakeTimeout"):
            warn_fallback(f"closing websockets with code {code}", "autobahn", "its protocol has no sendCloseFrame")
            return False
        protocol.closeHandshakeTimeout = grace  # a per-connection copy of the factory's option
        try:
            send_frame(code=code, isReply=False)
        except Exception:  # not open (yet, or any more): nothing to close
            logger.debug("Could not write a close frame with code %s", code, exc_info=True,
                         extra=fields("close_frame_failed", code=code))
        return True

    def report_backpressure(self, outbox: Pausable) -> bool:
        """Register an ``OutboxProducer`` on the connection: Twisted pauses ``outbox`` when its buffer is full."""
        protocol = self.protocol
        transport = getattr(protocol, "transport", None)
        if not hasattr(protocol, "registerProducer") or not hasattr(transport, "registerProducer"):
            warn_fallback("bounding daphne's write buffer", "daphne", "its connection has no registerProducer")
            return False
        current = getattr(transport, "producer", None)
        if current is not None:
            # After the websocket upgrade the transport still names daphne's HTTP channel as its producer; that
            # channel no longer owns the connection. Anything else is left alone.
            if not _is_http_channel(current):
                return False
            transport.unregisterProducer()  # type: ignore[union-attr]  # checked above: it has registerProducer
        try:
            protocol.registerProducer(OutboxProducer(outbox), True)
        except Exception:
            warn_fallback("bounding daphne's write buffer", "daphne", "registering a producer failed")
            logger.debug("Could not register a producer on daphne's connection", exc_info=True,
                         extra=fields("daphne_producer_failed"))
            return False
        return True

    def writer(self) -> Writer | None:
        """A writer of encoded text frames to the connection's socket, or None: for a TLS connection or one with
        ``permessage-deflate``, and (with a WARNING once) when the connection does not have the expected shape
        (another daphne, autobahn or Twisted version)."""
        protocol = self.protocol
        try:
            transport = protocol.transport
            cls = type(transport)
            if (cls.__module__, cls.__qualname__) != _TCP_SERVER or getattr(transport, "TLS", False):
                return None  # TLS (or a wrapped transport): bytes on the wire differ from the frame
            if protocol._perMessageCompress is not None:
                return None  # compressed per connection: no shared bytes
            sock_send = transport.socket.send
            open_state = protocol.STATE_OPEN
            for name in ("state", "send_queue"):
                getattr(protocol, name)
            for name in ("connected", "disconnecting", "dataBuffer", "_tempDataLen", "write"):
                getattr(transport, name)
        except AttributeError:
            warn_fallback("writing group frames to daphne's socket", "daphne",
                          "its autobahn/Twisted connection has an unexpected shape")
            return None
        return _SocketWriter(protocol, transport, sock_send, open_state)


class _SocketWriter:
    """``DaphneTransport.writer``'s writer for one connection (a small object: one per open socket)."""

    __slots__ = ("protocol", "transport", "send", "open_state")

    def __init__(self, protocol: Any, transport: Any, send: Callable[[bytes], int], open_state: Any) -> None:
        self.protocol, self.transport, self.send, self.open_state = protocol, transport, send, open_state

    def __call__(self, frame: bytes) -> bool:
        protocol, transport = self.protocol, self.transport
        if (protocol.state != self.open_state or protocol.send_queue or not transport.connected
                or transport.disconnecting or transport.dataBuffer or transport._tempDataLen):
            return False
        try:
            sent = self.send(frame)
        except BlockingIOError:
            sent = 0
        except OSError:  # the peer went away: the ASGI send path reports it, the disconnect event follows
            return False
        if sent < len(frame):
            transport.write(frame[sent:])  # Twisted buffers the rest, in order, and pauses the producer when full
        return True


def _is_http_channel(obj: Any) -> bool:
    try:
        from twisted.web.http import HTTPChannel
    except ImportError:  # pragma: no cover - daphne depends on Twisted
        return False
    return isinstance(obj, HTTPChannel)
