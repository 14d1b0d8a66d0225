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
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from channels.layers import InMemoryChannelLayer, get_channel_layer

from . import conf

if TYPE_CHECKING:
    from .consumers import HypergenConsumer

logger = logging.getLogger("hypergen_ws")

FRAME_TYPE = "hypergen_ws.frame"


class Outbox:
    """A queue of encoded frames for one socket, drained by one writer task.

    ``push`` never blocks. A socket whose writer is stuck in a send while ``limit`` frames wait behind it is
    not reading: its outbox is dropped and ``on_overflow`` closes it, without slowing the others down or growing
    memory without bound. A burst that arrives while the writer simply has not run yet is not overflow.
    """

    __slots__ = ("_send", "_limit", "_on_overflow", "_frames", "_waiter", "_task", "_sending", "overflowed")

    def __init__(self, send: Callable[[dict[str, Any]], Awaitable[None]], limit: int,
                 on_overflow: Callable[[], None]) -> None:
        self._send = send
        self._limit = limit
        self._on_overflow = on_overflow
        self._frames: deque[dict[str, Any]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._sending = False
        self.overflowed = False

    def start(self) -> None:
        """Start the writer task (after the socket was accepted)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
            self._wake()

    def push_text(self, text: str) -> None:
        """Queue an encoded text frame."""
        self.push({"type": "websocket.send", "text": text})

    def push(self, message: dict[str, Any]) -> None:
        """Queue an ASGI send message."""
        if self.overflowed:
            return
        if self._sending and len(self._frames) >= self._limit:
            self.overflowed = True
            self._frames.clear()
            self._on_overflow()
            return
        self._frames.append(message)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _run(self) -> None:
        frames = self._frames
        loop = asyncio.get_running_loop()
        while True:
            while frames:
                message = frames.popleft()
                self._sending = True
                await self._send(message)
                self._sending = False
                if message["type"] == "websocket.close":
                    return
            self._waiter = loop.create_future()
            await self._waiter
            self._waiter = None

    async def flush_and_stop(self) -> None:
        """Stop the writer, dropping what was not written (the socket is gone)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        self._frames.clear()


class Hub:
    """The local members of every group joined in one event loop, and their layer subscriptions."""

    def __init__(self, loop: asyncio.AbstractEventLoop, layer: Any) -> None:
        self.loop = loop
        self.layer = layer
        self.members: dict[str, set[HypergenConsumer]] = {}
        self._readers: dict[str, tuple[str, asyncio.Task[None]]] = {}
        self._joining: dict[str, asyncio.Future[None]] = {}
        self._refresher: asyncio.Task[None] | None = None
        self.bypass_layer = layer is None or isinstance(layer, InMemoryChannelLayer)

    async def join(self, group: str, member: HypergenConsumer) -> None:
        """Add a local member; the first one subscribes this process to the group on the layer."""
        members = self.members.get(group)
        if members is None:
            members = self.members[group] = set()
            if self.layer is not None:
                joined = self._joining[group] = self.loop.create_future()
                try:
                    channel = await self.layer.new_channel("hypergen_ws")
                    await self.layer.group_add(group, channel)
                    task = self.loop.create_task(self._read(group, channel))
                    self._readers[group] = (channel, task)
                    self._ensure_refresher()
                finally:
                    joined.set_result(None)
                    del self._joining[group]
        elif group in self._joining:
            await asyncio.shield(self._joining[group])
        members.add(member)

    async def leave(self, group: str, member: HypergenConsumer) -> None:
        """Remove a local member; the last one unsubscribes this process from the group."""
        members = self.members.get(group)
        if members is None:
            return
        members.discard(member)
        if members or group in self._joining:
            return
        del self.members[group]
        reader = self._readers.pop(group, None)
        if reader is not None:
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
        message = {"type": "websocket.send", "text": text}
        for member in members:
            member.outbox.push(message)
        return len(members)

    def deliver_event(self, group: str, message: dict[str, Any]) -> None:
        """Hand a plain channel-layer message to each local member's own dispatch loop."""
        for member in tuple(self.members.get(group, ())):
            member.enqueue_layer_message(message)

    async def _read(self, group: str, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Receiving group %s from the channel layer failed; retrying in 1 s", group)
                await asyncio.sleep(1)
                continue
            if message.get("type") == FRAME_TYPE:
                text = message.get("text")
                if isinstance(text, str):
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
            hub = _hubs[loop] = Hub(loop, get_channel_layer(conf.get("CHANNEL_LAYER")))
    return hub


def local_hubs() -> list[Hub]:
    """Hubs of event loops that are still running."""
    return [hub for loop, hub in list(_hubs.items()) if not loop.is_closed()]
