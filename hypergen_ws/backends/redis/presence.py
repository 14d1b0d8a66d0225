"""Presence in Redis: one atomic script per change (docs/presence.rst).

Keys (``<p>`` is ``HYPERGEN_WS["REDIS_PREFIX"]``, on the group's host)::

    <p>:presence:<group>   hash: "<user key>|<process id>" -> {"id", "user_id", "username", "count", "since"}
    <p>:pcount:<group>     hash: user key -> sockets across processes (join/leave detection)
    <p>:pgroups:<process>  set: the groups a process has entries in (to clean up after it)
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .scripts import JOIN, LEAVE, REASSERT, SWEEP

if TYPE_CHECKING:  # the store imports channels_redis, an optional extra
    from .store import RedisStore


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _keys(store: RedisStore, group: str, node_id: str) -> list[str]:
    p = store.prefix
    return [f"{p}:presence:{group}", f"{p}:pcount:{group}", f"{p}:pgroups:{node_id}"]


async def join(store: RedisStore, group: str, node_id: str, key: str, entry: str) -> int:
    """Write this process's entry of user ``key``; return the user's sockets across processes."""
    total = await store.clients.get(store.clients.index(group)).eval(
        JOIN, 3, *_keys(store, group, node_id), f"{key}|{node_id}", entry, key, 1, group)
    return int(total)


async def leave(store: RedisStore, group: str, node_id: str, key: str, entry: str, last_in_group: bool) -> int:
    """Update (``entry``) or remove (``""``) this process's entry of ``key``; return the user's sockets left."""
    total = await store.clients.get(store.clients.index(group)).eval(
        LEAVE, 3, *_keys(store, group, node_id), f"{key}|{node_id}", entry, key, group,
        "1" if last_in_group else "0")
    return int(total)


async def reassert(store: RedisStore, group: str, node_id: str, entries: dict[str, str]) -> None:
    """Replace this process's entries of ``group`` (user key -> stored entry) and recount every user."""
    args: list[Any] = [f"|{node_id}", group]
    for key, entry in entries.items():
        args += [f"{key}|{node_id}", entry]
    keys = _keys(store, group, node_id)
    await store.clients.retrying(store.clients.index(group), lambda client: client.eval(REASSERT, 3, *keys, *args))


async def absent(store: RedisStore, group: str, keys: list[str]) -> list[str]:
    """Those of the users ``keys`` who have no socket left in ``group`` in any process."""
    key = f"{store.prefix}:pcount:{group}"
    counts = await store.clients.retrying(store.clients.index(group), lambda client: client.hmget(key, keys))
    return [user for user, count in zip(keys, counts) if count is None or int(count) <= 0]


async def entries(store: RedisStore, group: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Every entry of ``group``: ``(user key, process id, stored entry)``."""
    key = f"{store.prefix}:presence:{group}"
    raw = await store.clients.retrying(store.clients.index(group), lambda client: client.hgetall(key))
    out = []
    for field, value in raw.items():
        key, _, node_id = _text(field).rpartition("|")
        out.append((key, node_id, json.loads(value)))
    return out


async def sweep_process(store: RedisStore, node_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Remove a dead process's entries; return ``(group, entry)`` of the users left without a socket."""
    p = store.prefix
    gone: list[tuple[str, dict[str, Any]]] = []
    for client in store.clients.all():
        groups = [_text(g) for g in await client.smembers(f"{p}:pgroups:{node_id}")]
        for group in groups:
            target = store.clients.get(store.clients.index(group))
            left = await target.eval(SWEEP, 2, f"{p}:presence:{group}", f"{p}:pcount:{group}", f"|{node_id}")
            gone.extend((group, json.loads(info)) for info in left)
        await client.delete(f"{p}:pgroups:{node_id}")
    return gone


async def flush(store: RedisStore, patterns: tuple[str, ...], generation: str) -> None:
    """Delete the keys matching ``patterns`` and the process list; set a new generation (``flush_groups``)."""
    p = store.prefix
    for redis in store.clients.all():
        keys = [key for pattern in patterns async for key in redis.scan_iter(match=pattern, count=500)]
        async with redis.pipeline(transaction=True) as pipe:
            for i in range(0, len(keys), 500):
                pipe.delete(*keys[i:i + 500])
            pipe.delete(f"{p}:procs")
            pipe.set(f"{p}:generation", generation)
            await pipe.execute()
