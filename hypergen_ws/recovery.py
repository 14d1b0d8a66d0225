"""Gap-free delivery of stamped frames, and the recovery handshake at connect (docs/delivery.rst).

Per event loop (hub) and group a :class:`Feed` hands stamped frames to the local sockets in seq order, once:
on the in-memory layer publishers queue them per hub under the store's lock; on Redis, frames that crossed the
layer out of order (two publishers racing) are put back in order from the stored history, and late copies are
dropped. A socket that is catching up has a *floor*: live frames up to the last one it was replayed are not
sent to it again.

Handshake: a client that had a position reconnects with ``?hgws_seq=<seq>&hgws_epoch=<epoch>``. The consumer
joins its group first (live frames wait in its outbox), reads the history, then sends ``sync`` and the missed
frames, or ``resync`` when it cannot, and then the waiting live frames it has not just replayed.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode
from weakref import WeakKeyDictionary

from . import conf, protocol, stats
from .history import fresh_entries, stamp
from .stores import MemoryStore, Snapshot, get_store

if TYPE_CHECKING:
    from .consumers import HypergenConsumer
    from .fanout import Hub

logger = logging.getLogger("hypergen_ws")

SEQ_PARAM = "hgws_seq"
EPOCH_PARAM = "hgws_epoch"


# ---- the client's position --------------------------------------------------------------------------------

def take_position(scope: dict[str, Any]) -> tuple[int, int] | None:
    """Remove ``hgws_seq``/``hgws_epoch`` from the scope's query string; return them when both are valid."""
    raw = scope.get("query_string") or b""
    if b"hgws_" not in raw:
        return None
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    found = {k: v for k, v in pairs if k in (SEQ_PARAM, EPOCH_PARAM)}
    scope["query_string"] = urlencode([(k, v) for k, v in pairs if k not in found]).encode("latin-1")
    try:
        seq, epoch = int(found[SEQ_PARAM]), int(found[EPOCH_PARAM])
    except (KeyError, ValueError):
        return None
    return (seq, epoch) if seq >= 0 and epoch > 0 else None


# ---- feeds --------------------------------------------------------------------------------------------------

class Feed:
    """Stamped frames of one group for the local members of one hub, in seq order and once."""

    __slots__ = ("hub", "group", "members", "epoch", "expected", "floors")

    def __init__(self, hub: Hub, group: str) -> None:
        self.hub = hub
        self.group = group
        self.members = hub.members.get(group)
        self.epoch: int | None = None
        self.expected: int | None = None
        self.floors: dict[Any, tuple[int, int]] = {}

    def is_behind(self, seq: int, epoch: int) -> bool:
        """Whether frames between the last one delivered and ``seq`` are missing."""
        return epoch == self.epoch and self.expected is not None and seq > self.expected

    def deliver(self, seq: int, epoch: int, text: str, published: float | None = None) -> None:
        """Queue a stamped frame on the members, unless it was delivered already (``published``: its publish
        time, for the latency)."""
        if epoch == self.epoch and self.expected is not None and seq < self.expected:
            return
        self.epoch, self.expected = epoch, seq + 1
        holds = _holds.get(self.hub)
        held = holds.get(self.group) if holds else None
        if not self.floors and not held:
            self.hub.deliver_text(self.group, text, published)
            return
        message = {"type": "websocket.send", "text": text}
        floors = self.floors
        for member in tuple(self.hub.members.get(self.group, ())):
            if held and member in held:
                held[member].append((seq, epoch, text))
                continue
            floor = floors.get(member)
            if floor is None or floor[1] != epoch or seq > floor[0]:
                member.outbox.push(message)
        for member, floor in list(floors.items()):
            if floor[1] != epoch or floor[0] <= seq:
                del floors[member]


_feeds: WeakKeyDictionary[Hub, dict[str, Feed]] = WeakKeyDictionary()
#: Stamped frames for sockets that are catching up: hub -> group -> member -> [(seq, epoch, text)].
_holds: WeakKeyDictionary[Hub, dict[str, dict[Any, list[tuple[int, int, str]]]]] = WeakKeyDictionary()


