"""Write backpressure from daphne, whose ASGI ``send`` never waits.

uvicorn's ``send`` waits while the connection's write buffer is above its high-water mark, so an outbox sees a
client that stops reading as a send that does not finish. daphne's ``send`` hands every frame to Twisted at
once, and Twisted buffers without limit unless a *streaming producer* is registered on the connection: then it
calls ``pauseProducing()`` when more than 64 KiB wait and ``resumeProducing()`` when the buffer is empty.
``attach`` registers such a producer that pauses and resumes the socket's outbox, so frames wait (and count
towards ``SEND_QUEUE_LIMIT``) in the outbox instead of in Twisted.

Finding daphne's connection goes through what daphne and Channels pass to the application: daphne's ``send``
is ``functools.partial(Server.handle_reply, protocol)``, and Channels' session middleware wraps it in a bound
method whose object keeps it as ``real_send``. When the chain looks different (another server, other
middleware) ``attach`` does nothing and returns ``False``; daphne then only drops a client that stops reading
when its keepalive ping goes unanswered (``--ping-interval`` + ``--ping-timeout``, 20 + 30 s by default).
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Protocol

from ..core.logs import fields
from .layers import warn_fallback

logger = logging.getLogger("hypergen_ws")

_MAX_WRAPPERS = 8


class Pausable(Protocol):
    """What a producer pauses and resumes: a socket's outbox."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...


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


def attach(send: Any, outbox: Pausable) -> bool:
    """Register an ``OutboxProducer`` on daphne's connection behind ``send``; ``True`` when it was done."""
    protocol = daphne_protocol(send)
    if protocol is None:
        return False
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


def _is_http_channel(obj: Any) -> bool:
    try:
        from twisted.web.http import HTTPChannel
    except ImportError:  # pragma: no cover - daphne depends on Twisted
        return False
    return isinstance(obj, HTTPChannel)
