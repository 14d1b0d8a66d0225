"""The Redis engine (:class:`hypergen_ws.backends.engine.Engine` for every process that shares a Redis).

History is :class:`~hypergen_ws.backends.redis.store.RedisStore`; presence, connection counts and the process
heartbeats are the scripts and keys of :mod:`.presence`, :mod:`.connections` and :mod:`.heartbeats`, on the
store's clients.
"""
from __future__ import annotations

import secrets
from collections.abc import Collection
from typing import Any, Literal

from . import connections, heartbeats, presence
from .store import RedisStore


class RedisPresence:
    """Presence in Redis (``backends.engine.Presence``)."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store

    async def join(self, group: str, process: str, key: str, entry: str) -> int:
        return await presence.join(self.store, group, process, key, entry)

    async def leave(self, group: str, process: str, key: str, entry: str, last_in_group: bool) -> int:
        return await presence.leave(self.store, group, process, key, entry, last_in_group)

    async def reassert(self, group: str, process: str, entries: dict[str, str]) -> None:
        await presence.reassert(self.store, group, process, entries)

    async def absent(self, group: str, keys: list[str]) -> list[str]:
        return await presence.absent(self.store, group, keys)

    async def entries(self, group: str, live: Collection[str]) -> list[tuple[str, str, dict[str, Any]]]:
        alive = set(await heartbeats.live_processes(self.store)).union(live)
        return [entry for entry in await presence.entries(self.store, group) if entry[1] in alive]

    async def sweep_process(self, process: str) -> list[tuple[str, dict[str, Any]]]:
        return await presence.sweep_process(self.store, process)

    async def flush(self) -> None:
        p = self.store.prefix
        await presence.flush(self.store, (f"{p}:pg:*", f"{p}:presence:*", f"{p}:pcount:*", f"{p}:pgroups:*"),
                             secrets.token_hex(8))


class RedisConnections:
    """Connection counts in Redis (``backends.engine.ConnectionCounts``)."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store

    async def admit(self, process: str, user: str, limit: int) -> tuple[bool, int]:
        return await connections.admit(self.store, process, user, limit)

    async def release(self, process: str, user: str) -> int:
        return await connections.release(self.store, process, user)

    async def reassert(self, process: str, counts: dict[str, int]) -> None:
        await connections.reassert(self.store, process, counts)

    async def sweep_process(self, process: str) -> None:
        await connections.sweep_process(self.store, process)


class RedisProcesses:
    """The process heartbeats in Redis (``backends.engine.Processes``)."""

    beats = True

    def __init__(self, store: RedisStore) -> None:
        self.store = store

    async def live(self) -> list[str]:
        return await heartbeats.live_processes(self.store)

    async def group_counts(self, process: str) -> dict[str, int]:
        return await heartbeats.group_counts(self.store, process)

    async def reports(self) -> list[tuple[str, float, str | None]]:
        return await heartbeats.process_reports(self.store)

    async def server_run_id(self) -> str | None:
        return await heartbeats.server_run_id(self.store)

    async def read_instance(self) -> tuple[bytes | None, bytes | None]:
        return await heartbeats.read_instance(self.store)

    async def declare_lost(self, known: bytes | None) -> bool:
        return await heartbeats.declare_lost(self.store, known)

    async def beat(self, process: str, counts: dict[str, int], ttl: float, now: float, report: str | None,
                   channels: dict[str, str]) -> None:
        await heartbeats.beat(self.store, process, counts, ttl, now, report, channels)

    async def claim_dead(self, now: float | None = None) -> list[str]:
        return await heartbeats.claim_dead(self.store, now)

    async def group_channels(self, process: str) -> dict[str, str]:
        return await heartbeats.group_channels(self.store, process)

    async def forget(self, process: str) -> None:
        await heartbeats.forget_process(self.store, process)


class RedisEngine:
    """The engine of the processes that share one Redis (``backends.engine.Engine``)."""

    kind: Literal["redis"] = "redis"

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.presence = RedisPresence(store)
        self.connections = RedisConnections(store)
        self.processes = RedisProcesses(store)

    @classmethod
    def for_layer(cls, layer: Any) -> RedisEngine:
        """The engine of a ``channels_redis`` layer: on its hosts, with its key prefix."""
        return cls(RedisStore.for_layer(layer))
