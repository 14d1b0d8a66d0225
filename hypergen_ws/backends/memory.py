"""Group histories in this process, for the in-memory channel layer (one process by definition)."""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Literal

from .base import Entry, Snapshot, history_ttl, new_epoch, sequence_ttl

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

    kind: Literal["memory"] = "memory"

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._logs: dict[str, _Log] = {}
        self._next_sweep = 0.0

    def _log(self, group: str, now: float) -> _Log:
        log = self._logs.get(group)
        if log is not None and now - log.touched > sequence_ttl():
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
        ttl, seq_ttl, dropped = history_ttl(), sequence_ttl(), 0
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



_memory_store = MemoryStore()


def memory_store() -> MemoryStore:
    """The process's in-memory store."""
    return _memory_store
