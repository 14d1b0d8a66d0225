"""What every history store is: entries, snapshots, epochs, and the ``Store`` protocol.

A store keeps, per group, a sequence counter, an epoch and the last frames published with history. Every
publish with history gets the next sequence number; the epoch is a random number that changes whenever the
stored history was lost (a new process, a flushed or restarted Redis, an idle group whose record expired), so
a client holding ``(seq, epoch)`` can tell "nothing missed" from "history gone".

Entries are ``(seq, time, text)``: ``time`` in seconds since the epoch, ``text`` the encoded frame as published,
without the ``seq``/``epoch`` stamp (see :func:`hypergen_ws.core.protocol.stamp`). An entry history may no longer
replay keeps its seq and time, and its text becomes ``protocol.REDACTED``: recovery stays gap-free. A frame
published with a :class:`Revision` carries a tag and rewrites the earlier entries it supersedes in the same step.
"""
from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ..core import conf

Entry = tuple[int, float, str]

#: Epochs are random integers below 2**48: exact in JavaScript numbers and in Redis' Lua.
EPOCH_LIMIT = 2**48
#: Seconds a group's record survives when nothing was ever published to it with history (a room that was only
#: joined or rendered): it goes when its last local member leaves, or this long after it was last read or kept
#: alive by a process with members in the group (docs/history.rst).
EMPTY_RECORD_TTL = 60.0


def new_epoch() -> int:
    """A random epoch (never 0)."""
    return secrets.randbelow(EPOCH_LIMIT - 1) + 1


@dataclass(slots=True)
class Snapshot:
    """A group's position (last ``seq`` and its ``epoch``) and the entries after a given seq, oldest first."""

    seq: int
    epoch: int
    entries: list[Entry] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Revision:
    """A frame that is a new version of something its group's history keeps (``@model_changes``).

    ``tag`` names the frame among the group's entries (``"chat.message:3:updated"``); ``rewrites`` says what
    becomes of the kept entries with those tags, in the same atomic step as the append: a new text, or None to
    redact them (a redacted entry loses its tag).
    """

    tag: str
    rewrites: Mapping[str, str | None] = field(default_factory=dict)


class Store(Protocol):
    """What history, recovery and the admin functions need from a store."""

    @property
    def kind(self) -> Literal["memory", "redis"]: ...

    async def append(self, group: str, text: str, size: int, revision: Revision | None = None) -> tuple[int, int]:
        """Give ``text`` the group's next seq, keep it (up to ``size`` entries); return ``(seq, epoch)``. With a
        ``revision``, the entry is tagged and the entries it supersedes are rewritten first."""

    async def redact(self, group: str, seq: int) -> bool:
        """Replace the kept entry ``seq`` with ``protocol.REDACTED``; False when no such entry is kept."""

    async def read(self, group: str, after: int | None) -> Snapshot:
        """The group's position and the entries with a seq above ``after`` (none when ``after`` is None)."""

    async def flush(self, group: str | None = None) -> None:
        """Forget the history of ``group`` (or of every group): its next publish starts a new epoch."""

    async def keep_alive(self, groups: list[str]) -> None:
        """``groups`` have members: their records must not expire for ``EMPTY_RECORD_TTL`` seconds from now."""

    async def forget_empty(self, group: str) -> None:
        """``group`` has no member left in this process: drop its record if nothing was ever published to it."""


def history_ttl() -> float:
    """``HISTORY_TTL``: seconds a frame stays in a group's history."""
    return float(conf.get("HISTORY_TTL"))


def sequence_ttl() -> float:
    """Seconds a group's counter and epoch survive without a publish (at least ``HISTORY_TTL``)."""
    return max(float(conf.get("SEQUENCE_TTL")), history_ttl())


def fresh_entries(snapshot: Snapshot, now: float | None = None) -> list[Entry]:
    """The snapshot's entries that are younger than ``HISTORY_TTL``."""
    limit = (now or time.time()) - history_ttl()
    return [e for e in snapshot.entries if e[1] >= limit]
