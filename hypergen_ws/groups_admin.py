"""Groups across processes: ``get_groups()``, ``flush_groups()``, ``clean_expired()`` (docs/presence.rst).

On the in-memory layer the answer comes from this process's hubs. On Redis every server process publishes its
group counts with its heartbeat (:mod:`hypergen_ws.cluster`); counts of other processes are as fresh as their
last heartbeat (at most ``HEARTBEAT_INTERVAL`` seconds old, usually much less: a process beats soon after its
groups change), this process's own counts are current.
"""
from __future__ import annotations

import secrets
from typing import Any

from . import cluster, lifecycle, presence
from .fanout import local_hubs
from .history import _refuse_in_loop, _run_sync
from .stores import get_store, memory_store


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
    store = get_store()
    if store.kind == "redis":
        own = {node.id for node in map(cluster.node_of, local_hubs()) if node is not None}
        redis = store.clients.get(0)  # type: ignore[attr-defined]
        for node_id in await cluster.live_processes(store):  # type: ignore[arg-type]
            if node_id in own:
                continue
            for group, count in (await redis.hgetall(f"{store.prefix}:pg:{node_id}")).items():  # type: ignore[attr-defined]
                counts[group.decode()] = counts.get(group.decode(), 0) + int(count)
    return dict(sorted(counts.items()))


def get_groups() -> dict[str, int]:
    """Sync variant of :func:`aget_groups`."""
    _refuse_in_loop("get_groups")
    return _run_sync(aget_groups(), "Listing the groups")


async def aflush_groups() -> None:
    """Throw away the bookkeeping of groups and presence; live processes write theirs again.

    What remains afterwards is what the live sockets say: entries left behind by processes that died (or by a
    bug) are gone. On Redis every process writes its entries again at its next heartbeat; sockets stay in their
    groups and keep receiving. History is not touched (see ``flush_history()``).
    """
    store = get_store()
    if store.kind != "redis":
        presence.memory_rebuild()
        return
    p = store.prefix  # type: ignore[attr-defined]
    patterns = (f"{p}:pg:*", f"{p}:presence:*", f"{p}:pcount:*", f"{p}:pgroups:*")
    for redis in store.clients.all():  # type: ignore[attr-defined]
        keys = [key for pattern in patterns async for key in redis.scan_iter(match=pattern, count=500)]
        async with redis.pipeline(transaction=True) as pipe:
            for i in range(0, len(keys), 500):
                pipe.delete(*keys[i:i + 500])
            pipe.delete(f"{p}:procs")
            pipe.set(f"{p}:generation", secrets.token_hex(8))
            await pipe.execute()
    for hub in local_hubs():
        cluster.changed(hub)


def flush_groups() -> None:
    """Sync variant of :func:`aflush_groups`."""
    _refuse_in_loop("flush_groups")
    _run_sync(aflush_groups(), "Flushing the groups")


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
                consumer: Any = getattr(member, "consumer", member)
                if id(consumer) in seen or not lifecycle.expired(consumer):
                    continue
                seen.add(id(consumer))
                hub.loop.call_soon_threadsafe(lifecycle.expire, consumer)
                closed += 1
    store = get_store()
    processes = await cluster.sweep(store) if store.kind == "redis" else 0  # type: ignore[arg-type]
    return {"connections": closed, "history_entries": memory_store().clean_expired(), "processes": processes}


def clean_expired() -> dict[str, int]:
    """Sync variant of :func:`aclean_expired`."""
    _refuse_in_loop("clean_expired")
    return _run_sync(aclean_expired(), "Cleaning up expired entries")
