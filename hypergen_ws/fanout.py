"""Process-level fan-out.

Each server process joins a group on the channel layer once, with one layer channel per group, for all of its
local members. A frame published to the group crosses the layer once per process and is written, already encoded,
to every local socket's outbox. A plain ``channel_layer.group_send(group, {"type": "x.y", ...})`` arriving on that
channel is handed to every local member's own dispatch loop, so their ``x_y`` handlers still run.

On the in-memory layer (one process by definition) publishers skip the layer and hand the encoded frame to the
hub of each running event loop directly.
"""
from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from channels.layers import BaseChannelLayer, InMemoryChannelLayer, channel_layers, get_channel_layer

from . import conf, stats
from .fastpath import text_frame
from .outbox import Outbox
from .recovery import deliver_sequenced

__all__ = ["FRAME_TYPE", "Hub", "Outbox", "get_hub", "get_layer", "hub_channel", "local_hubs", "prepare_layer"]

if TYPE_CHECKING:
    from .consumers import HypergenConsumer

logger = logging.getLogger("hypergen_ws")

FRAME_TYPE = "hypergen_ws.frame"


class Hub:
    """The local members of every group joined in one event loop, and their layer subscriptions.

    ``members[group]`` is the set of local members: the first ``join`` subscribes the process (one layer
    channel, one ``group_add``), the last ``leave`` unsubscribes it. Joins that arrive while the subscription is
    being made wait for it; members that leave meanwhile are accounted for when it is done.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, layer: Any) -> None:
        self.loop = loop
        self.layer = layer
        self.members: dict[str, set[HypergenConsumer]] = {}
        self._readers: dict[str, tuple[str, asyncio.Task[None]]] = {}
        self._joining: dict[str, asyncio.Future[None]] = {}
        self._refresher: asyncio.Task[None] | None = None
        #: Per group, the bound ``push_encoded`` of every member's outbox: the fan-out loop touches nothing else.
        self._pushes: dict[str, tuple[Callable[[dict[str, Any], bytes], None], ...]] = {}
        self.bypass_layer = layer is None or isinstance(layer, InMemoryChannelLayer)

    async def join(self, group: str, member: HypergenConsumer) -> None:
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
                raise RuntimeError(f"Could not join group {group!r} on the channel layer; see the log.")

    def _add(self, group: str, members: set[HypergenConsumer], member: HypergenConsumer) -> None:
        if member not in members:
            members.add(member)
            self._pushes.pop(group, None)
            stats.joined(group, member.label)

    def _remove(self, group: str, members: set[HypergenConsumer], member: HypergenConsumer) -> None:
        if member in members:
            members.discard(member)
            self._pushes.pop(group, None)
            stats.left(group, member.label)

    async def _subscribe(self, group: str, members: set[HypergenConsumer], member: HypergenConsumer) -> None:
        joined = self._joining[group] = self.loop.create_future()
        try:
            channel = await hub_channel(self.layer)
            await self.layer.group_add(group, channel)
        except BaseException:
            self._remove(group, members, member)
            if self.members.get(group) is members:  # members waiting for this subscription fail too
                del self.members[group]
            raise
        else:
            self._readers[group] = (channel, self.loop.create_task(self._read(group, channel)))
            self._ensure_refresher()
        finally:
            del self._joining[group]
            joined.set_result(None)
        if not members and self.members.get(group) is members:  # everyone left while subscribing
            del self.members[group]
            await self._unsubscribe(group)

    async def leave(self, group: str, member: HypergenConsumer) -> None:
        """Remove a local member; the last one unsubscribes this process from the group."""
        members = self.members.get(group)
        if members is None or member not in members:
            return
        self._remove(group, members, member)
        if members or group in self._joining:  # the subscriber cleans up when its subscription is done
            return
        del self.members[group]
        await self._unsubscribe(group)

    async def _unsubscribe(self, group: str) -> None:
        reader = self._readers.pop(group, None)
        if reader is None:
            return
        channel, task = reader
        task.cancel()
        try:
            await self.layer.group_discard(group, channel)
        except Exception:  # the layer may be down; the membership expires on its own
            logger.warning("Could not leave group %s on the channel layer", group, exc_info=True)

    def deliver_text(self, group: str, text: str) -> int:
        """Queue an encoded frame on every local member of ``group``; returns how many got it."""
        members = self.members.get(group)
        if not members:
            return 0
        pushes = self._pushes.get(group)
        if pushes is None:
            pushes = self._pushes[group] = tuple(_pusher(member) for member in members)
        message = {"type": "websocket.send", "text": text}  # one dict, shared by every socket's send
        frame = text_frame(text)  # the same frame as bytes, shared by every socket written to directly
        for push in pushes:
            push(message, frame)
        stats.group_frame(group, text, len(members))
        return len(members)

    def deliver_event(self, group: str, message: dict[str, Any]) -> None:
        """Hand a plain channel-layer message to each local member's own dispatch loop."""
        for member in tuple(self.members.get(group, ())):
            member.enqueue_layer_message(message)

    async def _read(self, group: str, channel: str) -> None:
        """Deliver what arrives on the process's channel for ``group``; one frame, one layer message."""
        layer = self.layer
        while True:
            try:
                message = await receive_channel(layer, channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Receiving group %s from the channel layer failed; retrying in 1 s", group)
                await asyncio.sleep(1)
                continue
            if message.get("type") == FRAME_TYPE:
                text = message.get("text")
                if isinstance(text, str):
                    if "seq" in message:  # kept in history: in seq order, once (hypergen_ws.recovery)
                        await deliver_sequenced(self, group, message)
                    else:
                        self.deliver_text(group, text)
            else:
                self.deliver_event(group, message)

    def _ensure_refresher(self) -> None:
        expiry = getattr(self.layer, "group_expiry", None)
        if self._refresher is None and isinstance(expiry, (int, float)) and expiry > 0:
            self._refresher = self.loop.create_task(self._refresh(max(1.0, expiry / 4)))

    async def _refresh(self, interval: float) -> None:
        """Re-add this process's memberships before the layer's ``group_expiry`` drops them."""
        while True:
            await asyncio.sleep(interval)
            for group, (channel, _task) in list(self._readers.items()):
                try:
                    await self.layer.group_add(group, channel)
                except Exception:
                    logger.warning("Could not refresh group %s on the channel layer", group, exc_info=True)


def _pusher(member: Any) -> Callable[[dict[str, Any], bytes], None]:
    """``member.outbox.push_encoded``, or its ``push`` for members whose outbox only takes messages."""
    outbox = member.outbox
    push_encoded = getattr(outbox, "push_encoded", None)
    if push_encoded is not None:
        return push_encoded  # type: ignore[no-any-return]
    push = outbox.push
    return lambda message, frame: push(message)


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


def local_hubs() -> list[Hub]:
    """Hubs of event loops that are still running."""
    return [hub for loop, hub in list(_hubs.items()) if not loop.is_closed()]


def forget_hubs() -> None:
    """Drop every hub and its group memberships; the next ``get_hub()`` makes a new one.

    For tests, between them, with no socket open (``hypergen_ws.testing.reset()``).
    """
    with _hubs_lock:
        _hubs.clear()


# ---- the channel layer ---------------------------------------------------------------------------------------
#: Process-local channel names of hubs contain this after the "!" (see ``hub_channel``).
HUB_MARK = "hypergen_ws."
_HUB_PATTERN = re.compile(r"^[^!]*!" + re.escape(HUB_MARK))


def get_layer(alias: str | None = None) -> Any:
    """The channel layer hypergen_ws uses (``HYPERGEN_WS["CHANNEL_LAYER"]``), prepared by ``prepare_layer``."""
    layer = get_channel_layer(alias or conf.get("CHANNEL_LAYER"))
    if layer is not None:
        prepare_layer(layer)
    return layer


def prepare_layer(layer: Any) -> None:
    """Give the hubs' channels ``GROUP_CAPACITY`` on a layer with per-channel capacities (idempotent).

    A ``channels_redis`` ``RedisChannelLayer`` drops a group message silently (a log line at INFO) when the
    receiving process already has ``capacity`` (default 100) messages waiting; the in-memory layer does the same.
    The capacity a sender applies comes from its own ``channel_capacity`` patterns, so every process that
    publishes (servers, workers, commands) needs the pattern: it is added here, to the layer instance, and
    ``apps.ready`` makes every layer created in the process go through here.
    """
    if not isinstance(layer, BaseChannelLayer):  # RedisPubSubChannelLayer: no capacity, nothing to prepare
        return
    capacities = getattr(layer, "channel_capacity", None)
    if isinstance(capacities, dict):  # InMemoryChannelLayer keeps the setting uncompiled
        capacities = layer.channel_capacity = layer.compile_capacities(capacities)
    if not isinstance(capacities, list) or any(pattern is _HUB_PATTERN for pattern, _ in capacities):
        return
    capacities.insert(0, (_HUB_PATTERN, int(conf.get("GROUP_CAPACITY"))))


async def hub_channel(layer: Any) -> str:
    """A new process-local channel for a hub: the layer's own ``new_channel()`` with ``HUB_MARK`` after "!".

    The part before "!" must stay the layer's: ``RedisChannelLayer`` reads every local channel of a process
    from one Redis list named by it, under one receive lock, so a channel with another prefix would only be
    read when a message arrived for the lock holder's prefix. The mark lets ``channel_capacity`` patterns
    (``prepare_layer``) tell hub channels from consumers' own channels.
    """
    name: str = await layer.new_channel()
    if isinstance(layer, BaseChannelLayer) and "!" in name:
        head, _, tail = name.partition("!")
        name = f"{head}!{HUB_MARK}{tail}"
    return name


async def receive_channel(layer: Any, channel: str) -> dict[str, Any]:
    """``layer.receive(channel)``, without the in-memory layer's walk over every channel on every call.

    ``InMemoryChannelLayer.receive()`` scans every channel and group for expired entries before it waits, so N
    sockets that each wait on their own channel cost O(N²) to connect (about 18 s for 5,000 on a 2-core
    machine). On that exact class this waits on the channel's queue directly, as ``receive()`` would after its
    scan; every other layer (subclasses included) gets a plain ``receive()``.
    """
    if type(layer) is not InMemoryChannelLayer:
        return await layer.receive(channel)
    queue = layer.channels.get(channel)
    if queue is None:
        queue = layer.channels[channel] = asyncio.Queue(maxsize=layer.get_capacity(channel))
    try:
        _expires, message = await queue.get()
    finally:
        if queue.empty() and layer.channels.get(channel) is queue:
            del layer.channels[channel]
    return message


def install_layer_hook() -> None:
    """Prepare every channel layer this process creates (called from ``AppConfig.ready``).

    Covers processes that send plain ``{"type": "x.y"}`` messages to hypergen_ws groups without ever going
    through hypergen_ws code, so they too give the hubs' channels their capacity.
    """
    make_backend = channel_layers.make_backend
    if getattr(make_backend, "_hypergen_ws", False):
        return

    def make_prepared_backend(name: str) -> Any:
        layer = make_backend(name)
        try:
            prepare_layer(layer)
        except Exception:  # never let this break layer creation
            logger.warning("Could not set the capacity of hypergen_ws channels on layer %r", name, exc_info=True)
        return layer

    make_prepared_backend._hypergen_ws = True  # type: ignore[attr-defined]
    channel_layers.make_backend = make_prepared_backend  # type: ignore[method-assign]
