"""Who is connected to a group: ``@consumer(presence=True)`` (docs/presence.rst).

A user is counted once per group however many sockets they have open (across processes on Redis); an
anonymous socket is a user of its own. Who a socket is was fixed when it connected
(``ConnectionState.identity``), so a logout while it is open does not make its leave miss. The group gets
``{"type": "presence", "event": "join", ...}`` for a user's first socket and ``"leave"`` after their last one; a
new socket first gets the current list as ``{"type": "presence", "event": "list", "users": [...]}``.

In memory the table is this process's. On Redis (:mod:`hypergen_ws.backends.redis.presence`) every process keeps
its own entries; entries of a process that stopped sending heartbeats are left out of listings at once and
removed, with leave frames, by the next live process's heartbeat (``PROCESS_TTL``).
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from ..backends.layers import get_store, run_sync
from ..backends.redis import presence as redis_presence
from ..core import conf, protocol
from ..core.groups import check_group_name
from ..core.logs import fields
from ..core.identity import Identity
from ..core.state import time_left
from ..core.sync import refuse_in_loop
from ..delivery import heartbeats
from ..delivery.hub import Hub, local_hubs
from ..delivery.publishing import apublish
from .base import Connection, Feature, Option, Options, PerHub

logger = logging.getLogger("hypergen_ws")


class Entry:
    """One user's sockets in one group in this process."""

    __slots__ = ("key", "user_id", "username", "count", "since")

    def __init__(self, identity: Identity) -> None:
        self.key, self.user_id, self.username = identity.key, identity.user_id, identity.username
        self.count = 0
        self.since = time.time()

    def public(self, count: int | None = None, since: float | None = None) -> dict[str, Any]:
        return {"id": self.key, "user_id": self.user_id, "username": self.username,
                "connections": self.count if count is None else count, "since": _iso(since or self.since)}

    def stored(self) -> str:
        return protocol.encode({"id": self.key, "user_id": self.user_id, "username": self.username,
                                "count": self.count, "since": self.since})


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


Table = dict[str, dict[str, Entry]]  # group -> user key -> entry


class Tables(PerHub[Table]):
    """This process's presence entries: one table in memory, or one per hub on Redis."""

    def __init__(self) -> None:
        super().__init__(dict)
        self.memory: Table = {}
        self.lock = threading.Lock()
        #: Hubs whose entries in Redis may be wrong (a write failed): their next heartbeat writes them again.
        self.stale: set[Hub] = set()
        #: Per hub, users whose last socket in a group closed while their entry could not be removed from Redis:
        #: group -> user key -> entry. The heartbeat that writes the entries again sends their leave frames.
        self.leaving: dict[Hub, dict[str, dict[str, Entry]]] = {}
        #: Per hub, a counter of changes to its table (a rewrite during which it moved is done again).
        self.changes: dict[Hub, int] = {}

    def clear(self) -> None:
        """Forget every entry; for tests, between them (``hypergen_ws.testing.reset()``)."""
        with self.lock:
            self.memory.clear()
        self.by_hub.clear()
        self.stale.clear()
        self.leaving.clear()
        self.changes.clear()

    def forget(self, hub: Hub) -> None:
        self.stale.discard(hub)
        self.leaving.pop(hub, None)
        self.changes.pop(hub, None)

    def changed(self, hub: Hub) -> None:
        self.changes[hub] = self.changes.get(hub, 0) + 1


tables = Tables()


#: The ``@consumer`` options this feature reads, with their defaults (``hypergen_ws.features``).
OPTIONS: dict[str, Option] = {
    "presence": Option(False, "``presence=True`` tracks who is connected (docs/presence.rst)."),
}
#: What ``@consumer`` exposes about this feature while it is off (``declares()`` says it while on).
EXPOSES: dict[str, Any] = {"presence_enabled": False}


def configure(options: Options) -> PresenceFeature | None:
    """``presence=`` of ``@consumer``: True switches it on."""
    if not isinstance(options.presence, bool):
        raise ImproperlyConfigured(f"{options.where}: presence={options.presence!r}; pass True or False.")
    if not options.presence:
        return None
    heartbeats.add_listener(listener)
    return PresenceFeature()


