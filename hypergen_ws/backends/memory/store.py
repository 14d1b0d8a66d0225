"""Group histories in this process, for the in-memory channel layer (one process by definition)."""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from ...core.protocol import REDACTED
from ..base import EMPTY_RECORD_TTL, Entry, Revision, Snapshot, history_ttl, new_epoch, sequence_ttl


class _Log:
    __slots__ = ("epoch", "seq", "entries", "touched", "tags")

    def __init__(self, epoch: int, now: float) -> None:
        self.epoch = epoch
        self.seq = 0
        self.entries: deque[Entry] = deque(maxlen=1)
        self.touched = now
        #: The tags of kept entries (``Revision.tag``), by seq.
        self.tags: dict[int, str] = {}

    def rewrite(self, change: dict[int, str | None]) -> bool:
        """Give the kept entries in ``change`` (seq -> text, None: redacted) their new text; whether any was."""
        found = False
        for i, (seq, ts, _text) in enumerate(self.entries):
            if seq in change:
                text = change[seq]
                self.entries[i] = (seq, ts, REDACTED if text is None else text)
                if text is None:
                    self.tags.pop(seq, None)
                found = True
        return found

    def revise(self, revision: Revision) -> None:
        """Rewrite the kept entries ``revision`` supersedes, by their tags."""
        if self.tags and revision.rewrites:
            self.rewrite({seq: revision.rewrites[tag] for seq, tag in self.tags.items() if tag in revision.rewrites})

    def forget_tags(self) -> None:
        """Drop the tags of entries that are no longer kept."""
        first = self.entries[0][0] if self.entries else self.seq + 1
        for seq in [seq for seq in self.tags if seq < first]:
            del self.tags[seq]


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
        #: Whether a group has members in this process; the sweep keeps the empty records of those.
        self.pinned: Callable[[str], bool] = lambda group: False

    def _log(self, group: str, now: float) -> _Log:
        log = self._logs.get(group)
        if log is not None and now - log.touched > (sequence_ttl() if log.seq else EMPTY_RECORD_TTL):
            log = None
        if log is None:
            log = self._logs[group] = _Log(new_epoch(), now)
        return log

    def append_sync(self, group: str, text: str, size: int, revision: Revision | None = None) -> tuple[int, int]:
        """Synchronous :meth:`append` (any thread)."""
        now = time.time()
        with self.lock:
            log = self._log(group, now)
            if revision is not None:
                log.revise(revision)
            log.seq += 1
            log.touched = now
            if log.entries.maxlen != size:
                log.entries = deque(log.entries, maxlen=max(1, size))
            log.entries.append((log.seq, now, text))
            if revision is not None:
                log.tags[log.seq] = revision.tag
            if len(log.tags) > len(log.entries):
                log.forget_tags()
            if now >= self._next_sweep:
                self._sweep(now)
            return log.seq, log.epoch

    def redact_sync(self, group: str, seq: int) -> bool:
        """Synchronous :meth:`redact` (any thread)."""
        with self.lock:
            log = self._logs.get(group)
            return log is not None and log.rewrite({seq: None})

    def read_sync(self, group: str, after: int | None) -> Snapshot:
        """Synchronous :meth:`read` (any thread)."""
        now = time.time()
        with self.lock:
            log = self._log(group, now)
            if not log.seq:
                log.touched = now  # an empty record lives EMPTY_RECORD_TTL from its last read
            entries = [] if after is None else [e for e in log.entries if e[0] > after]
            if now >= self._next_sweep:
                self._sweep(now)
            return Snapshot(log.seq, log.epoch, entries)

    def keep_alive_sync(self, groups: list[str]) -> None:
        """Synchronous :meth:`keep_alive`."""
        now = time.time()
        with self.lock:
            for group in groups:
                log = self._logs.get(group)
                if log is not None and not log.seq:
                    log.touched = now

    def forget_empty_sync(self, group: str) -> None:
        """Synchronous :meth:`forget_empty`: this process is the only one, so the group has no member left."""
        with self.lock:
            log = self._logs.get(group)
            if log is not None and not log.seq:
                del self._logs[group]

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
            if not log.seq and self.pinned(group):
                log.touched = now
                continue
            if now - log.touched > (seq_ttl if log.seq else EMPTY_RECORD_TTL):
                dropped += len(log.entries)
                del self._logs[group]
                continue
            while log.entries and now - log.entries[0][1] > ttl:
                log.entries.popleft()
                dropped += 1
            if log.tags:
                log.forget_tags()
        return dropped

    async def append(self, group: str, text: str, size: int, revision: Revision | None = None) -> tuple[int, int]:
        return self.append_sync(group, text, size, revision)

    async def redact(self, group: str, seq: int) -> bool:
        return self.redact_sync(group, seq)

    async def read(self, group: str, after: int | None) -> Snapshot:
        return self.read_sync(group, after)

    async def flush(self, group: str | None = None) -> None:
        self.flush_sync(group)

    async def keep_alive(self, groups: list[str]) -> None:
        self.keep_alive_sync(groups)

    async def forget_empty(self, group: str) -> None:
        self.forget_empty_sync(group)



_memory_store = MemoryStore()


def memory_store() -> MemoryStore:
    """The process's in-memory store."""
    return _memory_store