def hold(consumer: Any, hub: Hub, group: str) -> None:
    """Keep the stamped frames of ``group`` for ``consumer`` aside until :func:`catch_up` (call before joining)."""
    groups = _holds.get(hub)
    if groups is None:
        groups = _holds[hub] = {}
    groups.setdefault(group, {})[consumer] = []


def _release(consumer: Any, hub: Hub | None, group: str) -> list[tuple[int, int, str]]:
    groups = _holds.get(hub) if hub is not None else None
    members = groups.get(group) if groups else None
    if not members:
        return []
    held = members.pop(consumer, [])
    if not members:
        del groups[group]  # type: ignore[union-attr]
    return held


def forget(consumer: Any, hub: Hub | None, group: str | None) -> None:
    """Drop what recovery keeps for a gone socket (its hold and floor)."""
    if hub is None or group is None:
        return
    _release(consumer, hub, group)
    current = _feeds.get(hub, {}).get(group)
    if current is not None:
        current.floors.pop(consumer, None)


def feed(hub: Hub, group: str) -> Feed:
    """The feed of ``group`` in ``hub`` (a new one after the hub left the group and joined again)."""
    feeds = _feeds.get(hub)
    if feeds is None:
        feeds = _feeds[hub] = {}
    current = feeds.get(group)
    if current is None or current.members is not hub.members.get(group):
        if len(feeds) > 2 * len(hub.members) + 100:
            for name in [g for g in feeds if g not in hub.members]:
                del feeds[name]
        current = feeds[group] = Feed(hub, group)
    return current


async def deliver_sequenced(hub: Hub, group: str, message: dict[str, Any]) -> None:
    """Deliver a stamped frame that came over the channel layer; fill a gap before it from the history."""
    seq, epoch, text = message.get("seq"), message.get("epoch"), message["text"]
    if not isinstance(seq, int) or not isinstance(epoch, int):
        hub.deliver_text(group, text)
        return
    current = feed(hub, group)
    if current.is_behind(seq, epoch):
        try:
            async with asyncio.timeout(_timeout()):
                snapshot = await get_store(hub.layer).read(group, current.expected - 1)
        except Exception:
            logger.warning("Could not read the history of %s to fill a gap before seq %s", group, seq, exc_info=True)
        else:
            if snapshot.epoch == epoch:
                for entry_seq, _ts, entry_text in snapshot.entries:
                    if entry_seq >= seq:
                        break
                    current.deliver(entry_seq, epoch, stamp(entry_text, entry_seq, epoch))
    current.deliver(seq, epoch, text, message.get("ts"))


# ---- in-memory relay ----------------------------------------------------------------------------------------

_relays: WeakKeyDictionary[Hub, deque[tuple[str, int, int, str, float]]] = WeakKeyDictionary()


def publish_memory(store: MemoryStore, group: str, text: str, size: int) -> int:
    """Stamp and store a frame and queue it on every local hub in seq order (any thread); return its seq."""
    from .fanout import local_hubs

    try:
        own = asyncio.get_running_loop()
    except RuntimeError:
        own = None
    drain_here = None
    now = time.time()
    with store.lock:
        seq, epoch = store.append_sync(group, text, size)
        stamped = stamp(text, seq, epoch)
        for hub in local_hubs():
            queue = _relays.get(hub)
            if queue is None:
                queue = _relays[hub] = deque()
            queue.append((group, seq, epoch, stamped, now))
            if hub.loop is own:
                drain_here = hub
            else:
                try:
                    hub.loop.call_soon_threadsafe(_drain, hub)
                except RuntimeError:  # the loop closed meanwhile
                    queue.clear()
    if drain_here is not None:
        _drain(drain_here)
    return seq


def _drain(hub: Hub) -> None:
    queue = _relays.get(hub)
    while queue:
        group, seq, epoch, text, published = queue.popleft()
        if group in hub.members:
            feed(hub, group).deliver(seq, epoch, text, published)