class PresenceFeature(Feature):
    """Counts the socket in its primary group after the accept, uncounts it when it is gone."""

    name = "presence"

    def declares(self) -> dict[str, Any]:
        return {"presence_enabled": True}

    async def connected(self, conn: Connection) -> None:
        group = conn.state.primary_group
        if group is not None and group in conn.state.groups and conn.state.identity is not None:
            conn.state.extras[self.name] = group
            await joined(conn, group, conn.state.identity)

    async def rejoined(self, conn: Connection) -> None:
        await self.connected(conn)

    async def disconnected(self, conn: Connection) -> None:
        group = conn.state.extras.pop(self.name, None)
        if group is not None and conn.state.identity is not None:
            await left(conn.hub, group, conn.state.identity)


def _timeout() -> float:
    return float(conf.get("PUBLISH_TIMEOUT"))


def _redis_store(hub: Hub | None) -> Any:
    store = get_store(hub.layer if hub is not None else None)
    return store if store.kind == "redis" else None


async def joined(conn: Connection, group: str, identity: Identity) -> None:
    """Count a new socket; announce the user's first one; send the socket the current list."""
    hub = conn.hub
    store = _redis_store(hub)
    node = heartbeats.ensure_started(hub) if store is not None and hub is not None else None
    if node is None or hub is None:
        with tables.lock:
            entry = tables.memory.setdefault(group, {}).setdefault(identity.key, Entry(identity))
            entry.count += 1
            first = entry.count == 1
    else:
        entry = tables.of(hub).setdefault(group, {}).setdefault(identity.key, Entry(identity))
        entry.count += 1
        tables.changed(hub)
        try:
            async with asyncio.timeout(time_left(conn.state)):  # within the connect's budget (CONNECT_TIMEOUT)
                first = await redis_presence.join(store, group, node.id, identity.key, entry.stored()) == 1
        except Exception:
            logger.warning("Could not record presence in %s (is Redis down?); written at a later heartbeat", group,
                           exc_info=True, extra=fields("presence_write_failed", consumer=conn.label, group=group,
                                                       state=conn.state))
            tables.stale.add(hub)
            return
    try:
        async with asyncio.timeout(time_left(conn.state)):
            users = await aget_presence(group)
    except Exception:
        logger.warning("Could not list the presence of %s", group, exc_info=True,
                       extra=fields("presence_list_failed", consumer=conn.label, group=group, state=conn.state))
    else:
        # Ahead of the group frames that arrived while the list was read (docs/presence.rst: the list comes first).
        conn.outbox.push_first({"type": "websocket.send", "text": protocol.presence_list_frame(users)})
    if first:
        await _announce(group, protocol.presence_join_frame(entry.public(1)))


async def left(hub: Hub | None, group: str, identity: Identity) -> None:
    """Uncount a gone socket; announce the user's last one."""
    store = _redis_store(hub)
    node = heartbeats.node_of(hub) if store is not None and hub is not None else None
    if node is None or hub is None:
        with tables.lock:
            table = tables.memory.get(group, {})
            entry = table.get(identity.key)
            if entry is None:
                return
            entry.count -= 1
            gone = entry.count <= 0
            if gone:
                del table[identity.key]
                if not table:
                    tables.memory.pop(group, None)
    else:
        table = tables.of(hub).get(group, {})
        entry = table.get(identity.key)
        if entry is None:
            return
        entry.count -= 1
        if entry.count <= 0:
            del table[identity.key]
        tables.changed(hub)
        try:
            async with asyncio.timeout(_timeout()):
                total = await redis_presence.leave(store, group, node.id, identity.key,
                                                   entry.stored() if entry.count > 0 else "", not table)
        except Exception:
            logger.warning("Could not remove a presence entry of %s (is Redis down?); fixed at a later heartbeat",
                           group, exc_info=True,
                           extra=fields("presence_remove_failed", group=group, user=identity))
            tables.stale.add(hub)  # the empty table stays until the heartbeat has cleared the entry in Redis
            if entry.count <= 0:  # and that heartbeat sends the leave frame, unless the user is back meanwhile
                tables.leaving.setdefault(hub, {}).setdefault(group, {})[identity.key] = entry
            return
        if not table:
            tables.of(hub).pop(group, None)  # nothing is kept for a group without members
        gone = total <= 0
    if gone:
        await _announce(group, protocol.presence_leave_frame(entry.key, entry.user_id, entry.username))


