"""Group membership: groups joined after connect, and the groups of every process.

A connection's primary group (joined at connect) is the one history and presence follow. A group joined later with
``consumer.join(group)`` is a *secondary* membership: its frames reach the socket without a seq, so the client
never sees a second sequence on one socket as gaps.

``get_groups()``, ``flush_groups()`` and ``clean_expired()`` (docs/presence.rst): on the in-memory layer the answer
comes from this process's hubs. On Redis every server process publishes its group counts with its heartbeat
(:mod:`hypergen_ws.delivery.heartbeats`); counts of other processes are as fresh as their last heartbeat (at most
``PROCESS_HEARTBEAT_INTERVAL`` seconds old, usually much less), this process's own counts are current.
"""
from __future__ import annotations

import secrets
from typing import Any

from ..backends.layers import get_store, run_sync
from ..backends.memory import memory_store
from ..backends.redis import heartbeats as redis_heartbeats
from ..backends.redis import presence as redis_presence
from ..core.protocol import STAMP_PREFIX, resync_frame, unstamp
from ..core.state import ConnectionState
from ..core.sync import refuse_in_loop
from ..delivery import heartbeats
from ..delivery.hub import Member, local_hubs
from . import expiry, presence
from .base import Connection, Feature, Option, Options


#: The ``@consumer`` options this feature reads, with their defaults (``hypergen_ws.features``).
OPTIONS: dict[str, Option] = {}
#: What ``@consumer`` exposes about this feature while it is off (``declares()`` says it while on).
EXPOSES: dict[str, Any] = {}


def configure(options: Options) -> MembershipFeature:
    """Always on."""
    return MembershipFeature()


class MembershipFeature(Feature):
    """Stands for a connection in the groups it joined after its primary group; tells a socket without history
    that joined late that frames may have been published before it did."""

    name = "membership"

    async def rejoined(self, conn: Connection) -> None:
        if not conn.keeps_history:  # (a history consumer's catch-up says where it stands)
            conn.send_text(resync_frame("rejoined", None, None))

    def member(self, conn: Connection, group: str) -> Member | None:
        primary = conn.state.primary_group
        if primary is None or group == primary:
            return None
        wrappers: dict[str, SecondaryMember] = conn.state.extras.setdefault(self.name, {})
        found = wrappers.get(group)
        if found is None:
            found = wrappers[group] = SecondaryMember(conn)
        return found


class _Unstamping:
    """An outbox in front of a socket's outbox that takes the seq off stamped frames."""

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def push(self, message: dict[str, Any]) -> None:
        text = message.get("text")
        if isinstance(text, str) and text.startswith(STAMP_PREFIX):
            message = {"type": "websocket.send", "text": unstamp(text)}
        self.conn.outbox.push(message)

    def push_encoded(self, message: dict[str, Any], frame: bytes) -> None:
        text = message.get("text")
        if isinstance(text, str) and text.startswith(STAMP_PREFIX):
            self.push(message)
        else:
            self.conn.outbox.push_encoded(message, frame)


class SecondaryMember:
    """A connection's membership of a group joined with ``join()``: its frames reach the socket without a seq."""

    __slots__ = ("conn", "outbox")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.outbox = _Unstamping(conn)

    @property
    def label(self) -> str:
        return self.conn.label

    @property
    def channel_name(self) -> str:
        return self.conn.channel_name

    @property
    def state(self) -> ConnectionState:
        return self.conn.state

    @property
    def keeps_history(self) -> bool:
        return False

    def send_text(self, text: str) -> None:
        self.conn.send_text(text)


# ---- the groups of every process ----------------------------------------------------------------------------

def _local_counts() -> dict[str, int]:
    counts: dict[str, int] = {}
    for hub in local_hubs():
        for group, members in list(hub.members.items()):
            if members:
                counts[group] = counts.get(group, 0) + len(members)
    return counts


async def aget_groups() -> dict[str, int]:
    """Every group with at least one connected socket, and how many sockets are in it (all processes)."""
    counts = _local_counts()
    store: Any = get_store()
    if store.kind == "redis":
        own = {node.id for node in map(heartbeats.node_of, local_hubs()) if node is not None}
        for node_id in await heartbeats.live_processes(store):
            if node_id in own:
                continue
            for group, count in (await redis_heartbeats.group_counts(store, node_id)).items():
                counts[group] = counts.get(group, 0) + count
    return dict(sorted(counts.items()))


def get_groups() -> dict[str, int]:
    """Sync variant of :func:`aget_groups`."""
    refuse_in_loop("get_groups")
    return run_sync(aget_groups(), "Listing the groups")


async def aflush_groups() -> None:
    """Throw away the bookkeeping of groups and presence; live processes write theirs again.

    What remains afterwards is what the live sockets say: entries left behind by processes that died (or by a
    bug) are gone. On Redis every process writes its entries again at its next heartbeat; sockets stay in their
    groups and keep receiving. History is not touched (see ``flush_history()``).
    """
    store: Any = get_store()
    if store.kind != "redis":
        presence.memory_rebuild()
        return
    p = store.prefix
    await redis_presence.flush(store, (f"{p}:pg:*", f"{p}:presence:*", f"{p}:pcount:*", f"{p}:pgroups:*"),
                               secrets.token_hex(8))
    for hub in local_hubs():
        node = heartbeats.node_of(hub)
        if node is not None:
            node.changed()


def flush_groups() -> None:
    """Sync variant of :func:`aflush_groups`."""
    refuse_in_loop("flush_groups")
    run_sync(aflush_groups(), "Flushing the groups")


async def aclean_expired() -> dict[str, int]:
    """Clean up what outlived its time; returns what was done, by kind.

    ``connections``: local sockets past their ``@consumer(expires=...)`` lifetime, closed with 4408 (their timer
    does this on its own; this catches any that were missed); ``history_entries``: in-memory frames older than
    ``HISTORY_TTL`` (Redis expires its own); ``processes``: dead processes whose presence entries (with leave
    frames) and group counts were removed (Redis; the heartbeats do it too).
    """
    closed = 0
    for hub in local_hubs():
        seen: set[int] = set()
        for members in list(hub.members.values()):
            for member in list(members):
                conn: Any = getattr(member, "conn", member)
                if id(conn) in seen or not expiry.expired(conn.state):
                    continue
                seen.add(id(conn))
                hub.loop.call_soon_threadsafe(expiry.expire, conn)
                closed += 1
    store: Any = get_store()
    processes = await heartbeats.sweep(store) if store.kind == "redis" else 0
    return {"connections": closed, "history_entries": memory_store().clean_expired(), "processes": processes}


def clean_expired() -> dict[str, int]:
    """Sync variant of :func:`aclean_expired`."""
    refuse_in_loop("clean_expired")
    return run_sync(aclean_expired(), "Cleaning up expired entries")
