"""Where group histories live: in the process (in-memory layer) or in Redis (``channels_redis`` layers).

A store keeps, per group, a sequence counter, an epoch and the last frames published with history. Every
publish with history gets the next sequence number; the epoch is a random number that changes whenever the
stored history was lost (a new process, a flushed or restarted Redis, an idle group whose record expired), so
a client holding ``(seq, epoch)`` can tell "nothing missed" from "history gone".

Entries are ``(seq, time, text)``: ``time`` in seconds since the epoch, ``text`` the encoded frame as published,
without the ``seq``/``epoch`` stamp (see :func:`hypergen_ws.history.stamp`).
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import conf

Entry = tuple[int, float, str]

#: Epochs are random integers below 2**48: exact in JavaScript numbers and in Redis' Lua.
EPOCH_LIMIT = 2**48


def new_epoch() -> int:
    """A random epoch (never 0)."""
    return secrets.randbelow(EPOCH_LIMIT - 1) + 1


@dataclass(slots=True)
class Snapshot:
    """A group's position (last ``seq`` and its ``epoch``) and the entries after a given seq, oldest first."""

    seq: int
    epoch: int
    entries: list[Entry] = field(default_factory=list)


class Store(Protocol):
    """What history, recovery and the admin functions need from a store."""

    kind: str

    async def append(self, group: str, text: str, size: int) -> tuple[int, int]:
        """Give ``text`` the group's next seq, keep it (up to ``size`` entries); return ``(seq, epoch)``."""

    async def read(self, group: str, after: int | None) -> Snapshot:
        """The group's position and the entries with a seq above ``after`` (none when ``after`` is None)."""

    async def flush(self, group: str | None = None) -> None:
        """Forget the history of ``group`` (or of every group): its next publish starts a new epoch."""


class _Log:
    __slots__ = ("epoch", "seq", "entries", "touched")

    def __init__(self, epoch: int, now: float) -> None:
        self.epoch = epoch
        self.seq = 0
        self.entries: deque[Entry] = deque(maxlen=1)
        self.touched = now


class MemoryStore:
    """Histories in this process, for the in-memory layer. Thread-safe; shared by every event loop.

    ``lock`` is held by publishers while they assign a seq and queue the frame for every local hub, so frames
    reach each hub in seq order.
    """

    kind = "memory"

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._logs: dict[str, _Log] = {}
        self._next_sweep = 0.0

    def _log(self, group: str, now: float) -> _Log:
        log = self._logs.get(group)
        if log is not None and now - log.touched > _sequence_ttl():
            log = None
        if log is None:
            log = self._logs[group] = _Log(new_epoch(), now)
        return log

    def append_sync(self, group: str, text: str, size: int) -> tuple[int, int]:
        """Synchronous :meth:`append` (any thread)."""
        now = time.time()
        with self.lock:
            log = self._log(group, now)
            log.seq += 1
            log.touched = now
            if log.entries.maxlen != size:
                log.entries = deque(log.entries, maxlen=max(1, size))
            log.entries.append((log.seq, now, text))
            if now >= self._next_sweep:
                self._sweep(now)
            return log.seq, log.epoch

    def read_sync(self, group: str, after: int | None) -> Snapshot:
        """Synchronous :meth:`read` (any thread)."""
        with self.lock:
            log = self._log(group, time.time())
            entries = [] if after is None else [e for e in log.entries if e[0] > after]
            return Snapshot(log.seq, log.epoch, entries)

    def flush_sync(self, group: str | None = None) -> None:
        """Synchronous :meth:`flush` (any thread)."""
        with self.lock:
            if group is None:
                self._logs.clear()
            else:
                self._logs.pop(group, None)

    def groups(self) -> list[str]:
        """Groups that have a history record."""
        with self.lock:
            return list(self._logs)

    def clean_expired(self) -> int:
        """Drop entries older than ``HISTORY_TTL`` and idle records; return how many entries were dropped."""
        with self.lock:
            return self._sweep(time.time())

    def _sweep(self, now: float) -> int:
        self._next_sweep = now + 60
        ttl, seq_ttl, dropped = _history_ttl(), _sequence_ttl(), 0
        for group, log in list(self._logs.items()):
            if now - log.touched > seq_ttl:
                dropped += len(log.entries)
                del self._logs[group]
                continue
            while log.entries and now - log.entries[0][1] > ttl:
                log.entries.popleft()
                dropped += 1
        return dropped

    async def append(self, group: str, text: str, size: int) -> tuple[int, int]:
        return self.append_sync(group, text, size)

    async def read(self, group: str, after: int | None) -> Snapshot:
        return self.read_sync(group, after)

    async def flush(self, group: str | None = None) -> None:
        self.flush_sync(group)


def _history_ttl() -> float:
    return float(conf.get("HISTORY_TTL"))


def _sequence_ttl() -> float:
    return max(float(conf.get("SEQUENCE_TTL")), _history_ttl())


_memory_store = MemoryStore()
_warned: list[bool] = []
logger = logging.getLogger("hypergen_ws")


def memory_store() -> MemoryStore:
    """The process's in-memory store."""
    return _memory_store


def get_store(layer: Any = None) -> Store:
    """The store that goes with the configured channel layer: Redis for ``channels_redis``, else memory."""
    from channels.layers import InMemoryChannelLayer, get_channel_layer

    if layer is None:
        layer = get_channel_layer(conf.get("CHANNEL_LAYER"))
    if layer is None or not _is_redis(layer):
        if layer is not None and not isinstance(layer, InMemoryChannelLayer) and not _warned:
            _warned.append(True)
            logger.warning("History keeps its seq numbers in each process with %s: they are consistent only in a "
                           "single process. Use channels_redis (or the in-memory layer) for history.",
                           type(layer).__name__)
        return _memory_store
    store = getattr(layer, "_hypergen_ws_store", None)
    if store is None:
        from .redis_store import RedisStore

        store = RedisStore.for_layer(layer)
        layer._hypergen_ws_store = store
    return store


def _is_redis(layer: Any) -> bool:
    return type(layer).__module__.startswith("channels_redis")
