"""Connection expiry: ``@consumer(expires=seconds or callable)`` closes a connection with 4408 when its lifetime
is over (docs/presence.rst); the client reconnects, and catches up when the consumer keeps history."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from ..core import protocol
from ..core.logs import fields
from ..core.state import ConnectionState, Lifecycle
from .base import Connection, Feature, Option, Options

logger = logging.getLogger("hypergen_ws")

Expires = float | Callable[[Any], float | None]


#: The ``@consumer`` options this feature reads, with their defaults (``hypergen_ws.features``).
OPTIONS: dict[str, Option] = {
    "expires": Option(None, "``expires`` (seconds, or a callable taking the consumer) closes a connection with 4408 "
                            "when its lifetime is over."),
}
#: What ``@consumer`` exposes about this feature while it is off (``declares()`` says it while on).
EXPOSES: dict[str, Any] = {"expires": None}


def configure(options: Options) -> ExpiryFeature | None:
    """``expires=`` of ``@consumer``: seconds > 0, or a callable taking the consumer and returning them."""
    expires = options.expires
    if expires is None:
        return None
    if not callable(expires) and (isinstance(expires, bool) or not isinstance(expires, (int, float))
                                  or expires <= 0):
        raise ImproperlyConfigured(f"{options.where}: expires={expires!r}; pass a number of seconds > 0, or a "
                                   "callable taking the consumer and returning one (or None for no limit).")
    return ExpiryFeature(expires)


class ExpiryFeature(Feature):
    """Arms a timer after the accept; the timer closes the connection with 4408."""

    name = "expiry"

    def declares(self) -> dict[str, Any]:
        return {"expires": self.expires}

    def __init__(self, expires: Expires) -> None:
        self.expires = expires

    async def connected(self, conn: Connection) -> None:
        seconds = self.expires(conn) if callable(self.expires) else self.expires
        if seconds:
            conn.state.expires_at = time.time() + seconds
            conn.state.extras[self.name] = asyncio.get_running_loop().call_later(seconds, expire, conn)

    async def disconnected(self, conn: Connection) -> None:
        timer = conn.state.extras.pop(self.name, None)
        if isinstance(timer, asyncio.TimerHandle):
            timer.cancel()


_closing: set[asyncio.Task[None]] = set()


def expire(conn: Connection) -> None:
    """Close a connection whose lifetime is over with 4408 (from its event loop)."""
    if conn.state.lifecycle is not Lifecycle.OPEN:
        return
    logger.info("Closing a client of %s: its lifetime is over (close %s)", conn.label, protocol.CLOSE_EXPIRED,
                extra=fields("connection_expired", consumer=conn.label, state=conn.state, code=protocol.CLOSE_EXPIRED))
    task = asyncio.get_running_loop().create_task(conn.close(protocol.CLOSE_EXPIRED))
    _closing.add(task)  # referenced until done: an unreferenced task may be garbage-collected mid-way
    task.add_done_callback(_closing.discard)


def expired(state: ConnectionState, now: float | None = None) -> bool:
    """Whether the connection's lifetime is over."""
    return state.expires_at is not None and (now or time.time()) >= state.expires_at
