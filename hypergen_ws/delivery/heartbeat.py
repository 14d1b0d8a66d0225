"""The protocol heartbeat of one hub's sockets (docs/protocol.rst, "Heartbeat").

A socket the server has sent nothing to for ``interval`` seconds gets ``{"type": "ping"}``; when its client then
sends nothing at all for ``timeout`` seconds, the socket is told it went unanswered (it closes with 4410). A
socket whose frames keep coming is not pinged: a busy group pays nothing. A *strict* socket (one of a consumer
with presence, whose members must be alive) is also pinged when its client has sent nothing for ``interval``
seconds, however busy its group, so that a member whose network died leaves within ``interval + timeout``.

One timer per hub drives a wheel of slots ``resolution`` seconds wide (one second at the defaults; a tenth of
the shorter setting when that is less). Each socket sits in the slot of the moment it must be looked at next,
so a tick touches only the sockets due then: 10,000 idle sockets at the default 25 s cost 800 looks a second
(a ping, and the check of its answer), and an idle hub without sockets has no timer at all. Sending to a socket
costs the heartbeat nothing: the hub notes when it last delivered to each group, once per publish
(``group_sent``), and the outbox when it last sent a frame of the socket's own (``Outbox.sent_at``); the wheel
reads both when the socket is due.
"""
from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from typing import Protocol

from ..core.state import ConnectionState
from .hub import Hub

__all__ = ["Beat", "Heartbeat", "Pinged", "wheel"]

_now = time.monotonic  # the event loop's clock, too (``loop.time()``)


class Sent(Protocol):
    """What the wheel reads of a socket's outbox."""

    sent_at: float


class Pinged(Protocol):
    """What the heartbeat keeps alive: a socket."""

    @property
    def outbox(self) -> Sent: ...

    @property
    def state(self) -> ConnectionState: ...

    def ping(self) -> None:
        """Send ``{"type": "ping"}`` now."""

    def ping_unanswered(self) -> None:
        """The client sent nothing for ``timeout`` seconds after a ping: close the socket."""


class Beat:
    """One socket's place on the wheel. ``heard()`` is called for every frame its client sends."""

    __slots__ = ("socket", "wheel", "slot", "heard_at", "pinged_at", "strict")

    def __init__(self, socket: Pinged, wheel: Heartbeat, strict: bool, now: float) -> None:
        self.socket = socket
        self.wheel = wheel
        self.slot = -1
        self.heard_at = now
        self.pinged_at: float | None = None
        self.strict = strict

    def heard(self) -> None:
        """The client sent a frame (any frame answers a ping)."""
        self.heard_at = _now()

    def stop(self) -> None:
        """Take the socket off the wheel (it is closing); idempotent."""
        self.wheel.remove(self)


class Heartbeat:
    """The wheel of one hub for one ``(interval, timeout)``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, group_sent: Mapping[str, float], interval: float,
                 timeout: float) -> None:
        self.loop = loop
        self.group_sent = group_sent
        self.interval = interval
        self.timeout = timeout
        self.resolution = min(1.0, interval / 10, timeout / 10)
        self.slots: dict[int, set[Beat]] = {}
        self.count = 0
        self._cursor = 0  # the next slot to look at
        self._timer: asyncio.TimerHandle | None = None
        self._ticking = False

    def __len__(self) -> int:
        """Sockets on the wheel."""
        return self.count

    def add(self, socket: Pinged, *, strict: bool = False) -> Beat:
        """Put an open socket on the wheel; it is looked at ``interval`` seconds from now."""
        now = _now()
        beat = Beat(socket, self, strict, now)
        self.count += 1
        self._place(beat, now + self.interval)
        return beat

    def remove(self, beat: Beat) -> None:
        """Take ``beat`` off the wheel (does nothing when it is off already)."""
        if beat.slot < 0:
            return
        members = self.slots.get(beat.slot)
        if members is not None:
            members.discard(beat)
            if not members:
                del self.slots[beat.slot]
        beat.slot = -1
        self.count -= 1
        if not self.count and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _index(self, when: float) -> int:
        return math.ceil(when / self.resolution)

    def _place(self, beat: Beat, when: float) -> None:
        slot = max(self._index(when), self._cursor)
        beat.slot = slot
        members = self.slots.get(slot)
        if members is None:
            members = self.slots[slot] = set()
        members.add(beat)
        if self._ticking:
            return  # the tick arms the timer for the next slot when it is done
        if self._timer is None:
            self._cursor = slot  # the wheel was empty
            self._arm()
        elif slot < self._cursor:  # due before the slot the timer is set for
            self._timer.cancel()
            self._cursor = slot
            self._arm()

    def _arm(self) -> None:
        delay = max(0.0, self._cursor * self.resolution - _now())
        self._timer = self.loop.call_later(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._ticking = True
        try:
            now = _now()
            last = self._index(now)
            slots = self.slots
            while self._cursor <= last and slots:
                due = slots.pop(self._cursor, None)
                self._cursor += 1
                for beat in due or ():
                    beat.slot = -1
                    self.count -= 1
                    self._look(beat, now)
        finally:
            self._ticking = False
        if self.slots:
            self._cursor = max(self._cursor, min(self.slots))
            self._arm()

    def _look(self, beat: Beat, now: float) -> None:
        """A socket is due: check the answer to its ping, ping it, or put it where it is due next."""
        socket = beat.socket
        pinged = beat.pinged_at
        if pinged is not None:
            if beat.heard_at < pinged:
                if now - pinged >= self.timeout:
                    beat.pinged_at = None
                    socket.ping_unanswered()  # off the wheel for good: it closes
                    return
                self.count += 1
                self._place(beat, pinged + self.timeout)
                return
            beat.pinged_at = None
        sent = socket.outbox.sent_at
        groups = self.group_sent
        for group in socket.state.groups:
            at = groups.get(group)
            if at is not None and at > sent:
                sent = at
        if pinged is not None and pinged > sent:
            sent = pinged
        due = sent + self.interval
        if beat.strict and beat.heard_at + self.interval < due:
            due = beat.heard_at + self.interval
        self.count += 1
        if due <= now:
            beat.pinged_at = now
            socket.ping()
            self._place(beat, now + self.timeout)
        else:
            self._place(beat, due)


def wheel(hub: Hub, interval: float, timeout: float) -> Heartbeat:
    """The heartbeat wheel of ``hub`` for ``interval`` and ``timeout`` seconds, made on first use."""
    found = hub.heartbeats.get((interval, timeout))
    if not isinstance(found, Heartbeat):
        found = hub.heartbeats[(interval, timeout)] = Heartbeat(hub.loop, hub.sent_at, interval, timeout)
    return found
