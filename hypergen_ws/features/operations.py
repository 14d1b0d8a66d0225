"""What operators ask of every process: ``get_groups()``, ``flush_groups()`` and ``clean_expired()``
(docs/presence.rst).

This process's counts come from its hubs; the other processes' from the engine (``backends.engine.Processes``):
on Redis every server process publishes its group counts with its heartbeat (:mod:`hypergen_ws.delivery.heartbeats`),
as fresh as their last heartbeat (at most ``PROCESS_HEARTBEAT_INTERVAL`` seconds old, usually much less); in
memory there is no other process.
"""
from __future__ import annotations

from typing import Any

from ..backends.layers import get_engine, local_store, run_sync
from ..core.sync import refuse_in_loop
from ..delivery import heartbeats
from ..delivery.hub import local_hubs
from . import expiry

__all__ = ["aclean_expired", "aflush_groups", "aget_groups", "clean_expired", "flush_groups", "get_groups"]


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
    processes = get_engine().processes
    own = {node.id for node in map(heartbeats.node_of, local_hubs()) if node is not None}
    for node_id in await processes.live():
        if node_id in own:
            continue
        for group, count in (await processes.group_counts(node_id)).items():
            counts[group] = counts.get(group, 0) + count
    return dict(sorted(counts.items()))


def get_groups() -> dict[str, int]:
    """Sync variant of :func:`aget_groups`."""
    refuse_in_loop("get_groups")
    return run_sync(aget_groups(), "Listing the groups")


async def aflush_groups() -> None:
    """Throw away the bookkeeping of groups and presence; live processes write theirs again.

    What remains afterwards is what the live sockets say: entries left behind by processes that died (or by a
    bug) are gone. On Redis every process writes its entries again at its next heartbeat; in memory each hub
    writes them again at once. Sockets stay in their groups and keep receiving. History is not touched (see
    ``flush_history()``).
    """
    await get_engine().presence.flush()
    for hub in local_hubs():
        await heartbeats.flushed(hub)


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
    processes = await heartbeats.sweep(get_engine())
    return {"connections": closed, "history_entries": local_store().clean_expired(), "processes": processes}


def clean_expired() -> dict[str, int]:
    """Sync variant of :func:`aclean_expired`."""
    refuse_in_loop("clean_expired")
    return run_sync(aclean_expired(), "Cleaning up expired entries")
