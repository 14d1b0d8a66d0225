"""The consumer class every ``@consumer`` function is turned into."""
from __future__ import annotations

import asyncio
import io
import logging
from typing import TYPE_CHECKING, Any, ClassVar

from channels.auth import get_user
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest

from . import backpressure, conf, hooks, protocol, raw, stats
from .fanout import Hub, Outbox, get_hub, receive_channel
from .fastpath import direct_writer
from .permissions import describe_user, forget_cached_permissions
from . import lifecycle

if TYPE_CHECKING:
    from .decorators import Consumer

logger = logging.getLogger("hypergen_ws")

_LAYER_EVENT = "hypergen_ws.layer_event"
_STOP = "hypergen_ws.stop"
#: Seconds a slow client's close frame may wait for the server's write buffer before the consumer stops anyway.
SLOW_CLOSE_TIMEOUT = 5.0
_RESERVED_PREFIXES = ("websocket.", "hypergen_ws.")


class HypergenConsumer(AsyncJsonWebsocketConsumer):
    """Runs one ``@consumer`` function for one websocket connection.

    Subclass it and pass ``consumer_class_base=`` to ``@consumer`` to add handlers for plain channel-layer
    messages (``{"type": "x.y"}`` reaches ``x_y``) or to keep state; instances live as long as the connection.
    """

    hypergen: ClassVar[Consumer]
    #: Names of handler methods that channel-layer messages may reach (set per generated class).
    layer_handlers: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.url_kwargs: dict[str, Any] = {}
        self.group_names: list[str] = []
        #: ``(seq, epoch)`` the client reconnected with (``?hgws_seq=&hgws_epoch=``), or None.
        self.recovery_position: tuple[int, int] | None = None
        self.meta: dict[str, Any] = {}
        self.request: ASGIRequest | None = None
        self.accepted = False
        #: The close code of the disconnect (``None`` until then, or when the client sent none).
        self.close_code: int | None = None
        self._last_groups: list[str] = []
        self._hub: Hub | None = None
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox = Outbox(self._base_send, conf.get("SEND_QUEUE_LIMIT"), self._on_overflow)
        self._closing: asyncio.Task[None] | None = None

    # ---- ASGI plumbing -------------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Serve one connection: ASGI events, this consumer's own layer channel and hub-forwarded events."""
        self.scope = scope
        self.channel_layer = get_channel_layer(conf.get("CHANNEL_LAYER"))
        self.base_send = send
        self.outbox.set_send(send)
        backpressure.attach(send, self.outbox)
        sources = [receive, self._inbox.get]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            sources.append(self._receive_own_channel)
        try:
            await await_many_dispatch(sources, self.dispatch)
        except StopConsumer:
            pass
        finally:
            await self._cleanup()

    async def _base_send(self, message: dict[str, Any]) -> None:
        await self.base_send(message)

    async def _receive_own_channel(self) -> dict[str, Any]:
        # A layer that is down (Redis restarting) must not end the connection: wait and try again.
        failures = 0
        while True:
            try:
                message = await receive_channel(self.channel_layer, self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                if failures == 1:
                    logger.warning("Receiving on the channel of a %s socket failed; retrying every second",
                                   self.label, exc_info=True)
                await asyncio.sleep(1)
                continue
            return {"type": _LAYER_EVENT, "message": message}

    def enqueue_layer_message(self, message: dict[str, Any]) -> None:
        """Hand a channel-layer message (from a group) to this consumer's dispatch loop."""
        if self._inbox.qsize() >= conf.get("SEND_QUEUE_LIMIT"):
            logger.warning("Dropped layer message %r for %s: its inbox is full", message.get("type"), self.label)
            return
        self._inbox.put_nowait({"type": _LAYER_EVENT, "message": message})

    async def hypergen_ws_layer_event(self, event: dict[str, Any]) -> None:
        """Run the handler of a channel-layer message, if this class declares one for its type."""
        message = event["message"]
        kind = message.get("type") if isinstance(message, dict) else None
        if not isinstance(kind, str) or kind.startswith(_RESERVED_PREFIXES):
            logger.warning("Ignored channel-layer message of type %r for %s: reserved or missing type", kind, self.label)
            return
        try:
            name = get_handler_name(message)
        except ValueError:
            name = ""
        if name not in self.layer_handlers:
            logger.warning(
                "Ignored channel-layer message of type %r for %s: define a method %r on the class passed as "
                "consumer_class_base= to handle it", kind, self.label, name or kind)
            return
        await getattr(self, name)(message)

    @property
    def label(self) -> str:
        """The consumer's label, e.g. ``chat.send_message``."""
        return self.hypergen.label

    # ---- connect -------------------------------------------------------------------------------------------
    async def websocket_connect(self, message: dict[str, Any]) -> None:
        """Check permissions, join the group(s) and accept; or accept and close with 4401/4403."""
        lifecycle.take_position(self)
        route = self.scope.get("url_route", {})
        self.url_kwargs = dict(route.get("kwargs", {}))
        self.request = self._build_request()
        user = self.scope.get("user") or AnonymousUser()
        if not await self.hypergen.permission.allows(user, self.url_kwargs):
            code = (protocol.CLOSE_PERMISSION_DENIED if getattr(user, "is_authenticated", False)
                    else protocol.CLOSE_NOT_AUTHENTICATED)
            if self.hypergen.permission.missing:
                logger.error("%s has no perm= and denies every connection; pass perm=... to @consumer", self.label)
            elif code == protocol.CLOSE_NOT_AUTHENTICATED:
                logger.warning(
                    "Refused a websocket to %s (close %s, not logged in) for %s: it requires %s. Log the user in "
                    "(and route websockets through AuthMiddlewareStack in asgi.py), or use perm=NO_PERM_REQUIRED.",
                    self.label, code, describe_user(user), self.hypergen.permission.describe())
            else:
                logger.warning("Refused a websocket to %s (close %s, permission denied) for %s: it requires %s.",
                               self.label, code, describe_user(user), self.hypergen.permission.describe())
            await self.base_send({"type": "websocket.accept"})
            await self.base_send({"type": "websocket.close", "code": code})
            return
        self._hub = get_hub()
        groups = self.hypergen.groups_for(self)
        lifecycle.before_join(self, groups)
        for group in groups:
            await self.join(group)
        await self.base_send({"type": "websocket.accept"})
        self.accepted = True
        self.outbox.direct = direct_writer(self.base_send)
        await lifecycle.connected(self)
        stats.opened(self.label)
        await hooks.connected(self)
        self.outbox.start()

    def _build_request(self) -> ASGIRequest:
        scope = {**self.scope, "type": "http", "method": "GET"}
        request = ASGIRequest(scope, io.BytesIO())
        request.user = self.scope.get("user") or AnonymousUser()
        if "session" in self.scope:
            request.session = self.scope["session"]
        return request

    async def join(self, group: str) -> None:
        """Join an extra group at run time (the group name must be valid for the channel layer)."""
        from .groups import check_group_name

        check_group_name(group)
        if group in self.group_names:
            return
        hub = self._hub or get_hub()
        self._hub = hub
        await hub.join(group, lifecycle.member(self, group))
        self.group_names.append(group)

    async def leave(self, group: str) -> None:
        """Leave a group joined at connect or with ``join()``."""
        if group in self.group_names and self._hub is not None:
            self.group_names.remove(group)
            await self._hub.leave(group, lifecycle.member(self, group, leaving=True))

    # ---- receive -------------------------------------------------------------------------------------------
    async def websocket_receive(self, message: dict[str, Any]) -> None:
        """Decode a browser frame and run the consumer function, answering bad input with an error frame."""
        if not self.accepted:
            return
        text = message.get("text")
        data = message.get("bytes")
        stats.received(self.label, self.group_names,
                       stats.text_size(text) if text is not None else len(data) if data is not None else 0)
        if self.hypergen.frames != raw.PROTOCOL:
            await raw.receive(self, message)
            return
        if text is None:
            self._protocol_error(protocol.ProtocolError("Binary frames are not part of protocol v1; send JSON text."))
            return
        try:
            call = protocol.parse_call(text, max_size=conf.get("MAX_MESSAGE_SIZE"), max_depth=conf.get("MAX_DEPTH"))
        except protocol.ProtocolError as exc:
            self._protocol_error(exc)
            return
        await self.handle_call(call)

    def _protocol_error(self, exc: protocol.ProtocolError) -> None:
        logger.warning("Bad frame from %s to %s: %s", describe_user(self.scope.get("user")), self.label, exc)
        if exc.close_code is not None:
            self.outbox.push({"type": "websocket.close", "code": exc.close_code})
        else:
            self.send_text(protocol.error_frame(protocol.BAD_REQUEST, str(exc), exc.id))

    async def handle_call(self, call: protocol.Call) -> None:
        """Re-check the permission, run the function and send what it produced."""
        spec = self.hypergen
        if not spec.receive:
            self.send_text(protocol.error_frame(
                protocol.BAD_REQUEST, f"{self.label} only sends; it does not take calls from the browser.", call.id))
            return
        user = await self._current_user()
        if not await spec.permission.allows(user, self.url_kwargs):
            logger.warning("Refused a call to %s (permission denied) for %s: it requires %s.",
                           self.label, describe_user(user), spec.permission.describe())
            self.send_text(protocol.error_frame(
                protocol.PERMISSION_DENIED, f"You may not call {self.label}.", call.id))
            return
        self.meta = call.meta
        try:
            commands = await spec.invoke(self, call.args)
        except protocol.ProtocolError as exc:
            self._protocol_error(protocol.ProtocolError(str(exc), id=call.id))
            return
        except PermissionDenied as exc:
            logger.warning("Refused a call to %s (permission denied) for %s: the function raised PermissionDenied"
                           "(%r).", self.label, describe_user(user), str(exc))
            self.send_text(protocol.error_frame(
                protocol.PERMISSION_DENIED, str(exc) or f"You may not call {self.label}.", call.id))
            return
        except Exception as exc:
            logger.exception("Error in consumer %s", self.label)
            detail = f"{type(exc).__name__}: {exc}" if conf.error_details() else "Internal server error."
            self.send_text(protocol.error_frame(protocol.SERVER_ERROR, detail, call.id))
            return
        finally:
            self.meta = {}
        if commands:
            await spec.deliver(self, commands)
        if call.id is not None:
            self.send_text(protocol.reply_frame(call.id))

    async def _current_user(self) -> Any:
        """The user as of now: re-read from the session (logout, deactivation) and without stale perm caches."""
        if self.hypergen.permission.public:
            return self.scope.get("user") or AnonymousUser()
        session = self.scope.get("session")
        if session is not None and getattr(session, "session_key", None):
            # A fresh store: the connection's copy caches the data it loaded at connect, logouts included.
            fresh = session.__class__(session_key=session.session_key)
            user = await get_user({**self.scope, "session": fresh})
            self.scope["user"] = user
        else:
            user = self.scope.get("user") or AnonymousUser()
            forget_cached_permissions(user)
        if self.request is not None:
            self.request.user = user
        return user

    # ---- send ----------------------------------------------------------------------------------------------
    def send_text(self, text: str) -> None:
        """Queue an encoded frame for this client only."""
        stats.sent(self.label, text)
        self.outbox.push_text(text)

    async def send_json(self, content: Any, close: bool = False) -> None:
        """Send a JSON frame to this client only, through its outbox (keeps order with group frames)."""
        self.send_text(protocol.encode(content, "frame"))
        if close:
            await self.close()

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close the socket after the frames queued before it."""
        message: dict[str, Any] = {"type": "websocket.close"}
        if code is not None and code is not True:
            message["code"] = code
        if reason:
            message["reason"] = reason
        if self.accepted:
            self.outbox.push(message)
        else:
            await self.base_send(message)

    def _on_overflow(self) -> None:
        logger.warning("Closing a client of %s: it fell %s frames behind", self.label, conf.get("SEND_QUEUE_LIMIT"))
        self._closing = asyncio.get_running_loop().create_task(self._close_slow())

    async def _close_slow(self) -> None:
        """Cut off a client that stopped reading: leave its groups, drop its frames, close with 1013, stop."""
        await self._leave_all()
        await self.outbox.flush_and_stop()
        try:
            # uvicorn writes the close frame only once the client reads again: do not wait for that for ever.
            await asyncio.wait_for(self.base_send({"type": "websocket.close", "code": protocol.CLOSE_TRY_AGAIN_LATER}),
                                   SLOW_CLOSE_TIMEOUT)
        except Exception:  # timed out, or the connection is already gone
            logger.debug("Closing a slow client of %s failed", self.label, exc_info=True)
        self._inbox.put_nowait({"type": _STOP})

    async def hypergen_ws_stop(self, message: dict[str, Any]) -> None:
        """End this consumer (the server then closes the connection): sent by ``_close_slow``."""
        raise StopConsumer()

    # ---- disconnect ----------------------------------------------------------------------------------------
    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Leave every group and stop."""
        self.close_code = message.get("code")
        await self._leave_all()
        raise StopConsumer()

    async def _leave_all(self) -> None:
        if self.group_names:
            self._last_groups = list(self.group_names)
        if self._hub is not None:
            for group in list(self.group_names):
                await self._hub.leave(group, lifecycle.member(self, group, leaving=True))
        self.group_names.clear()

    async def _cleanup(self) -> None:
        await self._leave_all()
        await lifecycle.disconnected(self)
        await self.outbox.flush_and_stop()
        if self.accepted:
            self.accepted = False
            stats.closed(self.label)
            await hooks.disconnected(self, self._last_groups)
