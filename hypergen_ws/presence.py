"""Who is connected to a group: ``@consumer(presence=True)`` (docs/presence.rst).

A user is counted once per group however many sockets they have open (across processes on Redis); an
anonymous socket is a user of its own. The group gets ``{"type": "presence", "event": "join", ...}`` for a
user's first socket and ``"leave"`` after their last one; a new socket first gets the current list as
``{"type": "presence", "event": "list", "users": [...]}``.

On Redis (``<p>`` is ``HYPERGEN_WS["REDIS_PREFIX"]``, keys on the group's host)::

    <p>:presence:<group>   hash: "<user key>|<process id>" -> {"user_id", "username", "count", "since"}
    <p>:pcount:<group>     hash: user key -> sockets across processes (join/leave detection)
    <p>:pgroups:<process>  set: the groups a process has entries in (to clean up after it)

Entries of a process that stopped sending heartbeats are left out of listings at once and removed, with leave
frames, by the next live process's heartbeat (``PROCESS_TTL``, see :mod:`hypergen_ws.cluster`).
"""
from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary, WeakSet

from . import protocol
from .lua import JOIN, LEAVE, REASSERT, SWEEP
from .groups import check_group_name
from .stores import get_store

if TYPE_CHECKING:
    from .consumers import HypergenConsumer
    from .fanout import Hub
    from .redis_store import RedisStore


class Entry:
    """One user's sockets in one group in this process (or, in memory, in the whole process)."""

    __slots__ = ("key", "user_id", "username", "count", "since")

    def __init__(self, key: str, user_id: Any, username: str | None) -> None:
        self.key, self.user_id, self.username = key, user_id, username
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


def identity(consumer: HypergenConsumer) -> tuple[str, Any, str | None]:
    """``(key, user_id, username)``: one key per user, or per socket for anonymous ones."""
    user = consumer.scope.get("user")
    if user is not None and getattr(user, "is_authenticated", False):
        pk = user.pk if isinstance(user.pk, (int, str)) else str(user.pk)
        return f"u:{pk}", pk, user.get_username()
    token = consumer.__dict__.setdefault("_hgws_anon", secrets.token_hex(6))
    return f"a:{token}", None, None


logger = logging.getLogger("hypergen_ws")

# Local entries: per hub (Redis) or in one process-wide table (in-memory layer).
_local: WeakKeyDictionary[Any, dict[str, dict[str, Entry]]] = WeakKeyDictionary()
#: Hubs whose entries in Redis may be wrong (a write failed): their next heartbeat writes them again.
_stale: WeakSet[Any] = WeakSet()


def needs_reassert(hub: Hub) -> bool:
    """Whether a write of ``hub``'s entries failed since its last :func:`reassert`."""
    return hub in _stale
_memory: dict[str, dict[str, Entry]] = {}
_memory_lock = threading.Lock()


def _redis(hub: Hub | None) -> RedisStore | None:
    store = get_store(hub.layer if hub is not None else None)
    return store if store.kind == "redis" else None  # type: ignore[return-value]


def _node_id(hub: Hub) -> str:
    from .cluster import ensure_started

    node = ensure_started(hub)
    assert node is not None
    return node.id


def _keys(store: RedisStore, group: str, node_id: str) -> list[str]:
    p = store.prefix
    return [f"{p}:presence:{group}", f"{p}:pcount:{group}", f"{p}:pgroups:{node_id}"]


async def joined(consumer: HypergenConsumer, group: str) -> None:
    """Count a new socket; announce the user's first one; send the socket the current list."""
    key, user_id, username = identity(consumer)
    hub = consumer._hub
    store = _redis(hub)
    if store is None or hub is None:
        with _memory_lock:
            entry = _memory.setdefault(group, {}).setdefault(key, Entry(key, user_id, username))
            entry.count += 1
            first = entry.count == 1
    else:
        table = _local.setdefault(hub, {}).setdefault(group, {})
        entry = table.setdefault(key, Entry(key, user_id, username))
        entry.count += 1
        node_id = _node_id(hub)
        try:
            total = await store.clients.get(store.clients.index(group)).eval(
                JOIN, 3, *_keys(store, group, node_id), f"{key}|{node_id}", entry.stored(), key, 1, group)
        except Exception:
            logger.warning("Could not record presence in %s (is Redis down?); written at a later heartbeat", group,
                           exc_info=True)
            _stale.add(hub)
            return
        first = int(total) == 1
    try:
        users = await aget_presence(group)
    except Exception:
        logger.warning("Could not list the presence of %s", group, exc_info=True)
    else:
        consumer.send_text(protocol.encode({"type": "presence", "event": "list", "users": users}))
    if first:
        await _announce(group, {"type": "presence", "event": "join", **entry.public(1)})