# ---- catching up at connect ---------------------------------------------------------------------------------

def sync_frame(seq: int, epoch: int, replayed: int) -> str:
    """``{"type":"sync","seq":..,"epoch":..,"replayed":n}``: the position the frames after it continue from."""
    return protocol.encode({"type": "sync", "seq": seq, "epoch": epoch, "replayed": replayed})


def resync_frame(reason: str, seq: int | None, epoch: int | None) -> str:
    """``{"type":"resync","reason":..,"seq":..,"epoch":..}``: frames were lost; the client reloads its state."""
    return protocol.encode({"type": "resync", "reason": reason, "seq": seq, "epoch": epoch})


def plan(snapshot: Snapshot, position: tuple[int, int] | None) -> tuple[str, list[tuple[int, str]]]:
    """Decide what a client at ``position`` gets: ``("sync", replay)`` or ``("<resync reason>", [])``."""
    if position is None:
        return "sync", []
    seq, epoch = position
    if epoch != snapshot.epoch:
        return "epoch_changed", []
    if seq > snapshot.seq:
        return "unknown_position", []
    missed = snapshot.seq - seq
    if missed == 0:
        return "sync", []
    entries = fresh_entries(snapshot)
    if len(entries) < missed or entries[0][0] != seq + 1:
        return "too_far_behind", []
    return "sync", [(s, stamp(t, s, snapshot.epoch)) for s, _ts, t in entries[:missed]]


async def catch_up(consumer: HypergenConsumer, group: str, position: tuple[int, int] | None) -> None:
    """Send ``sync`` + missed frames (or ``resync``), then the live frames held since the socket joined.

    Called after the consumer joined ``group`` (with :func:`hold` before) and before its outbox starts.
    """
    hub = consumer._hub
    store = get_store()
    try:
        async with asyncio.timeout(_timeout()):
            snapshot = await store.read(group, None if position is None else position[0])
        held = _holds.get(hub, {}).get(group, {}).get(consumer, []) if hub is not None else []
        later = [s for s, e, _t in held if e == snapshot.epoch and s > snapshot.seq]
        if later and min(later) > snapshot.seq + 1:
            # Frames published after the read overtook earlier ones on the layer: read again to fill the gap.
            position = position or (snapshot.seq, snapshot.epoch)
            async with asyncio.timeout(_timeout()):
                snapshot = await store.read(group, position[0])
    except Exception:
        logger.warning("Could not read the history of %s; the client gets a resync", group, exc_info=True)
        stats.event(stats.RECOVERY, consumer.label, "resynced.unavailable")
        consumer.send_text(resync_frame("unavailable", None, None))
        for _seq, _epoch, text in _release(consumer, hub, group):
            consumer.send_text(text)
        return
    outcome, replay = plan(snapshot, position)
    if outcome != "sync":
        stats.event(stats.RECOVERY, consumer.label, f"resynced.{outcome}")
    elif position is not None:
        stats.event(stats.RECOVERY, consumer.label, "replayed")
    if outcome == "sync":
        start = snapshot.seq if position is None else position[0]
        consumer.send_text(sync_frame(start, snapshot.epoch, len(replay)))
    else:
        logger.info("Client of %s at %s gets a resync (%s); the group is at %s/%s",
                    consumer.label, position, outcome, snapshot.seq, snapshot.epoch)
        consumer.send_text(resync_frame(outcome, snapshot.seq, snapshot.epoch))
    for _seq, text in replay:
        consumer.send_text(text)
    last = snapshot.seq
    for seq, epoch, text in _release(consumer, hub, group):
        if epoch != snapshot.epoch or seq > last:
            consumer.send_text(text)
    if hub is not None and group in hub.members:
        feed(hub, group).floors[consumer] = (last, snapshot.epoch)


def _timeout() -> float:
    return float(conf.get("PUBLISH_TIMEOUT"))
