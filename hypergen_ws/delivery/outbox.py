"""Per-socket send queue: encoded frames go out in order, a socket that stops reading is cut off.

A frame for an idle socket is written at once, in the caller's stack frame: the ASGI ``send`` coroutine is
stepped directly, and when it completes without waiting (the server's transport accepted the bytes, the usual
case) no task, future or queue entry was involved. Only a send that has to wait (the transport's write buffer is
above its high-water mark, or the server signalled a pause) is finished by a writer task, and frames pushed
meanwhile queue behind it. When ``limit`` frames are queued behind a send that still waits, the socket is not
reading: its frames are dropped and ``on_overflow`` closes it. The others are never delayed by it and the memory
it holds is bounded by ``limit`` frames plus the server's write buffer.
"""
from __future__ import annotations

import asyncio
import logging
import time
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

from ..core.logs import LOGGER_NAME, fields

logger = logging.getLogger(LOGGER_NAME)

Send = Callable[[dict[str, Any]], Awaitable[None]]
_now = time.monotonic


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """Finish, inside a task, a coroutine that was stepped by hand and suspended on ``yielded``.

    The equivalent of ``yield from coro`` for a coroutine that has already run up to its first suspension:
    what the task sends or throws in goes on to ``coro``.
    """
    while True:
        try:
            value = yield yielded
        except BaseException as exc:  # cancellation (or any error) thrown into the task goes on to coro
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
            continue
        try:
            yielded = coro.send(value)
        except StopIteration as stop:
            return stop.value


