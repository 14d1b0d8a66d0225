"""The cap on the sockets one user may have open: ``MAX_CONNECTIONS_PER_USER`` (docs/security.rst).

A socket over the cap is accepted and closed with 1008. Anonymous sockets are not capped (each is a user of its
own). The count is kept by the engine of the layer (``backends.engine.ConnectionCounts``): on the in-memory layer
(one process) this process's count is the whole count; on Redis it covers every server process, each admission
one atomic script, bounded by the connect's budget (``CONNECT_TIMEOUT``). When Redis cannot answer, the cap falls back to this process's count,
with one WARNING, and does not ask Redis again until a heartbeat has written this process's counts again, so a frozen
Redis holds at most one connect for ``CONNECT_TIMEOUT``. The heartbeat also renews the counts' TTL, writes them again after Redis lost
its data, and removes the counts of a dead process with its other entries.

This process's table is the truth; Redis holds a copy. Whatever may have left the copy wrong marks the hub stale,
and the next heartbeat writes the whole table again: a close while Redis could not be asked, a write that failed,
timed out or was cancelled (it may still run in Redis later, after a freeze), and a rewrite during which the table
changed or a write was on its way (its snapshot may be out of date). After an outage the table is written once
more at the following heartbeat, after anything that was still queued in the frozen Redis has run.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ..backends.engine import Engine
from ..core import conf, protocol
from ..core.logs import fields
from ..core.state import time_left
from ..delivery import heartbeats
from ..delivery.hub import Hub
from .base import Connection, Feature, Option, Options, PerHub

logger = logging.getLogger("hypergen_ws")

#: Seconds between two renewals of a process's counts in Redis (their keys live ``CONNECTIONS_TTL``).
RENEW_INTERVAL = 600.0
#: Rewrites a heartbeat tries in a row while the table keeps changing under them; then the next heartbeat goes on.
REWRITE_ATTEMPTS = 3

Table = dict[str, set[Connection]]  # user key -> the capped sockets of that user in one hub


class Tables(PerHub[Table]):
    """The capped sockets of each hub, and which hubs' counts in Redis need writing again."""

    def __init__(self) -> None:
        super().__init__(dict)
        #: Hubs whose counts in Redis may be wrong (a write failed): the next heartbeat writes them again.
        self.stale: set[Hub] = set()
        #: Hubs that count locally until a heartbeat reached Redis again.
        self.down: set[Hub] = set()
        #: Hubs back from an outage: written once more at the heartbeat after the first rewrite.
        self.confirm: set[Hub] = set()
        self.renewed: dict[Hub, float] = {}
        #: Per hub, a counter of changes: of the table, and of the writes to Redis that ended.
        self.changes: dict[Hub, int] = {}
        #: Per hub, the admissions and releases on their way to Redis.
        self.pending: dict[Hub, int] = {}

    def clear(self) -> None:
        """Forget everything; for tests, between them (``hypergen_ws.testing.reset()``)."""
        for kept in (self.by_hub, self.stale, self.down, self.confirm, self.renewed, self.changes, self.pending):
            kept.clear()

    def forget(self, hub: Hub) -> None:
        for kept in (self.stale, self.down, self.confirm):
            kept.discard(hub)
        for counters in (self.renewed, self.changes, self.pending):
            counters.pop(hub, None)

    def changed(self, hub: Hub) -> None:
        """``hub``'s table changed, or a write of its counts ended: a rewrite going on must be done again."""
        self.changes[hub] = self.changes.get(hub, 0) + 1

    def quiet_since(self, hub: Hub, mark: int) -> bool:
        """Whether nothing changed since ``self.changes[hub]`` was ``mark`` and no write is on its way."""
        return self.changes.get(hub, 0) == mark and not self.pending.get(hub)

    @asynccontextmanager
    async def writing(self, hub: Hub) -> AsyncIterator[None]:
        """Around one admission or release in Redis; one that did not return (failed, timed out, cancelled) may
        still have run, or run later: the hub's counts are written again."""
        self.pending[hub] = self.pending.get(hub, 0) + 1
        try:
            yield
        except BaseException:
            self.stale.add(hub)
            raise
        finally:
            self.pending[hub] -= 1
            self.changed(hub)


