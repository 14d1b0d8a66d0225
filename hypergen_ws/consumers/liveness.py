"""Whether a connection is still there: the protocol heartbeat, and the reconnect hint of a server that stops.

The server's ``receive`` is wrapped (:meth:`LivenessMixin._receiving`) so that every frame the client sends counts
as a sign of life, a ``pong`` ends there and a client's ``ping`` is answered with a ``pong`` at once, before
Channels dispatches anything: an idle socket's heartbeat costs one frame each way and no call. On uvicorn and
daphne the pong does not even reach ``receive``: the transport takes it out where it parses the frame
(``Transport.take_pongs``), and on uvicorn the server's own keepalive pings stop for a socket the heartbeat pings
(``Transport.replace_pings``). The pings
themselves come from the hub's wheel (:mod:`hypergen_ws.delivery.heartbeat`); a ping that goes unanswered for
``PING_TIMEOUT`` closes the socket with 4410, running every clean-up. Consumers whose clients cannot answer
(``frames=``, ``protocol="hypergen"``: their spec's ``pings`` is False) get no pings and keep their frames as they
are; the server's own websocket pings still find their dead clients.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from ..core import conf, protocol
from ..core.logs import fields
from ..delivery.heartbeat import Beat, wheel
from ..delivery.shutdown import drain_all, spread_delay
from .parts import ConsumerParts

logger = logging.getLogger("hypergen_ws")

Receive = Callable[[], Awaitable[dict[str, Any]]]

#: The ping every socket gets: one message dict and one frame's bytes, shared.
PING_MESSAGE = {"type": "websocket.send", "text": protocol.PING}
PING_FRAME = protocol.text_frame(protocol.PING)
#: Seconds the close frame to a client that did not answer may wait before the connection is dropped.
DEAD_CLOSE_TIMEOUT = 2.0
_invalid_logged: set[str] = set()


class LivenessMixin(ConsumerParts):
    """The heartbeat and the reconnect hint of one connection."""

    _beat: Beat | None = None

    def _receiving(self, receive: Receive) -> Receive:
        """The server's ``receive``, with pings answered and pongs taken out (for a consumer whose client can)."""
        if not self.hypergen.pings:
            return receive

        async def receive_frames() -> dict[str, Any]:
            while True:
                message = await receive()
                if not self._heard(message):
                    return message

        return receive_frames

    def _heard(self, message: dict[str, Any]) -> bool:
        """The client is alive; True when ``message`` was its ping (answered here) or pong, nothing to dispatch."""
        beat = self._beat
        if beat is not None:
            beat.heard()
        if message.get("type") == "websocket.receive":
            kind = protocol.liveness(message.get("text"))
            if kind == "pong":
                return True
            if kind == "ping":
                if self.state.is_open:
                    self.outbox.push_text(protocol.PONG)
                return True
        return False

    def _start_liveness(self) -> None:
        """The socket is open: put it on the heartbeat's wheel, and let a server's stop tell it to reconnect."""
        hub = self.hub
        assert hub is not None
        hub.sockets[self] = None
        self.transport.on_stop(hub.loop, drain_all)
        if hub.draining:  # the server is shutting down: reconnect elsewhere
            self.restart(spread_delay())
            return
        if not self.hypergen.pings:
            return
        try:
            interval, timeout, _spread = conf.liveness()
        except ImproperlyConfigured as exc:
            if str(exc) not in _invalid_logged:
                _invalid_logged.add(str(exc))
                logger.error("The heartbeat is off: %s", exc, extra=fields("setting_invalid", code="PING_INTERVAL"))
            return
        if interval is not None:
            beat = self._beat = wheel(hub, interval, timeout).add(self, strict=self.hypergen.presence_enabled)
            self.transport.take_pongs(protocol.PONG, beat.heard)  # the server drops them: no task wakes
            self.transport.replace_pings()  # and uvicorn's own pings, on a timer of their own, stop

    def _stop_liveness(self) -> None:
        if self._beat is not None:
            self._beat.stop()
            self._beat = None
        if self.hub is not None:
            self.hub.sockets.pop(self, None)

    def ping(self) -> None:
        """Send ``{"type": "ping"}`` (the heartbeat's wheel calls it on a quiet socket)."""
        if self.state.is_open:
            self.outbox.push_encoded(PING_MESSAGE, PING_FRAME)

    def ping_unanswered(self) -> None:
        """The client answered nothing for ``PING_TIMEOUT`` seconds after a ping: close with 4410."""
        self._beat = None
        if not self.state.is_open:
            return
        logger.info("Closing a socket of %s: it answered no ping for %s s", self.label, conf.get("PING_TIMEOUT"),
                    extra=fields("ping_unanswered", consumer=self.label, state=self.state,
                                 code=protocol.CLOSE_PING_TIMEOUT))
        self._closing = asyncio.get_running_loop().create_task(
            self._cut_off(protocol.CLOSE_PING_TIMEOUT, DEAD_CLOSE_TIMEOUT))

    def restart(self, delay: float) -> None:
        """The server shuts down: tell the client to reconnect after ``delay`` seconds (when its protocol has the
        frame for it), then close with 1012 after what was queued."""
        if not self.state.is_open:
            return
        if self.hypergen.pings:
            self.send_text(protocol.reconnect_frame(delay))
        self._queue_close(protocol.CLOSE_SERVICE_RESTART)
