"""Process-level fan-out.

Each server process joins a group on the channel layer once, with one layer channel per group, for all of its
local members. A frame published to the group crosses the layer once per process and is written, already encoded,
to every local socket's outbox. A plain ``channel_layer.group_send(group, {"type": "x.y", ...})`` arriving on that
channel is handed to every local member's own channel, so their ``x_y`` handlers still run.

On the in-memory layer (one process by definition) publishers skip the layer and hand the encoded frame to the
hub of each running event loop directly.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from ..backends.engine import Engine
from ..backends.layers import (bypasses_layer, get_engine, get_layer, group_add, group_discard, hub_channel,
                               receive_channel, release_channel, send_local)
from ..core import conf
from ..core.protocol import text_frame
from ..core.logs import fields
from ..stats import counters
from . import outage
from .feed import Feed, deliver_sequenced
from .members import FRAME_TYPE, RESERVED_PREFIXES, Member, Outgoing, Push

__all__ = ["FRAME_TYPE", "RESERVED_PREFIXES", "Hub", "Member", "Outgoing", "get_hub", "local_hubs"]

logger = logging.getLogger("hypergen_ws")

_hub_ids = itertools.count(1)


def layer_timeout() -> float:
    """``PUBLISH_TIMEOUT``: seconds one operation on the channel layer (or Redis) may take."""
    return float(conf.get("PUBLISH_TIMEOUT"))


class Hub:
    """The local members of every group joined in one event loop, and their layer subscriptions.

    ``members[group]`` is the set of local members: the first ``join`` subscribes the process (one layer
    channel, one ``group_add``), the last ``leave`` unsubscribes it. Joins that arrive while the subscription is
    being made wait for it; members that leave meanwhile are accounted for when it is done.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, layer: Any) -> None:
        self.loop = loop
        self.layer = layer
        #: Unique in this process and across processes (the pid is part of it): marks frames this hub sent.
        self.id = f"{os.getpid()}.{next(_hub_ids)}"
        self.members: dict[str, set[Member]] = {}
        self.subscriptions: dict[str, tuple[str, asyncio.Task[None]]] = {}
        self.feeds: dict[str, Feed] = {}
        #: Stamped frames queued by in-memory publishers of any thread, drained in this loop in seq order, with the
        #: time of their publish.
        self.relay: deque[tuple[str, int, int, str, float]] = deque()
        self._joining: dict[str, asyncio.Future[None]] = {}
        self._refresher: asyncio.Task[None] | None = None
        #: Per group, the bound ``push_encoded`` of every member's outbox: the fan-out loop touches nothing else.
        self._pushes: dict[str, tuple[tuple[Member, Push], ...]] = {}
        self.bypass_layer = bypasses_layer(layer)
        self._engine: Engine | None = None
        #: Called with the hub when its groups change (the cluster heartbeat listens).
        self.on_change: Callable[[Hub], None] | None = None
        #: Groups this process listens to for messages to the process itself (``listen``), and their handlers.
        self.listeners: dict[str, Callable[[dict[str, Any]], None]] = {}
        #: ``time.monotonic()`` of the last frame delivered to each group (the heartbeat reads it).
        self.sent_at: dict[str, float] = {}
        #: The protocol heartbeat's wheels, per ``(PING_INTERVAL, PING_TIMEOUT)`` (``delivery.heartbeat.wheel``).
        self.heartbeats: dict[tuple[float, float], Any] = {}
        #: Every open socket of this hub, and whether the server began to shut down (``delivery.shutdown``).
        self.sockets: dict[Any, None] = {}  # in the order they opened
        self.draining = False

    @property
    def engine(self) -> Engine:
        """The engine of this hub's layer (``backends.engine``), chosen on first use and then held."""
        if self._engine is None:
            self._engine = get_engine(self.layer)
        return self._engine

    def member_set(self, group: str) -> set[Member] | None:
        """The set of local members of ``group`` (None when there are none)."""
        return self.members.get(group)

    async def join(self, group: str, member: Member) -> None:
        """Add a local member; the first one subscribes this process to the group on the layer."""
        members = self.members.get(group)
        if members is None:
            members = self.members[group] = set()
            self._add(group, members, member)
            if self.layer is not None:
                await self._subscribe(group, members, member)
            return
        self._add(group, members, member)
        joining = self._joining.get(group)
        if joining is not None:
            await asyncio.shield(joining)
            if member in members and self.members.get(group) is not members:
                # The first member's subscription failed (it raised the layer's error) and dropped this set.
                self._remove(group, members, member)
                raise ConnectionError(f"Could not join group {group!r} on the channel layer; see the log.")

    def _add(self, group: str, members: set[Member], member: Member) -> None:
        if member not in members:
            members.add(member)
            self._pushes.pop(group, None)
            counters.joined(group, member.label)
            self._changed()

    def _remove(self, group: str, members: set[Member], member: Member) -> None:
        if member in members:
            members.discard(member)
            self._pushes.pop(group, None)
            counters.left(group, member.label)
            feed = self.feeds.get(group)
            if feed is not None:
                feed.forget(member)
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    async def _subscribe(self, group: str, members: set[Member], member: Member) -> None:
        joined = self._joining[group] = self.loop.create_future()
        try:
            try:
                async with asyncio.timeout(layer_timeout()):  # a frozen Redis must not hold the connect for ever
                    channel = await hub_channel(self.layer)
                    await group_add(self.layer, group, channel)
            except TimeoutError:
                raise TimeoutError(f"Joining group {group!r} on the channel layer did not finish within "
                                   f"{layer_timeout()} s; is Redis reachable?") from None
            except (asyncio.CancelledError, ConnectionError):
                raise
            except Exception as exc:
                raise ConnectionError(f"Joining group {group!r} on the channel layer failed: {type(exc).__name__}: "
                                      f"{exc}; is Redis reachable?") from exc
        except BaseException as exc:
            if isinstance(exc, Exception):
                counters.event(counters.LAYER_ERROR, "", "group_add")
                outage.failed("join", exc)
            self._remove(group, members, member)
            if self.members.get(group) is members:  # members waiting for this subscription fail too
                del self.members[group]
            raise
        else:
            outage.answered()
            self.subscriptions[group] = (channel, self.loop.create_task(self._read(group, channel)))
            self._ensure_refresher()
        finally:
            del self._joining[group]
            joined.set_result(None)
        if not members and self.members.get(group) is members:  # everyone left while subscribing
            del self.members[group]
            await self._unsubscribe(group)

    async def listen(self, group: str, handler: Callable[[dict[str, Any]], None], timeout: float) -> None:
        """Subscribe this process to ``group`` for messages to the process, not to sockets (control messages):
        each one that crosses the layer is handed to ``handler``. Idempotent; on the in-memory layer there is
        nothing to subscribe to (publishers call the hubs directly). Raises ``TimeoutError`` or the layer's error
        when the subscription could not be made within ``timeout`` seconds (the next call tries again)."""
        if group in self.listeners:
            return
        self.listeners[group] = handler
        if self.layer is None or self.bypass_layer:
            return
        try:
            async with asyncio.timeout(timeout):
                channel = await hub_channel(self.layer)
                await group_add(self.layer, group, channel)
        except BaseException:
            del self.listeners[group]
            raise
        self.subscriptions[group] = (channel, self.loop.create_task(self._read(group, channel)))
        self._ensure_refresher()

    def forget(self, group: str, member: Member) -> None:
        """Drop what the group's feed keeps for ``member``, which could not join the group after all."""
        feed = self.feeds.get(group)
        if feed is not None:
            feed.forget(member)
            if group not in self.members and not feed.holds:
                del self.feeds[group]

    async def leave(self, group: str, member: Member) -> None:
        """Remove a local member; the last one unsubscribes this process from the group."""
        members = self.members.get(group)
        if members is None or member not in members:
            return
        self._remove(group, members, member)
        if members or group in self._joining:  # the subscriber cleans up when its subscription is done
            return
        del self.members[group]
        self.feeds.pop(group, None)
        self.sent_at.pop(group, None)
        await self._unsubscribe(group)

    async def _unsubscribe(self, group: str) -> None:
        subscription = self.subscriptions.pop(group, None)
        if subscription is None:
            return
        channel, task = subscription
        task.cancel()
        try:
            await task  # its receive() is over before the channel is forgotten
        except BaseException:
            pass
        release_channel(self.layer, channel)
        try:
            async with asyncio.timeout(layer_timeout()):
                await group_discard(self.layer, group, channel)
        except Exception as exc:  # the layer may be down; the membership expires on its own
            counters.event(counters.LAYER_ERROR, "", "group_discard")
            log = logger.debug if outage.failed("leave", exc) else logger.warning
            log("Could not leave group %s on the channel layer", group, exc_info=True,
                extra=fields("group_leave_failed", group=group))

    # ---- delivering --------------------------------------------------------------------------------------
    def deliver_text(self, group: str, text: str, skip: Iterable[Member] = (), published: float | None = None) -> int:
        """Queue an encoded frame on every local member of ``group`` but ``skip``; returns how many got it.

        ``published`` is the ``time.time()`` of the publish, for the publish-to-write latency.
        """
        members = self.members.get(group)
        if not members:
            return 0
        self.sent_at[group] = time.monotonic()
        pushes = self._pushes.get(group)
        if pushes is None:
            pushes = self._pushes[group] = tuple((member, member.outbox.push_encoded) for member in members)
        message = {"type": "websocket.send", "text": text}  # one dict, shared by every socket's send
        frame = text_frame(text)  # the same frame as bytes, shared by every socket written to directly
        if skip:
            left_out = set(skip)
            count = 0
            for member, push in pushes:
                if member not in left_out:
                    push(message, frame)
                    count += 1
        else:
            for _member, push in pushes:
                push(message, frame)
            count = len(pushes)
        counters.group_frame(group, text, count, published)
        return count

    def feed(self, group: str) -> Feed:
        """The feed of ``group`` (a new one after the hub left the group and joined again)."""
        current = self.feeds.get(group)
        if current is None or current.members is not self.members.get(group):
            fresh = self.feeds[group] = Feed(self, group)
            if current is not None:  # sockets held before the group's member set was made stay held
                fresh.holds = current.holds
            current = fresh
        return current

    async def deliver_message(self, group: str, message: dict[str, Any]) -> None:
        """Deliver a frame message (``FRAME_TYPE``): stamped ones in seq order and once, others at once."""
        text = message.get("text")
        if not isinstance(text, str) or group not in self.members:
            return
        if "seq" in message:
            await deliver_sequenced(self.feed(group), message)
        else:
            self.deliver_text(group, text, published=message.get("ts"))

    def drain_relay(self) -> None:
        """Deliver the stamped frames in-memory publishers queued for this hub, in the order they were queued."""
        relay = self.relay
        while relay:
            group, seq, epoch, text, published = relay.popleft()
            if group in self.members:
                self.feed(group).deliver(seq, epoch, text, published)

    async def deliver_event(self, group: str, message: dict[str, Any]) -> None:
        """Hand a plain channel-layer message to each local member's own channel (its ``x_y`` handler runs)."""
        kind = message.get("type")
        if not isinstance(kind, str) or kind.startswith(RESERVED_PREFIXES):
            logger.warning("Ignored channel-layer message of type %r for group %s: reserved or missing type",
                           kind, group, extra=fields("layer_message_ignored", group=group, code=str(kind)))
            return
        for member in tuple(self.members.get(group, ())):
            try:
                await send_local(self.layer, member.channel_name, message)
            except Exception:
                logger.warning("Could not hand a %r message to a socket of %s", kind, member.label, exc_info=True,
                               extra=fields("layer_message_undeliverable", consumer=member.label, group=group,
                                            state=member.state, code=kind))

    async def _read(self, group: str, channel: str) -> None:
        """Deliver what arrives on the process's channel for ``group``; one frame, one layer message."""
        layer = self.layer
        while True:
            try:
                message = await receive_channel(layer, channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                counters.event(counters.LAYER_ERROR, "", "receive")
                log = logger.debug if outage.failed("receive", exc) else logger.error
                log("Receiving group %s from the channel layer failed; retrying in 1 s", group, exc_info=True,
                    extra=fields("layer_receive_failed", group=group))
                await asyncio.sleep(1)
                continue
            outage.answered()
            listener = self.listeners.get(group)
            if listener is not None:
                try:
                    listener(message)
                except Exception:
                    logger.exception("Handling a control message of group %s failed", group,
                                     extra=fields("control_failed", group=group))
            elif message.get("type") == FRAME_TYPE:
                if message.get("origin") != self.id:  # this hub's own publishes were delivered at once
                    await self.deliver_message(group, message)
            else:
                await self.deliver_event(group, message)

    def _ensure_refresher(self) -> None:
        expiry = getattr(self.layer, "group_expiry", None)
        if self._refresher is None and isinstance(expiry, (int, float)) and expiry > 0:
            self._refresher = self.loop.create_task(self._refresh(max(1.0, expiry / 4)))

    async def _refresh(self, interval: float) -> None:
        """Re-add this process's memberships before the layer's ``group_expiry`` drops them."""
        while True:
            await asyncio.sleep(interval)
            await self.resubscribe()

    async def resubscribe(self) -> list[str]:
        """Add every subscription of this hub to the layer again; returns the groups that failed."""
        failed = []
        for group, (channel, _task) in list(self.subscriptions.items()):
            try:
                async with asyncio.timeout(layer_timeout()):
                    await group_add(self.layer, group, channel)
            except Exception as exc:
                counters.event(counters.LAYER_ERROR, "", "group_add")
                log = logger.debug if outage.failed("join", exc) else logger.warning
                log("Could not subscribe to group %s on the channel layer again", group, exc_info=True,
                    extra=fields("group_subscribe_failed", group=group))
                failed.append(group)
        return failed


_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}
_hubs_lock = threading.Lock()


def get_hub() -> Hub:
    """The hub of the running event loop, created on first use."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        with _hubs_lock:
            for old in [lp for lp in _hubs if lp.is_closed()]:
                del _hubs[old]
            hub = _hubs[loop] = Hub(loop, get_layer())
    return hub


def current_hub() -> Hub | None:
    """The hub of the running event loop if it has one (never creates one)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return _hubs.get(loop)


def local_hubs() -> list[Hub]:
    """Hubs of event loops that are still running."""
    return [hub for loop, hub in list(_hubs.items()) if not loop.is_closed()]


def forget_hubs() -> None:
    """Drop every hub and its group memberships; the next ``get_hub()`` makes a new one.

    For tests, between them, with no socket open (``hypergen_ws.testing.reset()``).
    """
    with _hubs_lock:
        _hubs.clear()
