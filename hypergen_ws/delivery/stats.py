"""Process-local traffic counters, per consumer and per group.

Counters are plain ints on objects with ``__slots__``: no locks, no allocation on the fan-out path. A frame
published to a group is counted once per process, in :meth:`~hypergen_ws.delivery.hub.Hub.deliver_text`, as
``messages_out += local members`` and ``bytes_out += size * local members``; nothing is counted per member.

What is counted:

* ``connections``: sockets open now (accepted after the permission check); ``connections_total`` since start.
* ``messages_in`` / ``bytes_in``: frames received from browsers (text frames counted as UTF-8 bytes).
* ``messages_out`` / ``bytes_out``: frames written to sockets. For a group: group frames times the local members.
  For a consumer: group frames to its sockets plus frames sent to one socket (replies, errors, initial state,
  ``send_to="caller"``).

A group's counters exist while it has local members in this process and are dropped with its last member, so
dynamic groups (one per room, per user) do not grow memory. Consumer counters live as long as the process.
In a process that runs several event loops (tests, threads), concurrent updates may now and then lose an
increment; a server runs one loop per process.
"""
from __future__ import annotations

import os
import time
from typing import Any

__all__ = ["Counters", "clear", "reset", "snapshot"]

FIELDS = ("connections", "connections_total", "messages_in", "bytes_in", "messages_out", "bytes_out")


class Counters:
    """The counters of one consumer or one group."""

    __slots__ = FIELDS

    def __init__(self) -> None:
        self.connections = 0
        self.connections_total = 0
        self.messages_in = 0
        self.bytes_in = 0
        self.messages_out = 0
        self.bytes_out = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a dict (a copy)."""
        return {name: getattr(self, name) for name in FIELDS}


class _Group:
    __slots__ = ("counters", "labels")

    def __init__(self) -> None:
        self.counters = Counters()
        #: Local members by consumer label: the per-consumer share of every group frame.
        self.labels: dict[str, int] = {}


_consumers: dict[str, Counters] = {}
_groups: dict[str, _Group] = {}
_started = time.time()


def text_size(text: str) -> int:
    """The UTF-8 size of ``text`` (computed once per frame, not per member)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def consumer_counters(label: str) -> Counters:
    """The counters of the consumer ``label``, created on first use."""
    counters = _consumers.get(label)
    if counters is None:
        counters = _consumers[label] = Counters()
    return counters


# ---- called by the consumer and the hub -------------------------------------------------------------------
def opened(label: str) -> None:
    """A socket of ``label`` was accepted."""
    counters = consumer_counters(label)
    counters.connections += 1
    counters.connections_total += 1


def closed(label: str) -> None:
    """An accepted socket of ``label`` is gone."""
    counters = consumer_counters(label)
    if counters.connections > 0:
        counters.connections -= 1


def received(label: str, groups: list[str], size: int) -> None:
    """A frame of ``size`` bytes arrived from a socket of ``label`` that is a member of ``groups``."""
    counters = consumer_counters(label)
    counters.messages_in += 1
    counters.bytes_in += size
    for group in groups:
        entry = _groups.get(group)
        if entry is not None:
            entry.counters.messages_in += 1
            entry.counters.bytes_in += size


def sent(label: str, text: str) -> None:
    """A frame was queued for one socket of ``label`` (not through a group)."""
    counters = consumer_counters(label)
    counters.messages_out += 1
    counters.bytes_out += text_size(text)


def joined(group: str, label: str) -> None:
    """A local socket of ``label`` joined ``group``."""
    entry = _groups.get(group)
    if entry is None:
        entry = _groups[group] = _Group()
    entry.counters.connections += 1
    entry.counters.connections_total += 1
    entry.labels[label] = entry.labels.get(label, 0) + 1


def left(group: str, label: str) -> None:
    """A local socket of ``label`` left ``group``; the group's counters go with its last member."""
    entry = _groups.get(group)
    if entry is None:
        return
    entry.counters.connections -= 1
    remaining = entry.labels.get(label, 0) - 1
    if remaining > 0:
        entry.labels[label] = remaining
    else:
        entry.labels.pop(label, None)
    if entry.counters.connections <= 0:
        del _groups[group]


def group_frame(group: str, text: str, members: int) -> None:
    """A group frame was queued on ``members`` local sockets: counted once, not per member."""
    entry = _groups.get(group)
    if entry is None:
        return
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    counters = entry.counters
    counters.messages_out += members
    counters.bytes_out += size * members
    for label, count in entry.labels.items():
        per_consumer = _consumers.get(label)
        if per_consumer is not None:
            per_consumer.messages_out += count
            per_consumer.bytes_out += size * count


# ---- reading ------------------------------------------------------------------------------------------------
def snapshot() -> dict[str, Any]:
    """The counters of this process, JSON-ready.

    For example::

        {"pid": 1234, "uptime": 12.5,
         "totals": {"connections": 3, ...},
         "consumers": {"chat.send_message": {"connections": 3, "messages_in": 10, ...}},
         "groups": {"hgws.chat.send_message.room_name.vip": {"connections": 2, ...}}}
    """
    consumers = {label: counters.as_dict() for label, counters in sorted(_consumers.items())}
    groups = {name: entry.counters.as_dict() for name, entry in sorted(list(_groups.items()))}
    totals = {name: sum(row[name] for row in consumers.values()) for name in FIELDS}
    return {"pid": os.getpid(), "uptime": round(time.time() - _started, 3), "totals": totals,
            "consumers": consumers, "groups": groups}


def reset() -> None:
    """Zero every counter (for tests); open connections are counted again from now on."""
    for counters in _consumers.values():
        open_now = counters.connections
        Counters.__init__(counters)
        counters.connections = open_now
    for entry in _groups.values():
        open_now = entry.counters.connections
        Counters.__init__(entry.counters)
        entry.counters.connections = open_now


def clear() -> None:
    """Forget every counter, open connections included; for tests, between them, with no socket open
    (``hypergen_ws.testing.reset()``)."""
    _consumers.clear()
    _groups.clear()