async def left(consumer: HypergenConsumer, group: str) -> None:
    """Uncount a gone socket; announce the user's last one."""
    key, _user_id, _username = identity(consumer)
    hub = consumer._hub
    store = _redis(hub)
    if store is None or hub is None:
        with _memory_lock:
            table = _memory.get(group, {})
            entry = table.get(key)
            if entry is None:
                return
            entry.count -= 1
            gone = entry.count <= 0
            if gone:
                del table[key]
                if not table:
                    _memory.pop(group, None)
    else:
        table = _local.get(hub, {}).get(group, {})
        entry = table.get(key)
        if entry is None:
            return
        entry.count -= 1
        if entry.count <= 0:
            del table[key]
        node_id = _node_id(hub)
        try:
            total = await store.clients.get(store.clients.index(group)).eval(
                LEAVE, 3, *_keys(store, group, node_id), f"{key}|{node_id}",
                entry.stored() if entry.count > 0 else "", key, group, "1" if not table else "0")
        except Exception:
            logger.warning("Could not remove a presence entry of %s (is Redis down?); fixed at a later heartbeat",
                           group, exc_info=True)
            _stale.add(hub)
            return
        gone = int(total) <= 0
    if gone:
        await _announce(group, {"type": "presence", "event": "leave", "id": entry.key, "user_id": entry.user_id,
                                "username": entry.username})


async def _announce(group: str, frame: dict[str, Any]) -> None:
    from .publish import apublish_text

    try:
        await apublish_text(group, protocol.encode(frame), history=False)
    except Exception:
        logger.warning("Could not send a presence frame to %s", group, exc_info=True)


async def aget_presence(group: str) -> list[dict[str, Any]]:
    """Who is connected to ``group``: ``[{"id", "user_id", "username", "connections", "since"}, ...]``.

    ``since`` is when the user's oldest open socket connected (ISO 8601, UTC). Sorted by ``since``.
    """
    check_group_name(group)
    store = _redis(None)
    if store is None:
        with _memory_lock:
            users = [e.public() for e in _memory.get(group, {}).values()]
        return sorted(users, key=lambda u: u["since"])
    from .cluster import live_processes, node_of
    from .fanout import local_hubs

    live = set(await live_processes(store))
    for hub in local_hubs():  # this process's own ids count even before their first beat
        node = node_of(hub)
        if node is not None and not node.task.done():
            live.add(node.id)
    raw = await store.clients.get(store.clients.index(group)).hgetall(f"{store.prefix}:presence:{group}")
    merged: dict[str, dict[str, Any]] = {}
    for field, value in raw.items():
        key, _, node_id = field.decode().rpartition("|")
        if node_id not in live:
            continue
        data = json.loads(value)
        user = merged.get(key)
        if user is None:
            merged[key] = {"id": key, "user_id": data["user_id"], "username": data["username"],
                           "connections": data["count"], "since": data["since"]}
        else:
            user["connections"] += data["count"]
            user["since"] = min(user["since"], data["since"])
    users = sorted(merged.values(), key=lambda u: u["since"])
    for user in users:
        user["since"] = _iso(user["since"])
    return users


def forget_memory() -> None:
    """Forget every in-memory presence entry; for tests, between them (``hypergen_ws.testing.reset()``)."""
    with _memory_lock:
        _memory.clear()


def get_presence(group: str) -> list[dict[str, Any]]:
    """Sync variant of :func:`aget_presence`."""
    from .history import _refuse_in_loop, _run_sync

    _refuse_in_loop("get_presence")
    return _run_sync(aget_presence(group), f"Reading the presence of {group!r}")


async def reassert(hub: Hub) -> None:
    """Write this hub's entries again (Redis lost them, ``flush_groups()`` removed them, or a write failed);
    idempotent: this process's fields are replaced and the per-user totals recounted from the entries."""
    store = _redis(hub)
    if store is None:
        return
    node_id = _node_id(hub)
    _stale.discard(hub)
    try:
        for group, table in list(_local.get(hub, {}).items()):
            args: list[Any] = [f"|{node_id}", group]
            for key, entry in list(table.items()):
                args += [f"{key}|{node_id}", entry.stored()]
            await store.clients.get(store.clients.index(group)).eval(
                REASSERT, 3, *_keys(store, group, node_id), *args)
            if not table:
                _local.get(hub, {}).pop(group, None)
    except BaseException:
        _stale.add(hub)
        raise


async def sweep_process(store: RedisStore, node_id: str) -> None:
    """Remove a dead process's entries and send leave frames for users that had no other socket."""
    p = store.prefix
    for client in store.clients.all():
        groups = [g.decode() for g in await client.smembers(f"{p}:pgroups:{node_id}")]
        for group in groups:
            target = store.clients.get(store.clients.index(group))
            gone = await target.eval(SWEEP, 2, f"{p}:presence:{group}", f"{p}:pcount:{group}", f"|{node_id}")
            for info in gone:
                data = json.loads(info)
                await _announce(group, {"type": "presence", "event": "leave", "id": data["id"],
                                        "user_id": data["user_id"], "username": data["username"]})
        await client.delete(f"{p}:pgroups:{node_id}")


def memory_rebuild() -> None:
    """Rebuild the in-memory table from the live sockets of this process (``flush_groups()``)."""
    from .fanout import local_hubs

    table: dict[str, dict[str, Entry]] = {}
    for hub in local_hubs():
        for group, members in list(hub.members.items()):
            for member in list(members):
                spec = getattr(member, "hypergen", None)
                if spec is None or not spec.presence_enabled or member.__dict__.get("_hgws_primary") != group:
                    continue
                key, user_id, username = identity(member)
                old = _memory.get(group, {}).get(key)
                entry = table.setdefault(group, {}).setdefault(key, Entry(key, user_id, username))
                entry.count += 1
                if old is not None:
                    entry.since = old.since
    with _memory_lock:
        _memory.clear()
        _memory.update(table)