async def _announce(group: str, text: str) -> None:
    try:
        await apublish(group, text, history=False)
    except Exception:
        logger.warning("Could not send a presence frame to %s", group, exc_info=True,
                       extra=fields("presence_frame_failed", group=group))


async def aget_presence(group: str) -> list[dict[str, Any]]:
    """Who is connected to ``group``: ``[{"id", "user_id", "username", "connections", "since"}, ...]``.

    ``since`` is when the user's oldest open socket connected (ISO 8601, UTC). Sorted by ``since``.
    """
    check_group_name(group)
    store = _redis_store(None)
    if store is None:
        with tables.lock:
            users = [e.public() for e in tables.memory.get(group, {}).values()]
        return sorted(users, key=lambda u: str(u["since"]))
    live = set(await heartbeats.live_processes(store))
    for hub in local_hubs():  # this process's own ids count even before their first beat
        node = heartbeats.node_of(hub)
        if node is not None and not node.task.done():
            live.add(node.id)
    merged: dict[str, dict[str, Any]] = {}
    for key, node_id, data in await redis_presence.entries(store, group):
        if node_id not in live:
            continue
        user = merged.get(key)
        if user is None:
            merged[key] = {"id": key, "user_id": data["user_id"], "username": data["username"],
                           "connections": data["count"], "since": data["since"]}
        else:
            user["connections"] += data["count"]
            user["since"] = min(user["since"], data["since"])
    users = sorted(merged.values(), key=lambda u: float(u["since"]))
    for user in users:
        user["since"] = _iso(user["since"])
    return users


def get_presence(group: str) -> list[dict[str, Any]]:
    """Sync variant of :func:`aget_presence`."""
    refuse_in_loop("get_presence")
    return run_sync(aget_presence(group), f"Reading the presence of {group!r}")


class _Listener:
    """Presence's part of the heartbeat: write entries again, and clean up after dead processes."""

    def needs_reassert(self, hub: Hub) -> bool:
        return hub in tables.stale

    async def reassert(self, node: heartbeats.ProcessHeartbeat) -> None:
        """Write this hub's entries again, then send the leave frames of removals that had failed."""
        hub = node.hub
        tables.stale.discard(hub)
        table, mark = tables.of(hub), tables.changes.get(hub, 0)
        leaving = tables.leaving.pop(hub, {})
        try:
            for group, entries in list(table.items()):
                await redis_presence.reassert(node.store, group, node.id,
                                              {key: entry.stored() for key, entry in list(entries.items())})
                if not entries:
                    table.pop(group, None)
            while leaving:
                group, gone = next(iter(leaving.items()))
                for key in await redis_presence.absent(node.store, group, list(gone)):
                    entry = gone[key]
                    await _announce(group, protocol.presence_leave_frame(entry.key, entry.user_id, entry.username))
                del leaving[group]
        except BaseException:
            tables.stale.add(hub)
            for group, gone in leaving.items():
                tables.leaving.setdefault(hub, {}).setdefault(group, {}).update(gone)
            raise
        if tables.changes.get(hub, 0) != mark:
            tables.stale.add(hub)  # the entries changed while they were written: once more at the next heartbeat

    async def process_died(self, store: Any, node_id: str) -> None:
        for group, data in await redis_presence.sweep_process(store, node_id):
            await _announce(group, protocol.presence_leave_frame(data["id"], data["user_id"], data["username"]))


listener = _Listener()


def memory_rebuild() -> None:
    """Rebuild the in-memory table from the live sockets of this process (``flush_groups()``)."""
    table: Table = {}
    for hub in local_hubs():
        for group, members in list(hub.members.items()):
            for member in list(members):
                state = member.state
                if state.extras.get("presence") != group or state.identity is None:
                    continue
                old = tables.memory.get(group, {}).get(state.identity.key)
                entry = table.setdefault(group, {}).setdefault(state.identity.key, Entry(state.identity))
                entry.count += 1
                if old is not None:
                    entry.since = old.since
    with tables.lock:
        tables.memory.clear()
        tables.memory.update(table)
