"""Graceful shutdown: every socket of a server that stops is told when to reconnect, then closed with 1012.

A restart that closes 10,000 sockets at once makes 10,000 clients reconnect at once (a reconnect storm). So when
the server is told to stop (SIGTERM on uvicorn or daphne, through the transport port, or the ASGI lifespan
shutdown through :func:`hypergen_ws.routing.lifespan`), :func:`drain` gives each socket of the process its own
random delay within ``RECONNECT_SPREAD`` seconds: a socket whose client speaks the protocol gets
``{"type": "reconnect", "delay": ...}`` and then a close with 1012 (service restart); its client waits that long,
reconnects to whichever process is up, and recovers what it missed. Other sockets (``frames=``,
``protocol="hypergen"``) are closed with 1012 only. The drain waits until the sockets are closed (at most
``DRAIN_TIMEOUT`` seconds), then the server goes on with its own shutdown. A socket that opens while the drain runs
is told the same at once.
"""
from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Protocol

from ..core import conf
from ..core.logs import fields
from .hub import Hub, current_hub, local_hubs

__all__ = ["DRAIN_TIMEOUT", "Restartable", "drain", "drain_all", "spread_delay"]

logger = logging.getLogger("hypergen_ws")

#: Seconds a drain waits for the sockets it closed to be gone before the server's own shutdown goes on.
DRAIN_TIMEOUT = 5.0


class Restartable(Protocol):
    """An open socket, as the drain sees it."""

    def restart(self, delay: float) -> None:
        """Tell the client to reconnect after ``delay`` seconds (when it can be told), then close with 1012."""


def spread_delay(random_number: Callable[[], float] = random.random) -> float:
    """A delay within ``RECONNECT_SPREAD`` seconds, uniformly distributed."""
    return float(conf.liveness()[2]) * random_number()


async def drain(hub: Hub, timeout: float = DRAIN_TIMEOUT) -> int:
    """Tell every open socket of ``hub`` to reconnect within ``RECONNECT_SPREAD`` and close it with 1012; wait at
    most ``timeout`` seconds for them to be gone. Returns how many sockets were told. Idempotent."""
    if hub.draining:
        return 0
    hub.draining = True
    # Newest first: on RedisChannelLayer the oldest socket's receive() holds the layer's receive lock for every
    # socket of the process, and each time a holder goes the next one opens a Redis connection for its BRPOP; closed
    # in this order, the lock changes hands once instead of once per socket.
    sockets: list[Restartable] = list(reversed(hub.sockets))
    spread = conf.liveness()[2]
    for socket in sockets:
        socket.restart(spread_delay())
    logger.info("Shutting down: told %s sockets to reconnect within %s s and closed them with 1012", len(sockets),
                spread, extra=fields("sockets_restarted", code=1012))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while hub.sockets and loop.time() < deadline:
        await asyncio.sleep(0.02)
    return len(sockets)


async def drain_all(timeout: float = DRAIN_TIMEOUT) -> int:
    """:func:`drain` the hub of the running event loop (a server has one); returns how many sockets were told."""
    hub = current_hub()
    if hub is None:
        return 0
    for other in local_hubs():  # another event loop of this process (rare): drained in its own loop, not awaited
        if other is not hub:
            asyncio.run_coroutine_threadsafe(drain(other, timeout), other.loop)
    return await drain(hub, timeout)
