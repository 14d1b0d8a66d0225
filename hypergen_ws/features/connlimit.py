"""The cap on the sockets one user may have open: ``MAX_CONNECTIONS_PER_USER`` (docs/security.rst).

A socket over the cap is accepted and closed with 1008. Anonymous sockets are not capped (each is a user of its
own). On the in-memory layer (one process) this process's count is the whole count. On Redis the count covers
every server process (:mod:`hypergen_ws.backends.redis.connections`): each admission is one atomic script, bounded
by ``PUBLISH_TIMEOUT``. When Redis cannot answer, the cap falls back to this process's count, with one WARNING, and
does not ask Redis again until a heartbeat has written this process's counts again, so a frozen Redis holds at most
one connect for ``PUBLISH_TIMEOUT``. The heartbeat also renews the counts' TTL, writes them again after Redis lost
its data, and removes the counts of a dead process with its other entries.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..backends.layers import get_store
from ..backends.redis import connections as redis_connections
from ..core import conf, protocol
from ..core.logs import fields
from ..delivery import heartbeats
from ..delivery.hub import Hub
from .base import Connection, Feature, Options, PerHub

logger = logging.getLogger("hypergen_ws")

#: Seconds between two renewals of a process's counts in Redis (their keys live ``CONNECTIONS_TTL``).
RENEW_INTERVAL = 600.0

Table = dict[str, set[Connection]]  # user key -> the capped sockets of that user in one hub


class Tables(PerHub[Table]):
    """The capped sockets of each hub, and which hubs' counts in Redis need writing again."""

    def __init__(self) -> None:
        super().__init__(dict)
        #: Hubs whose counts in Redis may be wrong (a write failed): the next heartbeat writes them again.
        self.stale: set[Hub] = set()
        #: Hubs that count locally until a heartbeat reached Redis again.
        self.down: set[Hub] = set()
        self.renewed: dict[Hub, float] = {}

    def clear(self) -> None:
        """Forget everything; for tests, between them (``hypergen_ws.testing.reset()``)."""
        self.by_hub.clear()
        self.stale.clear()
        self.down.clear()
        self.renewed.clear()

    def forget(self, hub: Hub) -> None:
        self.stale.discard(hub)
        self.down.discard(hub)
        self.renewed.pop(hub, None)


tables = Tables()


def configure(options: Options) -> ConnectionLimit:
    """Always on; it does something only when ``MAX_CONNECTIONS_PER_USER`` is set."""
    heartbeats.add_listener(listener)
    return ConnectionLimit()


def _timeout() -> float:
    return float(conf.get("PUBLISH_TIMEOUT"))


def _node(hub: Hub) -> heartbeats.ProcessHeartbeat | None:
    """This hub's heartbeat on a Redis layer (started here if need be), or None: count in this process."""
    return heartbeats.ensure_started(hub) if get_store(hub.layer).kind == "redis" else None


def _unavailable(hub: Hub, what: str, exc: BaseException) -> None:
    tables.stale.add(hub)
    if hub not in tables.down:
        tables.down.add(hub)
        reason = str(exc) or f"no answer within {_timeout()} s (PUBLISH_TIMEOUT)"
        logger.warning("Could not %s in Redis (%s: %s); MAX_CONNECTIONS_PER_USER counts the sockets of this process "
                       "only until a heartbeat reaches Redis again", what, type(exc).__name__, reason,
                       extra=fields("connection_count_unavailable"))


class ConnectionLimit(Feature):
    """Counts an authenticated socket among its user's; refuses it over ``MAX_CONNECTIONS_PER_USER``."""

    name = "connlimit"

    async def admit(self, conn: Connection) -> tuple[int, str] | None:
        limit, hub, identity = conf.get("MAX_CONNECTIONS_PER_USER"), conn.hub, conn.state.identity
        if not limit or hub is None or identity is None or not identity.is_user:
            return None
        limit = int(limit)
        node = _node(hub)
        counted = False
        if node is not None and hub not in tables.down:
            try:
                async with asyncio.timeout(_timeout()):  # a frozen Redis must not hold the connect
                    counted, total = await redis_connections.admit(node.store, node.id, identity.key, limit)
            except Exception as exc:
                _unavailable(hub, "count the sockets of a user", exc)
            else:
                if not counted:
                    return self._refuse(conn, total, "across the server processes")
        mine = tables.of(hub).setdefault(identity.key, set())
        if not counted and len(mine) >= limit:
            return self._refuse(conn, len(mine), "in this process")
        mine.add(conn)
        conn.state.extras[self.name] = counted
        return None

    def _refuse(self, conn: Connection, open_now: int, where: str) -> tuple[int, str]:
        identity = conn.state.identity
        logger.warning("Refused a socket of %s to %s: the user has %s open %s "
                       "(HYPERGEN_WS['MAX_CONNECTIONS_PER_USER'])", identity.username if identity else None, conn.label, open_now, where,
                       extra=fields("too_many_connections", consumer=conn.label, user=identity,
                                    code=protocol.CLOSE_POLICY_VIOLATION))
        return protocol.CLOSE_POLICY_VIOLATION, "Too many connections for this user."

    async def disconnected(self, conn: Connection) -> None:
        counted, hub, identity = conn.state.extras.pop(self.name, None), conn.hub, conn.state.identity
        if counted is None or hub is None or identity is None:
            return
        table = tables.of(hub)
        mine = table.get(identity.key)
        if mine is not None:
            mine.discard(conn)
            if not mine:
                del table[identity.key]
        node = heartbeats.node_of(hub)
        if not counted or node is None or hub in tables.down:
            return
        try:
            async with asyncio.timeout(_timeout()):
                await redis_connections.release(node.store, node.id, identity.key)
        except Exception as exc:
            _unavailable(hub, "give back the place of a closed socket", exc)


class _Listener:
    """The cap's part of the heartbeat: write the counts again, renew them, clean up after dead processes."""

    def needs_reassert(self, hub: Hub) -> bool:
        if hub in tables.stale:
            return True
        return bool(tables.by_hub.get(hub)) and time.monotonic() - tables.renewed.get(hub, 0.0) > RENEW_INTERVAL

    async def reassert(self, node: heartbeats.ProcessHeartbeat) -> None:
        hub = node.hub
        table = tables.of(hub)
        conns = {key: set(members) for key, members in table.items()}
        await redis_connections.reassert(node.store, node.id, {key: len(members) for key, members in conns.items()})
        for members in conns.values():
            for conn in members:
                if self._open(conn):
                    conn.state.extras[ConnectionLimit.name] = True  # counted in Redis now
        tables.stale.discard(hub)
        tables.renewed[hub] = time.monotonic()
        if hub in tables.down:
            tables.down.discard(hub)
            logger.info("Redis answers again: MAX_CONNECTIONS_PER_USER counts across the server processes again",
                        extra=fields("connection_count_restored"))

    @staticmethod
    def _open(conn: Connection) -> bool:
        return ConnectionLimit.name in conn.state.extras

    async def process_died(self, store: Any, node_id: str) -> None:
        await redis_connections.sweep_process(store, node_id)


listener = _Listener()
