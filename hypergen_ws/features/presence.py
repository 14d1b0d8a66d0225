"""Who is connected to a group: ``@consumer(presence=True)`` (docs/presence.rst).

A user is counted once per group however many sockets they have open (across processes on Redis); an
anonymous socket is a user of its own. Who a socket is was fixed when it connected
(``ConnectionState.identity``), so a logout while it is open does not make its leave miss. The group gets
``{"type": "presence", "event": "join", ...}`` for a user's first socket and ``"leave"`` after their last one; a
new socket first gets the current list as ``{"type": "presence", "event": "list", "users": [...]}``.

Each hub keeps a table of its sockets' users; the engine of its layer (``backends.engine.Presence``) holds an entry
per user and process, and a count per user across processes: this process's alone in memory, every process's on
Redis. Entries of a process that stopped sending heartbeats are left out of listings at once and removed, with
leave frames, by the next live process's heartbeat (``PROCESS_TTL``).
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from ..backends.engine import Engine
from ..backends.layers import get_engine, run_sync
from ..core import conf, protocol
from ..core.groups import check_group_name
from ..core.logs import fields
from ..core.identity import Identity
from ..core.state import time_left
from ..core.sync import refuse_in_loop
from ..delivery import heartbeats
from ..delivery.hub import Hub
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
    """This process's presence entries, one table per hub (the engine holds a copy)."""

    def __init__(self) -> None:
        super().__init__(dict)
        #: Hubs whose entries in the engine may be wrong (a write failed): their next heartbeat writes them again.
        self.stale: set[Hub] = set()
        #: Per hub, users whose last socket in a group closed while their entry could not be removed from the engine:
        #: group -> user key -> entry. The heartbeat that writes the entries again sends their leave frames.
        self.leaving: dict[Hub, dict[str, dict[str, Entry]]] = {}
        #: Per hub, a counter of changes to its table (a rewrite during which it moved is done again).
        self.changes: dict[Hub, int] = {}

    def clear(self) -> None:
        """Forget every entry; for tests, between them (``hypergen_ws.testing.reset()``)."""
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


async def joined(conn: Connection, group: str, identity: Identity) -> None:
    """Count a new socket; announce the user's first one; send the socket the current list."""
    hub = conn.hub
    if hub is None:
        return
    process = heartbeats.process_id(hub)
    entry = tables.of(hub).setdefault(group, {}).setdefault(identity.key, Entry(identity))
    entry.count += 1
    tables.changed(hub)
    try:
        async with asyncio.timeout(time_left(conn.state)):  # within the connect's budget (CONNECT_TIMEOUT)
            first = await hub.engine.presence.join(group, process, identity.key, entry.stored()) == 1
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
    if hub is None:
        return
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
            total = await hub.engine.presence.leave(group, heartbeats.process_id(hub), identity.key,
                                                    entry.stored() if entry.count > 0 else "", not table)
    except Exception:
        logger.warning("Could not remove a presence entry of %s (is Redis down?); fixed at a later heartbeat",
                       group, exc_info=True,
                       extra=fields("presence_remove_failed", group=group, user=identity))
        tables.stale.add(hub)  # the empty table stays until the heartbeat has cleared the entry in the engine
        if entry.count <= 0:  # and that heartbeat sends the leave frame, unless the user is back meanwhile
            tables.leaving.setdefault(hub, {}).setdefault(group, {})[identity.key] = entry
        return
    if not table:
        tables.of(hub).pop(group, None)  # nothing is kept for a group without members
    if total <= 0:
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
    merged: dict[str, dict[str, Any]] = {}
    # (this process's own ids count even before their first beat)
    for key, _process, data in await get_engine().presence.entries(group, heartbeats.local_node_ids()):
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

    async def reassert(self, hub: Hub, process: str) -> None:
        """Write this hub's entries again, then send the leave frames of removals that had failed."""
        presence = hub.engine.presence
        tables.stale.discard(hub)
        table, mark = tables.of(hub), tables.changes.get(hub, 0)
        leaving = tables.leaving.pop(hub, {})
        try:
            for group, entries in list(table.items()):
                await presence.reassert(group, process, {key: entry.stored() for key, entry in list(entries.items())})
                if not entries:
                    table.pop(group, None)
            while leaving:
                group, gone = next(iter(leaving.items()))
                for key in await presence.absent(group, list(gone)):
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

    async def process_died(self, engine: Engine, process: str) -> None:
        for group, data in await engine.presence.sweep_process(process):
            await _announce(group, protocol.presence_leave_frame(data["id"], data["user_id"], data["username"]))


listener = _Listener()

