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

from ..backends.engine import Engine
from ..core import conf
from ..core.logs import fields
from ..core.protocol import resync_frame, stamp
from . import outage

logger = logging.getLogger("hypergen_ws")

Held = list[tuple[int, int, str]]
#: How many left epochs a feed remembers.
RETIRED_KEPT = 8


class FeedHub(Protocol):
    """What a feed needs from its hub."""

    layer: Any

    @property
    def engine(self) -> Engine: ...

    def member_set(self, group: str) -> set[Any] | None: ...

    def deliver_text(self, group: str, text: str, skip: Iterable[Any] = (), published: float | None = None) -> int:
        ...


class Feed:
    """Stamped frames of one group for the local members of one hub, in seq order and once."""

    __slots__ = ("hub", "group", "members", "epoch", "expected", "floors", "holds", "retired")

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
        #: Epochs this feed has left, newest last (at most :data:`RETIRED_KEPT`): a frame of one of them is a late
        #: copy from before a loss or a failover (a channel-layer message a promoted replica still had).
        self.retired: list[int] = []

    def move_to(self, epoch: int, expected: int) -> None:
        """Go on from ``expected`` in ``epoch``; the epoch left behind is retired."""
        if self.epoch is not None and self.epoch != epoch:
            if self.epoch in self.retired:
                self.retired.remove(self.epoch)
            self.retired = [*self.retired, self.epoch][-RETIRED_KEPT:]
        if epoch in self.retired:
            self.retired.remove(epoch)
        self.epoch, self.expected = epoch, expected

    def is_behind(self, seq: int, epoch: int) -> bool:
        """Whether frames between the last one delivered and ``seq`` are missing."""
        return epoch == self.epoch and self.expected is not None and seq > self.expected

    def deliver(self, seq: int, epoch: int, text: str, published: float | None = None) -> None:
        """Queue a stamped frame on the members, unless it was delivered already (``published``: the time of its
        publish, for the latency)."""
        if epoch == self.epoch and self.expected is not None and seq < self.expected:
            return
        self.move_to(epoch, seq + 1)
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
    """Deliver a stamped frame that came over the channel layer; fill a gap before it from the history.

    The history vouches for a frame that skips ahead (and for the first frame of a new feed): a seq the group's
    history never reached (a forged frame, or one of a history lost meanwhile) is not delivered, and would not
    make every later frame look like a late copy; the group's followers get a ``resync`` instead.
    """
    seq, epoch, text = message.get("seq"), message.get("epoch"), message["text"]
    published = message.get("ts")
    if not isinstance(seq, int) or not isinstance(epoch, int):
        feed.hub.deliver_text(feed.group, text, published=published)
        return
    if epoch in feed.retired and not await _store_went_back(feed, epoch):
        logger.info("Dropped a late frame of %s from a history it left (seq %s of epoch %s)", feed.group, seq, epoch,
                    extra=fields("frame_of_retired_epoch", group=feed.group, code=seq))
        return
    fresh = feed.expected is None and seq > 1
    if fresh or feed.is_behind(seq, epoch):
        after = seq - 1 if feed.expected is None else feed.expected - 1
        try:
            async with asyncio.timeout(float(conf.get("PUBLISH_TIMEOUT"))):
                snapshot = await feed.hub.engine.store.read(feed.group, None if fresh else after)
        except Exception as exc:
            log = logger.debug if outage.failed("history read", exc) else logger.warning
            log("Could not read the history of %s to fill a gap before seq %s", feed.group, seq, exc_info=True,
                extra=fields("history_gap_unfilled", group=feed.group))
        else:
            if snapshot.epoch == epoch and snapshot.seq < seq or fresh and snapshot.epoch != epoch:
                skip_unknown(feed, seq, epoch, snapshot.seq, snapshot.epoch)
                return
            if snapshot.epoch == epoch:
                for entry_seq, _ts, entry_text in snapshot.entries:
                    if entry_seq >= seq:
                        break
                    feed.deliver(entry_seq, epoch, stamp(entry_text, entry_seq, epoch))
    feed.deliver(seq, epoch, text, published)


async def _store_went_back(feed: Feed, epoch: int) -> bool:
    """Whether the group's history is in ``epoch`` again (a replica promoted with an old copy): then its frames
    are live again. When the store cannot be read, the frame is dropped like any late copy."""
    try:
        async with asyncio.timeout(float(conf.get("PUBLISH_TIMEOUT"))):
            snapshot = await feed.hub.engine.store.read(feed.group, None)
    except Exception:
        return False
    return snapshot.epoch == epoch


def skip_unknown(feed: Feed, seq: int, epoch: int, current: int, current_epoch: int) -> None:
    """A frame the history does not know: drop it, go on from the history's position, tell the followers."""
    logger.warning("Skipped a frame of %s with seq %s/%s: the group's history is at %s/%s (a forged frame, or a "
                   "history lost meanwhile); its followers get a resync", feed.group, seq, epoch, current,
                   current_epoch, extra=fields("frame_out_of_sequence", group=feed.group, code=seq))
    feed.move_to(current_epoch, current + 1)
    text = resync_frame("out_of_sequence", current, current_epoch)
    for member in tuple(feed.hub.member_set(feed.group) or ()):
        if member.keeps_history and member.state.primary_group == feed.group:
            member.send_text(text)
