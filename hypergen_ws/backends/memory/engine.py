"""The memory engine (:class:`hypergen_ws.backends.engine.Engine` for one process): history in
:class:`~hypergen_ws.backends.memory.store.MemoryStore`, presence and connection counts in dicts.

It keeps what the Redis engine keeps, in the same shape (an entry per user and process, a count per user), so
the features do the same with either. Every process it knows is this one and alive: nothing beats, nothing is
swept. Each call holds a lock, since hubs of several event loops (threads) may share it.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Collection
from typing import Any, Literal

from .store import MemoryStore, memory_store


class MemoryPresence:
    """Presence entries of this process's hubs (``backends.engine.Presence``)."""

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock
        #: group -> (user key, process) -> entry
        self.fields: dict[str, dict[tuple[str, str], str]] = {}
        #: group -> user key -> sockets
        self.counts: dict[str, dict[str, int]] = {}

    def clear(self) -> None:
        with self.lock:
            self.fields.clear()
            self.counts.clear()

    async def join(self, group: str, process: str, key: str, entry: str) -> int:
        with self.lock:
            self.fields.setdefault(group, {})[(key, process)] = entry
            counts = self.counts.setdefault(group, {})
            counts[key] = counts.get(key, 0) + 1
            return counts[key]

    async def leave(self, group: str, process: str, key: str, entry: str, last_in_group: bool) -> int:
        with self.lock:
            fields = self.fields.setdefault(group, {})
            if entry:
                fields[(key, process)] = entry
            else:
                fields.pop((key, process), None)
            counts = self.counts.setdefault(group, {})
            left = counts.get(key, 0) - 1
            if left <= 0:
                counts.pop(key, None)
            else:
                counts[key] = left
            self._drop_empty(group)
            return left

    async def reassert(self, group: str, process: str, entries: dict[str, str]) -> None:
        with self.lock:
            fields = {f: e for f, e in self.fields.get(group, {}).items() if f[1] != process}
            fields.update({(key, process): entry for key, entry in entries.items()})
            counts: dict[str, int] = {}
            for (key, _process), entry in fields.items():
                counts[key] = counts.get(key, 0) + int(json.loads(entry)["count"])
            self.fields[group], self.counts[group] = fields, counts
            self._drop_empty(group)

    async def absent(self, group: str, keys: list[str]) -> list[str]:
        with self.lock:
            counts = self.counts.get(group, {})
            return [key for key in keys if counts.get(key, 0) <= 0]

    async def entries(self, group: str, live: Collection[str]) -> list[tuple[str, str, dict[str, Any]]]:
        with self.lock:
            found = list(self.fields.get(group, {}).items())
        return [(key, process, json.loads(entry)) for (key, process), entry in found]

    async def sweep_process(self, process: str) -> list[tuple[str, dict[str, Any]]]:
        gone: list[tuple[str, dict[str, Any]]] = []
        with self.lock:
            for group in list(self.fields):
                fields, counts = self.fields[group], self.counts.setdefault(group, {})
                for field in [f for f in fields if f[1] == process]:
                    info = json.loads(fields.pop(field))
                    left = counts.get(field[0], 0) - int(info["count"])
                    if left <= 0:
                        counts.pop(field[0], None)
                        gone.append((group, info))
                    else:
                        counts[field[0]] = left
                self._drop_empty(group)
        return gone

    async def flush(self) -> None:
        self.clear()

    def _drop_empty(self, group: str) -> None:
        if not self.fields.get(group) and not self.counts.get(group):
            self.fields.pop(group, None)
            self.counts.pop(group, None)


class MemoryConnections:
    """Sockets per user and process (``backends.engine.ConnectionCounts``)."""

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock
        #: user key -> process -> sockets
        self.counts: dict[str, dict[str, int]] = {}

    def clear(self) -> None:
        with self.lock:
            self.counts.clear()

    async def admit(self, process: str, user: str, limit: int) -> tuple[bool, int]:
        with self.lock:
            mine = self.counts.setdefault(user, {})
            total = sum(mine.values())
            if total >= limit:
                if not mine:
                    del self.counts[user]
                return False, total
            mine[process] = mine.get(process, 0) + 1
            return True, total + 1

    async def release(self, process: str, user: str) -> int:
        with self.lock:
            mine = self.counts.get(user, {})
            left = mine.get(process, 0) - 1
            if left <= 0:
                mine.pop(process, None)
                if not mine:
                    self.counts.pop(user, None)
            else:
                mine[process] = left
            return left

    async def reassert(self, process: str, counts: dict[str, int]) -> None:
        with self.lock:
            for user in list(self.counts):
                self.counts[user].pop(process, None)
            for user, count in counts.items():
                if count > 0:
                    self.counts.setdefault(user, {})[process] = count
            for user in [u for u, mine in self.counts.items() if not mine]:
                del self.counts[user]

    async def sweep_process(self, process: str) -> None:
        await self.reassert(process, {})


class OneProcess:
    """The processes of the memory engine: this one, which has nobody to tell (``backends.engine.Processes``)."""

    beats = False

    async def live(self) -> list[str]:
        return []

    async def group_counts(self, process: str) -> dict[str, int]:
        return {}

    async def reports(self) -> list[tuple[str, float, str | None]]:
        return []

    async def server_run_id(self) -> str | None:
        return None

    async def read_instance(self) -> tuple[bytes | None, bytes | None]:
        return None, None

    async def declare_lost(self, known: bytes | None) -> bool:
        return False

    async def beat(self, process: str, counts: dict[str, int], ttl: float, now: float, report: str | None,
                   channels: dict[str, str]) -> None:
        return None

    async def claim_dead(self, now: float | None = None) -> list[str]:
        return []

    async def group_channels(self, process: str) -> dict[str, str]:
        return {}

    async def forget(self, process: str) -> None:
        return None


class MemoryEngine:
    """The engine of one process (``backends.engine.Engine``)."""

    kind: Literal["memory"] = "memory"

    def __init__(self, store: MemoryStore) -> None:
        lock = threading.Lock()
        self.store = store
        self.presence = MemoryPresence(lock)
        self.connections = MemoryConnections(lock)
        self.processes = OneProcess()

    def clear(self) -> None:
        """Forget everything: history, presence and counts (``hypergen_ws.testing.reset()``)."""
        self.store.flush_sync()
        self.presence.clear()
        self.connections.clear()


_engine = MemoryEngine(memory_store())


def memory_engine() -> MemoryEngine:
    """This process's memory engine (one per process)."""
    return _engine
