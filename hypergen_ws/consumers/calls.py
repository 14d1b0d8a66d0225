"""The browser's frames: decoded, checked against the consumer's ``perm`` again, and run as calls whose commands
and reply (or error) go back to the caller."""
from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied

from ..backends.django_auth import forget_cached_permissions
from ..core import conf, protocol
from ..core import identity as identities
from ..core.logs import fields
from ..core.permissions import describe_user
from ..delivery import outage
from ..delivery.publishing import apublish
from ..stats import counters
from .parts import ConsumerParts

logger = logging.getLogger("hypergen_ws")


class CallsMixin(ConsumerParts):
    """What the browser sends: calls (protocol v1), or raw frames for a feature that takes them."""

    async def _on_arrival(self, message: dict[str, Any]) -> bool:
        """A frame came from the server: the features that look at arrivals (the rate limit) see it at once,
        before it waits behind the frames being handled; True when one of them answered it."""
        if not self.state.is_open:
            return False
        for feature in self.hypergen.arrivals:
            if await feature.arrived(self, message):
                self._count_received(message)
                return True
        return False

    def close_when_handled(self, code: int, reason: str) -> None:
        """Close with ``code`` once the frames already let through were handled: the close waits behind them."""
        if self._arrivals is not None:
            self._arrivals.put({"type": "hypergen_ws.close", "code": code, "reason": reason})
        else:
            self.outbox.push({"type": "websocket.close", "code": code, "reason": reason})

    async def hypergen_ws_close(self, event: dict[str, Any]) -> None:
        """The close ``close_when_handled`` queued: its turn came."""
        await self.close(event["code"], event["reason"])

    def _count_received(self, message: dict[str, Any]) -> None:
        text = message.get("text")
        data = message.get("bytes")
        counters.received(self.label, self.state.groups,
                          counters.text_size(text) if text is not None else len(data) if data is not None else 0)

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        """Decode a browser frame and run the consumer function, answering bad input with an error frame."""
        if not self.state.is_open:
            return
        text = message.get("text")
        self._count_received(message)
        for feature in self.hypergen.receivers:
            if await feature.receive(self, message):
                return
        if text is None:
            self.protocol_error(protocol.ProtocolError("Binary frames are not part of protocol v1; send JSON text."))
            return
        try:
            call = protocol.parse_call(text, max_size=conf.get("MAX_MESSAGE_SIZE"), max_depth=conf.get("MAX_DEPTH"))
        except protocol.ProtocolError as exc:
            self.protocol_error(exc)
            return
        await self.handle_call(call)

    def protocol_error(self, exc: protocol.ProtocolError) -> None:
        """Answer a bad frame: an error frame, or a close when the frame was too big."""
        logger.warning("Bad frame from %s to %s: %s", describe_user(self.scope.get("user")), self.label, exc,
                       extra=fields("bad_frame", consumer=self.label, state=self.state,
                                    code=exc.close_code or protocol.BAD_REQUEST))
        if exc.close_code is not None:
            counters.event(counters.ERROR, self.label, exc.close_code)
            self.outbox.push({"type": "websocket.close", "code": exc.close_code})
        else:
            self.send_error(protocol.BAD_REQUEST, str(exc), exc.id)

    def send_error(self, code: str, message: str, call_id: int | str | None = None) -> None:
        """Send this client an error frame, counted by its code in the stats."""
        counters.event(counters.ERROR, self.label, code)
        self.send_text(protocol.error_frame(code, message, call_id))

    async def handle_call(self, call: protocol.Call) -> None:
        """Re-check the permission, run the function and send what it produced.

        Every failure reaches the caller as an error frame carrying the call's id; the socket stays open.
        """
        spec = self.hypergen
        if not spec.receive:
            self.send_error(
                protocol.BAD_REQUEST, f"{self.label} only sends; it does not take calls from the browser.", call.id)
            return
        user = await self.current_user()
        if not await spec.permission.allows(user, self.url_kwargs):
            logger.warning("Refused a call to %s (permission denied) for %s: it requires %s.",
                           self.label, describe_user(user), spec.permission.describe(),
                           extra=fields("call_refused", consumer=self.label, state=self.state,
                                        code=protocol.PERMISSION_DENIED))
            self.send_error(protocol.PERMISSION_DENIED, f"You may not call {self.label}.", call.id)
            return
        self.meta = call.meta
        try:
            commands = await spec.invoke(self, call.args)
            if commands:
                await self.deliver(commands)
        except protocol.ProtocolError as exc:
            self.protocol_error(protocol.ProtocolError(str(exc), id=call.id))
            return
        except PermissionDenied as exc:
            logger.warning("Refused a call to %s (permission denied) for %s: the function raised PermissionDenied"
                           "(%r).", self.label, describe_user(user), str(exc),
                           extra=fields("call_refused", consumer=self.label, state=self.state,
                                        code=protocol.PERMISSION_DENIED))
            self.send_error(protocol.PERMISSION_DENIED, str(exc) or f"You may not call {self.label}.", call.id)
            return
        except (TimeoutError, ConnectionError) as exc:
            # (an outage of the channel layer is logged once, as such: hypergen_ws.delivery.outage)
            log = logger.debug if outage.is_outage(exc) else logger.warning
            log("Delivering the result of a call to %s failed: %s", self.label, exc, exc_info=True,
                extra=fields("call_undeliverable", consumer=self.label, state=self.state, code=protocol.UNAVAILABLE))
            self.send_error(
                protocol.UNAVAILABLE, "The server could not deliver the result right now (its channel layer is "
                "unavailable); try again in a moment.", call.id)
            return
        except Exception as exc:
            logger.exception("Error in consumer %s", self.label,
                             extra=fields("consumer_error", consumer=self.label, state=self.state,
                                          code=protocol.SERVER_ERROR))
            detail = f"{type(exc).__name__}: {exc}" if conf.error_details() else "Internal server error."
            self.send_error(protocol.SERVER_ERROR, detail, call.id)
            return
        finally:
            self.meta = {}
        if call.id is not None:
            self.send_text(protocol.reply_frame(call.id))

    async def deliver(self, commands: list[list[Any]]) -> None:
        """Send a call's commands to the caller only (``send_to="caller"``) or to its primary group.

        Through the one publish path, which writes to this event loop's sockets first: the caller has the
        commands before the call's reply, on every layer. A socket that has not joined its primary group yet (the
        channel layer was down at connect) publishes to it all the same: the call gets its reply only when the
        layer took the frame, and ``unavailable`` otherwise, never a reply for commands that went nowhere.
        """
        text = protocol.commands_frame(commands)
        group = self.state.primary_group
        if self.hypergen.send_to == "caller" or group is None:
            if self.hypergen.send_to == "caller":
                self.send_text(text)
            return
        await apublish(group, text)

    async def current_user(self) -> Any:
        """The user as of now (``core.identity.current_user``: a logout or a deactivation since the connect counts),
        also set on the function's ``request``."""
        public = self.hypergen.permission.public
        user = await identities.current_user(self.scope, public=public)
        if not public:
            forget_cached_permissions(user)  # a scope's user object lives as long as the socket
        if self._request is not None:
            self._request.user = user
        return user