tables = Tables()


#: The ``@consumer`` options this feature reads, with their defaults (``hypergen_ws.features``).
OPTIONS: dict[str, Option] = {}
#: What ``@consumer`` exposes about this feature while it is off (``declares()`` says it while on).
EXPOSES: dict[str, Any] = {}


def configure(options: Options) -> ConnectionLimit:
    """Always on; it does something only when ``MAX_CONNECTIONS_PER_USER`` is set."""
    heartbeats.add_listener(listener)
    return ConnectionLimit()


def _timeout() -> float:
    return float(conf.get("PUBLISH_TIMEOUT"))


def _unavailable(hub: Hub, what: str, exc: BaseException) -> None:
    tables.stale.add(hub)
    tables.confirm.add(hub)
    if hub not in tables.down:
        tables.down.add(hub)
        reason = str(exc) or "no answer in time (CONNECT_TIMEOUT, PUBLISH_TIMEOUT)"
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
        process = heartbeats.process_id(hub)
        counted = False
        if hub not in tables.down:
            try:
                async with tables.writing(hub), asyncio.timeout(time_left(conn.state)):  # the connect's budget
                    counted, total = await hub.engine.connections.admit(process, identity.key, limit)
            except Exception as exc:
                _unavailable(hub, "count the sockets of a user", exc)
            else:
                if not counted:
                    return self._refuse(conn, total, "across the server processes")
        mine = tables.of(hub).setdefault(identity.key, set())
        if not counted and len(mine) >= limit:
            return self._refuse(conn, len(mine), "in this process")
        mine.add(conn)
        tables.changed(hub)
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
        tables.changed(hub)
        if not counted or hub in tables.down:
            tables.stale.add(hub)  # not counted in Redis yet, or Redis cannot be asked: the next heartbeat's rewrite
            return
        try:
            async with tables.writing(hub), asyncio.timeout(_timeout()):
                await hub.engine.connections.release(heartbeats.process_id(hub), identity.key)
        except Exception as exc:
            _unavailable(hub, "give back the place of a closed socket", exc)


class _Listener:
    """The cap's part of the heartbeat: write the counts again, renew them, clean up after dead processes."""

    def needs_reassert(self, hub: Hub) -> bool:
        if hub in tables.stale:
            return True
        return bool(tables.by_hub.get(hub)) and time.monotonic() - tables.renewed.get(hub, 0.0) > RENEW_INTERVAL

    async def reassert(self, hub: Hub, process: str) -> None:
        """Write this hub's table to the engine, again while it changed under the write (then it stays stale)."""
        for _attempt in range(REWRITE_ATTEMPTS):
            mark = tables.changes.get(hub, 0)
            conns = {key: set(members) for key, members in tables.of(hub).items()}
            await hub.engine.connections.reassert(process, {key: len(m) for key, m in conns.items()})
            for members in conns.values():
                for conn in members:
                    if self._open(conn):
                        conn.state.extras[ConnectionLimit.name] = True  # counted in Redis now
            self._answered(hub)
            if tables.quiet_since(hub, mark):
                break
        else:
            return  # still stale: the next heartbeat writes the table again
        tables.renewed[hub] = time.monotonic()
        if hub in tables.confirm:
            tables.confirm.discard(hub)  # once more at the next heartbeat, after what a freeze held has run
        else:
            tables.stale.discard(hub)

    @staticmethod
    def _answered(hub: Hub) -> None:
        if hub in tables.down:
            tables.down.discard(hub)
            logger.info("Redis answers again: MAX_CONNECTIONS_PER_USER counts across the server processes again",
                        extra=fields("connection_count_restored"))

    @staticmethod
    def _open(conn: Connection) -> bool:
        return ConnectionLimit.name in conn.state.extras

    async def process_died(self, engine: Engine, process: str) -> None:
        await engine.connections.sweep_process(process)


listener = _Listener()
