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

Rarer events are counted by kind, consumer label and code (:func:`event`): refused connections (by close code),
error frames and protocol closes (by error or close code), slow clients cut off, publishes, recovery outcomes
and channel-layer errors (by operation). A *sink* (:func:`set_sink`, e.g. :mod:`hypergen_ws.stats.metrics`)
gets the same calls, each once per frame or event, never per member.
In a process that runs several event loops (tests, threads), concurrent updates may now and then lose an
increment; a server runs one loop per process.
"""
from __future__ import annotations

import os
import re
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["Counters", "Sink", "clear", "event", "reset", "set_sink", "snapshot"]

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


class Sink(Protocol):
    """What receives the counts as they happen (besides the counters here): see :func:`set_sink`."""

    def opened(self, label: str) -> None: ...
    def closed(self, label: str) -> None: ...
    def received(self, label: str, size: int) -> None: ...
    def sent(self, label: str, size: int) -> None: ...

    def group_frame(self, labels: Mapping[str, int], size: int, published: float | None) -> None:
        """A group frame of ``size`` bytes reached ``labels[label]`` local sockets of each consumer; ``published``
        is the wall-clock time of its publish, when known."""

    def event(self, kind: str, label: str, code: str) -> None: ...


#: Kinds of :func:`event`.
REFUSED = "refusals"  # code: the close code (4401, 4403)
ERROR = "errors"  # code: the error code of an error frame, or the close code of a protocol violation
SLOW_CLOSE = "slow_closes"  # code: the close code (1013)
PUBLISHED = "publishes"  # label: the consumer whose group it is ("" for other groups); code: ""
RECOVERY = "recoveries"  # code: "replayed", or "resynced.<reason>"
LAYER_ERROR = "layer_errors"  # label: ""; code: the operation (receive, send, group_add, group_discard)
EVENT_KINDS = (REFUSED, ERROR, SLOW_CLOSE, PUBLISHED, RECOVERY, LAYER_ERROR)

_consumers: dict[str, Counters] = {}
_groups: dict[str, _Group] = {}
_events: dict[str, dict[str, dict[str, int]]] = {kind: {} for kind in EVENT_KINDS}
_started = time.time()
_sink: Sink | None = None
#: ``(monotonic time, messages_in, messages_out)`` of recent snapshots, for the rates.
_samples: deque[tuple[float, int, int]] = deque(maxlen=32)
_clock = time.monotonic


def set_sink(sink: Sink | None) -> None:
    """Send every count to ``sink`` too (None: stop)."""
    global _sink
    _sink = sink


def event(kind: str, label: str, code: str | int = "") -> None:
    """Count one event of ``kind`` (one of ``EVENT_KINDS``) for the consumer ``label`` with ``code``."""
    code = str(code)
    by_label = _events[kind]
    codes = by_label.get(label)
    if codes is None:
        codes = by_label[label] = {}
    codes[code] = codes.get(code, 0) + 1
    if _sink is not None:
        _sink.event(kind, label, code)


_LABEL = re.compile(r"^hgwsh?\.([A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*)(?:\.|$)")
_MAX_LABELS = 200
_group_labels: set[str] = set()


def consumer_label(group: str) -> str:
    """The label of the consumer a derived group name belongs to (``hgws.chat.send_message.room_name.vip`` ->
    ``chat.send_message``); ``""`` for other names, and for new labels once 200 were seen (bounded)."""
    match = _LABEL.match(group)
    if match is None:
        return ""
    label = match[1]
    if label not in _group_labels:
        if len(_group_labels) >= _MAX_LABELS:
            return ""
        _group_labels.add(label)
    return label


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
    if _sink is not None:
        _sink.opened(label)


def closed(label: str) -> None:
    """An accepted socket of ``label`` is gone."""
    counters = consumer_counters(label)
    if counters.connections > 0:
        counters.connections -= 1
    if _sink is not None:
        _sink.closed(label)


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
    if _sink is not None:
        _sink.received(label, size)


def sent(label: str, text: str) -> None:
    """A frame was queued for one socket of ``label`` (not through a group)."""
    counters = consumer_counters(label)
    size = text_size(text)
    counters.messages_out += 1
    counters.bytes_out += size
    if _sink is not None:
        _sink.sent(label, size)


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


def group_frame(group: str, text: str, members: int, published: float | None = None) -> None:
    """A group frame was queued on ``members`` local sockets: counted once, not per member.

    ``published`` is the ``time.time()`` of its publish, when the publisher sent it (for the latency).
    """
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
    if _sink is not None:
        _sink.group_frame(entry.labels, size, published if type(published) is float else None)


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
    events = {kind: {label: dict(codes) for label, codes in sorted(list(by_label.items()))}
              for kind, by_label in _events.items()}
    return {"pid": os.getpid(), "uptime": round(time.time() - _started, 3), "totals": totals,
            "rates": _rates(totals), "consumers": consumers, "groups": groups, "events": events}


def _rates(totals: dict[str, int]) -> dict[str, float]:
    """Messages per second in and out, over the time since the newest earlier snapshot at least 1 s old."""
    now = _clock()
    sample = (now, totals["messages_in"], totals["messages_out"])
    rates = {"messages_in": 0.0, "messages_out": 0.0}
    for then, messages_in, messages_out in reversed(_samples):
        if now - then >= 1.0:
            span = now - then
            rates = {"messages_in": round(max(0, sample[1] - messages_in) / span, 3),
                     "messages_out": round(max(0, sample[2] - messages_out) / span, 3)}
            break
    if not _samples or now - _samples[-1][0] >= 0.5:
        _samples.append(sample)
    return rates


def consumer_rows() -> dict[str, dict[str, int]]:
    """The counters of every consumer (copies), without the groups: cheap to read often."""
    return {label: counters.as_dict() for label, counters in list(_consumers.items())}


def event_counts() -> dict[str, dict[str, dict[str, int]]]:
    """The event counts by kind, consumer label and code (copies)."""
    return {kind: {label: dict(codes) for label, codes in list(by_label.items())} for kind, by_label in _events.items()}


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
    for by_label in _events.values():
        by_label.clear()
    _samples.clear()


def clear() -> None:
    """Forget every counter and event, open connections included; for tests, between them, with no socket open
    (``hypergen_ws.testing.reset()``)."""
    _consumers.clear()
    _groups.clear()
    for by_label in _events.values():
        by_label.clear()
    _samples.clear()
    _group_labels.clear()
