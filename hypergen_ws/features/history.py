"""History and recovery: ``@consumer(history=N)`` (docs/history.rst, docs/delivery.rst).

A frame published with history is stamped once, at the publish, with its group's next sequence number and the
group's epoch, inserted at the front of the already encoded text::

    {"seq":42,"epoch":187364019283,"type":"message","data":{...}}

Groups of a ``@consumer(history=N)`` keep history by default; ``group_send(..., history=True/False)`` and the
other publishers override it per call. Frames published without history carry no seq and are never replayed.

Handshake: a client that had a position reconnects with ``?hgws_seq=<seq>&hgws_epoch=<epoch>``. The consumer
joins its group first (live frames are held aside), reads the history, then sends ``sync`` and the missed frames,
or ``resync`` when it cannot, and then the held live frames it has not just replayed.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from ..backends.base import Snapshot, fresh_entries
from ..backends.layers import get_store, local_store, run_sync
from ..core import conf, protocol, registry
from ..core.groups import check_group_name
from ..core.logs import fields
from ..core.state import time_left
from ..core.sync import refuse_in_loop
from ..delivery import outage
from ..stats import counters
from ..delivery.hub import local_hubs
from .base import Connection, Feature, Option, Options

logger = logging.getLogger("hypergen_ws")


#: The ``@consumer`` options this feature reads, with their defaults (``hypergen_ws.features``).
OPTIONS: dict[str, Option] = {
    "history": Option(0, "``history=N`` keeps the last N frames of each group for clients that reconnect "
                         "(``True``: ``HYPERGEN_WS['HISTORY_SIZE']``; docs/history.rst)."),
}
#: What ``@consumer`` exposes about this feature while it is off (``declares()`` says it while on).
EXPOSES: dict[str, Any] = {"history": 0}


def configure(options: Options) -> HistoryFeature | None:
    """``history=`` of ``@consumer``: on for a positive size (``True``: ``HISTORY_SIZE``)."""
    size = history_size_option(options.history, options.where)
    if not size:
        return None
    local_store().pinned = has_local_members
    return HistoryFeature(size)


def has_local_members(group: str) -> bool:
    """Whether a socket of this process is in ``group``."""
    return any(group in hub.members for hub in local_hubs())


def history_size_option(history: Any, where: str) -> int:
    """Validate ``history=``; return the number of frames to keep (0 for none)."""
    if history is True:
        return int(conf.get("HISTORY_SIZE"))
    if history is False or history is None:
        return 0
    if isinstance(history, bool) or not isinstance(history, int) or history < 0:
        raise ImproperlyConfigured(f"{where}: history={history!r}; pass the number of frames to keep, e.g. "
                                   "history=100 (or True for HYPERGEN_WS['HISTORY_SIZE']).")
    return history


class HistoryFeature(Feature):
    """Holds a new socket's live frames, replays what it missed, then lets the live frames through."""

    name = "history"

    def declares(self) -> dict[str, Any]:
        return {"history": self.size}

    def __init__(self, size: int) -> None:
        self.size = size

    def before_join(self, conn: Connection, groups: list[str]) -> None:
        if groups and conn.hub is not None:
            registry.remember_group(groups[0], self.size)
            conn.hub.feed(groups[0]).hold(conn)

    async def connected(self, conn: Connection) -> None:
        group = conn.state.primary_group
        if group is not None and group in conn.state.groups:
            await catch_up(conn, group, conn.state.position)

    async def rejoined(self, conn: Connection) -> None:
        # The position it connected with: what it missed is replayed after all. A socket that connected without
        # one cannot know what was published before it joined: it gets a resync ("rejoined"), not a sync.
        group = conn.state.primary_group
        if group is not None and group in conn.state.groups:
            await catch_up(conn, group, conn.state.position, late=True)

    async def disconnected(self, conn: Connection) -> None:
        group = conn.state.primary_group
        if group is None or has_local_members(group):
            return
        try:  # a room nothing was published to keeps nothing once its last member is gone (docs/history.rst)
            await get_store().forget_empty(group)
        except Exception:
            logger.debug("Could not drop the empty record of %s", group, exc_info=True,
                         extra=fields("history_forget_failed", group=group))


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
    return "sync", [(s, protocol.stamp(t, s, snapshot.epoch)) for s, _ts, t in entries[:missed]]


