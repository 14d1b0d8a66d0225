"""Gap-free delivery of stamped frames (docs/delivery.rst).

Per hub and group a :class:`Feed` hands stamped frames to the local sockets in seq order, once: on the in-memory
layer publishers queue them per hub under the store's lock; on Redis, frames that crossed the layer out of
order (two publishers racing) are put back in order from the stored history, and late copies are dropped. A
socket that is catching up (``hypergen_ws.features.history``) is *held*: its stamped frames wait aside until it
has been replayed what it missed; then it has a *floor*: live frames up to the last one it was replayed are not
sent to it again.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, Protocol

from ..backends.layers import get_store
from ..core import conf
from ..core.logs import fields
from ..core.protocol import stamp

logger = logging.getLogger("hypergen_ws")

Held = list[tuple[int, int, str]]


class FeedHub(Protocol):
    """What a feed needs from its hub."""

    layer: Any

    def member_set(self, group: str) -> set[Any] | None: ...

    def deliver_text(self, group: str, text: str, skip: Iterable[Any] = (), published: float | None = None) -> int:
        ...


class Feed:
    """Stamped frames of one group for the local members of one hub, in seq order and once."""

    __slots__ = ("hub", "group", "members", "epoch", "expected", "floors", "holds")

    def __init__(self, hub: FeedHub, group: str) -> None:
        self.hub = hub
        self.group = group
        #: The member set this feed was made for; a new set (the hub left and joined again) means a new feed.
        self.members = hub.member_set(group)
        self.epoch: int | None = None
        self.expected: int | None = None
        self.floors: dict[Any, tuple[int, int]] = {}
        #: Stamped frames for members that are catching up: member -> [(seq, epoch, text)].
        self.holds: dict[Any, Held] = {}

    def is_behind(self, seq: int, epoch: int) -> bool:
        """Whether frames between the last one delivered and ``seq`` are missing."""
        return epoch == self.epoch and self.expected is not None and seq > self.expected

    def deliver(self, seq: int, epoch: int, text: str, published: float | None = None) -> None:
        """Queue a stamped frame on the members, unless it was delivered already (``published``: the time of its
        publish, for the latency)."""
        if epoch == self.epoch and self.expected is not None and seq < self.expected:
            return
        self.epoch, self.expected = epoch, seq + 1
        if not self.floors and not self.holds:
            self.hub.deliver_text(self.group, text, published=published)
            return
        skip = set()
        for member, held in self.holds.items():
            held.append((seq, epoch, text))
            skip.add(member)
        for member, floor in list(self.floors.items()):
            if floor[1] == epoch and seq <= floor[0]:
                skip.add(member)
            else:
                del self.floors[member]
        self.hub.deliver_text(self.group, text, skip, published)

    def hold(self, member: Any) -> None:
        """Keep the stamped frames for ``member`` aside until :meth:`release`."""
        self.holds[member] = []

    def release(self, member: Any) -> Held:
        """The frames held for ``member``; it gets live frames again from now on."""
        return self.holds.pop(member, [])

    def forget(self, member: Any) -> None:
        """Drop what the feed keeps for a gone member."""
        self.holds.pop(member, None)
        self.floors.pop(member, None)


async def deliver_sequenced(feed: Feed, message: dict[str, Any]) -> None:
    """Deliver a stamped frame that came over the channel layer; fill a gap before it from the history."""
    seq, epoch, text = message.get("seq"), message.get("epoch"), message["text"]
    published = message.get("ts")
    if not isinstance(seq, int) or not isinstance(epoch, int):
        feed.hub.deliver_text(feed.group, text, published=published)
        return
    if feed.is_behind(seq, epoch) and feed.expected is not None:
        try:
            async with asyncio.timeout(float(conf.get("PUBLISH_TIMEOUT"))):
                snapshot = await get_store(feed.hub.layer).read(feed.group, feed.expected - 1)
        except Exception:
            logger.warning("Could not read the history of %s to fill a gap before seq %s", feed.group, seq,
                           exc_info=True, extra=fields("history_gap_unfilled", group=feed.group))
        else:
            if snapshot.epoch == epoch:
                for entry_seq, _ts, entry_text in snapshot.entries:
                    if entry_seq >= seq:
                        break
                    feed.deliver(entry_seq, epoch, stamp(entry_text, entry_seq, epoch))
    feed.deliver(seq, epoch, text, published)
