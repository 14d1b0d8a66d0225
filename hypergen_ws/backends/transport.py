"""The transport port: what the server behind one connection can do besides the ASGI messages.

A consumer asks :func:`hypergen_ws.backends.servers.transport_for` once per connection and keeps the answer. The
implementations are :class:`Transport` itself (plain ASGI: any other server, the test communicator),
``UvicornTransport`` (:mod:`hypergen_ws.backends.uvicorn`) and ``DaphneTransport``
(:mod:`hypergen_ws.backends.daphne`). Whatever a server cannot do is answered with ``None`` or ``False``, and
the caller then uses the ASGI message instead: nothing is lost, only a fast path.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Protocol

__all__ = ["ASGI", "Pausable", "Transport", "Writer"]

#: Writes the bytes of an encoded text frame (``hypergen_ws.core.protocol.text_frame``) to the connection at once
#: and returns True, or returns False (nothing written) when the server would not write at once.
Writer = Callable[[bytes], bool]


class Pausable(Protocol):
    """What a server pauses and resumes while its write buffer is full: a socket's outbox."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...


class Transport:
    """Plain ASGI: nothing beyond the messages. Subclasses override what their server can do."""

    __slots__ = ()

    #: The server's name, for logs and stats: ``"uvicorn"``, ``"daphne"`` or ``"asgi"``.
    name: ClassVar[str] = "asgi"

    @property
    def pings(self) -> bool:
        """Whether the server sends websocket pings itself and drops a connection whose pong does not come."""
        return False

    def writer(self) -> Writer | None:
        """A :data:`Writer` of shared encoded frames for this (accepted) connection, or None."""
        return None

    def report_backpressure(self, outbox: Pausable) -> bool:
        """Make a full write buffer hold ``outbox`` back: either the server's ASGI ``send`` waits while the buffer
        is full, or ``outbox.pause()``/``resume()`` are called. False when neither is known to happen."""
        return False

    def close_with_code(self, code: object, grace: float) -> bool:
        """Close with ``code`` when the server's ASGI ``websocket.close`` cannot send that code (daphne: 1001-2999);
        False when the ASGI message does it (any other code or server)."""
        return False

    def close_now(self, code: int, grace: float) -> bool:
        """Close at once, without waiting for the write buffer: the close frame goes behind what is buffered, and
        the connection is dropped ``grace`` seconds later unless the client answered it. False when only the ASGI
        close (which may wait for the buffer) can do it."""
        return False

    def take_pongs(self, text: str, heard: Callable[[], None]) -> bool:
        """Have the server call ``heard()`` for every complete text frame that is exactly ``text`` (the heartbeat's
        pong) instead of queueing it for the application, which then never sees it: the answer to a ping costs no
        task switch. False when the server cannot; the application then takes the pongs out itself."""
        return False

    def replace_pings(self) -> bool:
        """The protocol heartbeat pings this connection from now on: stop the server's own websocket pings on it,
        when they would come on a timer of their own whatever the client sends. False when they go on."""
        return False

    def on_stop(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], Awaitable[Any]]) -> bool:
        """Run ``await callback()`` in ``loop`` when the server is told to stop, before it closes its sockets
        (once per process). False when the server's stop cannot be seen (then only the ASGI lifespan shutdown
        tells)."""
        return False


#: The plain ASGI transport (it holds nothing, so every connection shares it).
ASGI = Transport()