class Outbox:
    """The ordered queue of ASGI send messages of one socket.

    ``push`` never blocks and never raises. Frames pushed before ``start()`` (the socket is not accepted yet)
    wait and are not counted as overflow; so are frames pushed while ``pause()`` holds the writer back, until
    ``limit`` of them wait.
    """

    __slots__ = ("_send", "_limit", "_on_overflow", "_frames", "_task", "_started", "_busy", "_paused",
                 "closed", "overflowed", "direct", "sent_at")

    def __init__(self, send: Send, limit: int, on_overflow: Callable[[], None]) -> None:
        self._send = send
        self._limit = limit
        self._on_overflow = on_overflow
        #: The queued frames: a deque made when the first frame has to wait (an empty one costs 600 bytes).
        self._frames: deque[dict[str, Any]] | tuple[()] = ()
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self._busy = False  # a send is in progress (suspended) or the writer task is draining
        self._paused = False
        #: No more frames are accepted: a close was sent, a send failed, or ``flush_and_stop()`` ran.
        self.closed = False
        #: The socket fell ``limit`` frames behind and was cut off.
        self.overflowed = False
        #: Writes encoded text frames to the server's transport when it would accept them at once, else returns
        #: ``False`` (``hypergen_ws.fastpath``); ``None`` where the server offers nothing of the kind.
        self.direct: Callable[[bytes], bool] | None = None
        #: ``time.monotonic()`` of the last frame pushed through ``push`` or ``push_first`` (a group frame the hub
        #: wrote directly is noted by the hub, once per publish); the heartbeat reads it.
        self.sent_at = 0.0

    def __len__(self) -> int:
        """Frames waiting (not counting one being sent)."""
        return len(self._frames)

    def set_send(self, send: Send) -> None:
        """Send through ``send`` (the server's ASGI ``send``, known once the connection is served)."""
        self._send = send

    def wrap_send(self, wrap: Callable[[Send], Send]) -> None:
        """Send every message through ``wrap(send)`` from now on (it may change or drop messages).

        Turns off ``direct`` writes, which would bypass it. Call it before ``start()``.
        """
        self._send = wrap(self._send)
        self.direct = None

    def start(self) -> None:
        """Allow sending (after the socket was accepted); frames queued so far go out first, in order."""
        if not self._started:
            self._started = True
            self._kick()

    def push_text(self, text: str) -> None:
        """Queue an encoded text frame."""
        self.push({"type": "websocket.send", "text": text})

    def push(self, message: dict[str, Any]) -> None:
        """Send an ASGI message now if the socket is idle, else queue it behind the ones waiting."""
        if self.closed or self.overflowed:
            return
        self.sent_at = _now()
        if self._busy or self._paused or not self._started:
            if (self._busy or self._paused) and self._started and len(self._frames) >= self._limit:
                self._overflow()
                return
            self._queue().append(message)
            return
        self._send_now(message)

    def push_encoded(self, message: dict[str, Any], frame: bytes) -> None:
        """``push(message)``, where ``frame`` is the same text frame as bytes on the wire (a group frame).

        An idle socket with a ``direct`` writer gets the bytes written to its transport; everything else (a socket
        with frames waiting, a paused or closing one, a server without ``direct``) goes through ``push``.
        """
        direct = self.direct
        if (direct is not None and self._started and not (self._busy or self._paused or self.closed or self.overflowed)
                and direct(frame)):
            return
        self.push(message)

    def push_first(self, message: dict[str, Any]) -> None:
        """Queue an ASGI message ahead of every queued frame (a new socket's initial state)."""
        if self.closed or self.overflowed:
            return
        self.sent_at = _now()
        if self._busy or self._paused or not self._started:
            self._queue().appendleft(message)
            return
        self._send_now(message)

    def pause(self) -> None:
        """The server's write buffer is full: hold frames back (they count towards ``limit``)."""
        self._paused = True

    def resume(self) -> None:
        """The server's write buffer drained: send what waits."""
        if self._paused:
            self._paused = False
            self._kick()

    # ---- sending -------------------------------------------------------------------------------------------
    def _send_now(self, message: dict[str, Any]) -> None:
        """Step the ASGI send coroutine by hand; hand it to a writer task only if it has to wait."""
        coro: Coroutine[Any, Any, Any] = self._send(message)  # type: ignore[assignment]  # an ASGI send is async def
        try:
            yielded = coro.send(None)
        except StopIteration:
            if message["type"] == "websocket.close":
                self.closed = True
            return
        except Exception as exc:
            self._failed(exc)
            return
        self._busy = True
        self._task = asyncio.get_running_loop().create_task(self._finish(coro, yielded, message))

    def _kick(self) -> None:
        if self._frames and self._started and not self._busy and not self._paused and not self.closed:
            self._busy = True
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _finish(self, coro: Coroutine[Any, Any, Any], yielded: Any, message: dict[str, Any]) -> None:
        try:
            await _resume(coro, yielded)
        except asyncio.CancelledError:
            self._busy = False
            raise
        except Exception as exc:
            self._busy = False
            self._failed(exc)
            return
        if message["type"] == "websocket.close":
            self.closed = True
            self._busy = False
            return
        await self._drain()

    async def _drain(self) -> None:
        frames = self._frames
        if not isinstance(frames, deque):
            self._busy = False
            self._task = None
            return
        send = self._send
        try:
            while frames and not self._paused and not self.closed:
                message = frames.popleft()
                await send(message)
                if message["type"] == "websocket.close":
                    self.closed = True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(exc)
        finally:
            self._busy = False
            self._task = None

    def _queue(self) -> deque[dict[str, Any]]:
        frames = self._frames
        if not isinstance(frames, deque):
            frames = self._frames = deque()
        return frames

    def _clear(self) -> None:
        if self._frames:
            self._frames.clear()  # the same deque: a writer draining it sees it empty

    def _failed(self, exc: Exception) -> None:
        # The usual cause is a client that went away between two frames; the disconnect event follows.
        logger.debug("Sending to a websocket failed: %r; dropping its queued frames", exc, extra=fields("send_failed"))
        self.closed = True
        self._clear()

    def _overflow(self) -> None:
        self.overflowed = True
        self._clear()
        self._on_overflow()

    async def flush_and_stop(self) -> None:
        """Stop the writer, dropping what was not written (the socket is gone or being cut off)."""
        self.closed = True
        self.direct = None
        self._clear()
        task = self._task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._task = None
        self._busy = False
