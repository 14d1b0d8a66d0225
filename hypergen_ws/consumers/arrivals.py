"""Frames looked at when they arrive, not when their turn comes to be handled.

Channels asks the server for the next event only once the previous one was handled, so frames a client sends
faster than its calls run wait in the server's queue, unseen: a limit applied when a frame is handled counts
nothing while a flood waits, and lets all of it run later. :class:`Arrivals` reads the server's events as they
come, in a task of its own, and shows each frame to the features that look at arrivals (the rate limit) before
queueing it for the consumer: a frame they answer is never queued, so what waits is what they let through.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..core.logs import fields

logger = logging.getLogger("hypergen_ws")

Message = dict[str, Any]


class Arrivals:
    """The ``receive`` of a connection whose frames are looked at on arrival by ``arrived(message) -> handled``."""

    __slots__ = ("_receive", "_arrived", "_queue", "_task")

    def __init__(self, receive: Callable[[], Awaitable[Message]],
                 arrived: Callable[[Message], Awaitable[bool]]) -> None:
        self._receive = receive
        self._arrived = arrived
        self._queue: asyncio.Queue[Message | BaseException] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def receive(self) -> Message:
        """The next event the consumer handles (the first call starts reading the server's events)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._pump())
        item = await self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def _pump(self) -> None:
        while True:
            try:
                message = await self._receive()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server's receive failed: the consumer sees it where it would have
                self._queue.put_nowait(exc)
                return
            if message.get("type") == "websocket.receive":
                try:
                    if await self._arrived(message):
                        continue
                except Exception:  # a feature's bug: the frame is handled as if no feature had looked at it
                    logger.exception("Looking at an arriving frame failed", extra=fields("arrival_failed"))
            self._queue.put_nowait(message)
            if message.get("type") == "websocket.disconnect":
                return

    def put(self, event: Message) -> None:
        """Queue an event of the consumer's own behind the frames already let through."""
        self._queue.put_nowait(event)

    def stop(self) -> None:
        """Stop reading the server's events (the connection is over)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