async def catch_up(conn: Connection, group: str, position: tuple[int, int] | None, late: bool = False) -> None:
    """Send ``sync`` + missed frames (or ``resync``), then the live frames held since the socket joined.

    Called after the consumer joined ``group`` (held by ``before_join``) and before its outbox starts; or, with
    ``late``, once a socket that could not join at connect has joined: without a position it gets a resync
    (``rejoined``) with the group's position, since frames may have been published before it joined.
    """
    hub = conn.hub
    feed = hub.feed(group) if hub is not None and group in hub.members else None
    store = get_store()
    timeout = time_left(conn.state)
    try:
        async with asyncio.timeout(timeout):
            snapshot = await store.read(group, None if position is None else position[0])
        held = feed.holds.get(conn, []) if feed is not None else []
        later = [s for s, e, _t in held if e == snapshot.epoch and s > snapshot.seq]
        if later and min(later) > snapshot.seq + 1:
            # Frames published after the read overtook earlier ones on the layer: read again to fill the gap.
            position = position or (snapshot.seq, snapshot.epoch)
            async with asyncio.timeout(timeout):
                snapshot = await store.read(group, position[0])
    except Exception as exc:
        log = logger.debug if outage.failed("history read", exc) else logger.warning  # (an outage: logged once)
        log("Could not read the history of %s; the client gets a resync", group, exc_info=True,
            extra=fields("history_unavailable", consumer=conn.label, group=group, state=conn.state,
                         code="unavailable"))
        counters.event(counters.RECOVERY, conn.label, "resynced.unavailable")
        conn.send_text(protocol.resync_frame("unavailable", None, None))
        for _seq, _epoch, text in feed.release(conn) if feed is not None else []:
            conn.send_text(text)
        return
    outcome, replay = plan(snapshot, position)
    if late and position is None:
        outcome = "rejoined"
    if outcome != "sync":
        counters.event(counters.RECOVERY, conn.label, f"resynced.{outcome}")
    elif position is not None:
        counters.event(counters.RECOVERY, conn.label, "replayed")
    held = feed.release(conn) if feed is not None else []
    last = snapshot.seq
    if outcome == "sync":
        if position is None:
            # A new client: it gets every frame published since it joined, which may be older than the read.
            joined = [seq for seq, epoch, _text in held if epoch == snapshot.epoch]
            last = min(min(joined) - 1, snapshot.seq) if joined else snapshot.seq
        conn.send_text(protocol.sync_frame(last if position is None else position[0], snapshot.epoch,
                                           len(replay)))
    else:
        logger.info("Client of %s at %s gets a resync (%s); the group is at %s/%s",
                    conn.label, position, outcome, snapshot.seq, snapshot.epoch,
                    extra=fields("resync", consumer=conn.label, group=group, state=conn.state, code=outcome))
        conn.send_text(protocol.resync_frame(outcome, snapshot.seq, snapshot.epoch))
    for _seq, text in replay:
        conn.send_text(text)
    for seq, epoch, text in held:
        if epoch != snapshot.epoch or seq > last:
            conn.send_text(text)
            if epoch == snapshot.epoch:
                last = max(last, seq)
    if feed is not None:
        feed.floors[conn] = (last, snapshot.epoch)


# ---- public API ---------------------------------------------------------------------------------------------

async def aget_history(group: str) -> list[dict[str, Any]]:
    """The frames kept for ``group``, oldest first, decoded, each with its ``seq`` and ``epoch``."""
    snapshot = await get_store().read(check_group_name(group), 0)
    return [dict(protocol.loads(text), seq=seq, epoch=snapshot.epoch)
            for seq, _ts, text in fresh_entries(snapshot)]


def get_history(group: str) -> list[dict[str, Any]]:
    """Sync variant of :func:`aget_history`."""
    refuse_in_loop("get_history")
    return run_sync(aget_history(group), f"Reading the history of {group!r}")


async def aget_position(group: str) -> tuple[int, int]:
    """``(seq, epoch)`` of the last frame published to ``group`` with history (seq 0 before the first).

    Render it into a page and open the socket with ``?hgws_seq=<seq>&hgws_epoch=<epoch>`` to get what was
    published between the page load and the connect (docs/delivery.rst).
    """
    snapshot = await get_store().read(check_group_name(group), None)
    return snapshot.seq, snapshot.epoch


def get_position(group: str) -> tuple[int, int]:
    """Sync variant of :func:`aget_position`."""
    refuse_in_loop("get_position")
    return run_sync(aget_position(group), f"Reading the position of {group!r}")


async def aflush_history(group: str | None = None) -> None:
    """Forget the history of ``group``, or of every group: the next publish starts a new epoch at seq 1.

    Clients that reconnect with a position of the old epoch get a ``resync`` frame.
    """
    await get_store().flush(None if group is None else check_group_name(group))


def flush_history(group: str | None = None) -> None:
    """Sync variant of :func:`aflush_history`."""
    refuse_in_loop("flush_history")
    run_sync(aflush_history(group), "Flushing history")


async def aredact_history(group: str, seq: int) -> bool:
    """Redact the frame ``seq`` of ``group``'s history: it keeps its seq (recovery stays gap-free) and is replayed
    as ``{"type": "redacted"}``, which says nothing. Returns False when no frame ``seq`` is kept (never published,
    or already gone); the clients that received it live keep what it did."""
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise TypeError(f"seq={seq!r}: pass the seq of a kept frame, a positive int (group_send() returns it; "
                        "get_history() lists them).")
    return await get_store().redact(check_group_name(group), seq)


def redact_history(group: str, seq: int) -> bool:
    """Sync variant of :func:`aredact_history`."""
    refuse_in_loop("redact_history")
    return run_sync(aredact_history(group, seq), f"Redacting frame {seq} of the history of {group!r}")
