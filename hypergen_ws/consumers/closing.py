"""Sending to the client and ending a connection: frames through the outbox, closes after what was queued, a
slow client cut off, and the clean-up of every feature when the connection is gone."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.exceptions import StopConsumer

from ..core import conf, protocol
from ..core.logs import fields
from ..core.state import Lifecycle
from ..stats import counters
from .parts import SLOW_CLOSE_TIMEOUT, ConsumerParts

logger = logging.getLogger("hypergen_ws")


class ClosingMixin(ConsumerParts):
    """Sending, closing and cleaning up."""

    def send_text(self, text: str) -> None:
        """Queue an encoded frame for this client only."""
        counters.sent(self.label, text)
        self.outbox.push_text(text)

    async def send_json(self, content: Any, close: bool = False) -> None:
        """Send a JSON frame to this client only, through its outbox (keeps order with group frames)."""
        self.send_text(protocol.encode(content, "frame"))
        if close:
            await self.close()

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close the socket after the frames queued before it (does nothing once it is closing)."""
        message = self._queue_close(code, reason)
        if message is not None:  # not accepted yet: nothing is queued
            await self.base_send(message)

    def _queue_close(self, code: int | bool | None, reason: str | None = None) -> dict[str, Any] | None:
        """Queue the close of an open socket behind its frames; the close message to send when it was not open."""
        state = self.state
        if state.lifecycle in (Lifecycle.CLOSING, Lifecycle.CLOSED):
            return None
        message: dict[str, Any] = {"type": "websocket.close"}
        if code is not None and code is not True:
            message["code"] = code
            state.close_code = int(code)
        if reason:
            message["reason"] = reason
        was_open = state.is_open
        state.advance(Lifecycle.CLOSING)
        if was_open:
            self.outbox.push(message)
            return None
        return message

    def _on_overflow(self) -> None:
        logger.warning("Closing a client of %s: it fell %s frames behind", self.label, conf.get("SEND_QUEUE_LIMIT"),
                       extra=fields("slow_client_closed", consumer=self.label, state=self.state,
                                    code=protocol.CLOSE_TRY_AGAIN_LATER))
        counters.event(counters.SLOW_CLOSE, self.label, protocol.CLOSE_TRY_AGAIN_LATER)
        self._closing = asyncio.get_running_loop().create_task(
            self._cut_off(protocol.CLOSE_TRY_AGAIN_LATER, SLOW_CLOSE_TIMEOUT))

    async def _cut_off(self, code: int, grace: float) -> None:
        """Cut off a client that stopped reading (1013) or answering (4410): leave its groups, drop its frames, close
        with ``code`` at once, stop (every clean-up runs now, not when the server notices the connection is gone)."""
        if self.state.is_open:
            self.state.advance(Lifecycle.CLOSING)
            self.state.close_code = code
        await self._leave_all()
        await self.outbox.flush_and_stop()
        # The close frame goes behind what the server buffered: the client gets it if it reads again within
        # ``grace``; then the server drops the connection (neither daphne nor uvicorn would on its own).
        if not self.transport.close_now(code, grace):
            try:
                async with asyncio.timeout(grace):
                    await self.base_send({"type": "websocket.close", "code": code})
            except Exception:  # timed out, or the connection is already gone
                logger.debug("Cutting off a client of %s failed", self.label, exc_info=True,
                             extra=fields("slow_close_failed", consumer=self.label, state=self.state))
        self.stop()

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Leave every group and stop."""
        self.state.close_code = message.get("code")
        await self._leave_all()
        raise StopConsumer()

    async def _cleanup_to_the_end(self) -> None:
        """Clean up, even when the connection's task is cancelled again meanwhile (a server or a test's event loop
        shutting down cancels it more than once): each step runs once; a cancellation is passed on at the end."""
        interrupted = False
        for _attempt in range(5):
            try:
                await self._cleanup()
                break
            except asyncio.CancelledError:
                interrupted = True
        if interrupted:
            raise asyncio.CancelledError()

    async def _cleanup(self) -> None:
        state = self.state
        self._stop_liveness()
        if state.lifecycle is not Lifecycle.CLOSED:
            if self._rejoining is not None and not self._rejoining.done():
                self._rejoining.cancel()
            if self.hub is not None:
                for group in state.pending_groups:  # (a join cut short may have left the member in)
                    await self.hub.leave(group, self._member(group))
                    self.hub.forget(group, self._member(group))
            await self._leave_all()
            state.advance(Lifecycle.CLOSED)
            self._leavers = list(self.hypergen.leavers)
        while self._leavers:
            feature = self._leavers.pop(0)
            try:
                await feature.disconnected(self)
            except Exception:
                logger.exception("Cleaning up %s after a socket of %s failed", feature.name, self.label,
                                 extra=fields("cleanup_failed", consumer=self.label, state=state, code=feature.name))
        await self.outbox.flush_and_stop()
        if state.opened and not self._counted_closed:
            self._counted_closed = True
            counters.closed(self.label)
