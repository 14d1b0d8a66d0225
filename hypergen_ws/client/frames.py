"""How the Python client handles the frames of a socket: the protocol's own (ping, reconnect hint, token
refresh, sync), recovery by seq and epoch, replies of calls, and the frames it hands to ``frames()``."""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from ..core import protocol
from ..core.logs import fields
from .errors import CallResult
from .position import DROP, Position

__all__ = ["FrameHandler", "TokenSource"]

logger = logging.getLogger("hypergen_ws")

TokenSource = Callable[[], "str | Awaitable[str]"]
RECOVERING = 4000  # the client's own close code when it reconnects to fill a gap


class FrameHandler:
    """The frame handling of :class:`~hypergen_ws.client.Connection` (the state it uses is the connection's)."""

    url: str
    position: Position
    _token: str | None
    _get_token: TokenSource | None
    _frame_limit: int
    _frames: deque[dict[str, Any]]
    _arrived: asyncio.Event
    _pending: dict[int, tuple[CallResult, asyncio.Future[CallResult]]]
    _hint: float | None
    _tasks: set[asyncio.Task[Any]]

    async def _on_text(self, ws: Any, text: str) -> bool:
        """Handle one frame; False when the socket must be replaced to fill a gap."""
        try:
            frame = json.loads(text)
        except ValueError:
            logger.warning("hypergen_ws client: ignoring a frame that is not JSON on %s: %.200s", self.url, text,
                           extra=fields("client_bad_frame"))
            return True
        if not isinstance(frame, dict):
            return True
        kind = frame.get("type")
        if kind in ("ping", "pong", "reconnect", "token", "sync"):
            await self._on_protocol(ws, kind, frame)
            if kind != "sync":
                return True
        verdict = self.position.track(frame)
        if verdict == DROP:
            return True
        if isinstance(verdict, tuple) and verdict[0] == "recover":
            logger.warning("hypergen_ws client: frame %s missing on %s (got %s); recovering",
                           (self.position.last_seq or 0) + 1, self.url, verdict[1],
                           extra=fields("client_recovering", code=verdict[1]))
            await ws.close(RECOVERING, "recovering")
            return False
        if isinstance(verdict, tuple):  # a new epoch: say so, then take the frame
            self._deliver(verdict[1])
        if kind in ("sync", "redacted"):  # (a redacted frame of the history only counts for the position)
            return True
        call = self._pending.get(frame["id"]) if kind in ("reply", "error") and "id" in frame else None
        if call is not None:
            call[0].add(frame)
            if not call[1].done():
                call[1].set_result(call[0])
            return True
        for result, _ in self._pending.values():
            result.add(frame)
        self._deliver(frame)
        return True

    async def _on_protocol(self, ws: Any, kind: str, frame: dict[str, Any]) -> None:
        if kind == "ping":
            await ws.send(protocol.PONG)
        elif kind == "reconnect" and isinstance(frame.get("delay"), (int, float)):
            self._hint = max(0.0, float(frame["delay"]))
        elif kind == "token" and frame.get("event") == "expiring" and self._get_token is not None:
            task = asyncio.get_running_loop().create_task(self._refresh(ws))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _refresh(self, ws: Any) -> None:
        try:
            token = await self._current_token()
            await ws.send(json.dumps({"type": "token", "token": token}))
        except Exception:
            logger.warning("hypergen_ws client: refreshing the token of %s failed; the server closes the socket "
                           "with 4401 when it expires", self.url, exc_info=True, extra=fields("client_refresh_failed"))

    async def _current_token(self) -> str | None:
        if self._get_token is None:
            return self._token
        value = self._get_token()
        if inspect.isawaitable(value):
            value = await value
        if not isinstance(value, str) or not value:
            raise TypeError(f"get_token() returned {value!r}; return the token, a non-empty str")
        self._token = value
        return value

    def _reconnect_hint(self) -> float | None:
        return self._hint

    def _deliver(self, frame: dict[str, Any]) -> None:
        if len(self._frames) >= self._frame_limit:
            self._frames.clear()  # nobody reads frames(): say what was lost rather than grow for ever
            frame = {"type": "resync", "reason": "client_queue_full", "seq": self.position.last_seq,
                     "epoch": self.position.epoch}
        self._frames.append(frame)
        self._arrived.set()
