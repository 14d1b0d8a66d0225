"""The consumer class every ``@consumer`` function is turned into: one connection's state machine.

A connection's state lives in one object, :attr:`HypergenConsumer.state` (a
:class:`~hypergen_ws.core.state.ConnectionState`). The consumer calls the features its ``@consumer`` chose at
fixed points (:mod:`hypergen_ws.features.base`); it never imports a feature by name.
"""
from __future__ import annotations

import asyncio
import io
import logging
import secrets
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from channels.auth import get_user
from channels.consumer import get_handler_name
from channels.db import aclose_old_connections
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest

from .backends import daphne
from .backends.layers import receive_channel, release_channel
from .backends.uvicorn import close_stalled, direct_writer
from .core import conf, protocol
from .core.groups import check_group_name
from .core.logs import fields
from .core.permissions import Permission, describe_user, forget_cached_permissions
from .core.sessions import session_key_of, session_tag
from .core.state import ConnectionState, Identity, Lifecycle
from .delivery import cluster, stats
from .delivery.hub import RESERVED_PREFIXES, Hub, Member, get_hub
from .delivery.outbox import Outbox
from .delivery.publishing import apublish
from .features.base import Feature, Spec

logger = logging.getLogger("hypergen_ws")

_LAYER_EVENT = "hypergen_ws.layer_event"
#: Seconds a slow client's close frame may wait for the server's write buffer before the connection is dropped.
SLOW_CLOSE_TIMEOUT = 5.0
#: Seconds before a socket that could not join its groups at connect tries again (doubling up to the maximum).
REJOIN_DELAY = 0.5
MAX_REJOIN_DELAY = 5.0


class ConsumerSpec(Spec, Protocol):
    """What the generated class needs from its ``@consumer`` (``hypergen_ws.decorators.Consumer``)."""

    permission: Permission
    receive: bool
    send_to: str
    features: tuple[Feature, ...]
    admitters: tuple[Feature, ...]
    joiners: tuple[Feature, ...]
    members: tuple[Feature, ...]
    starters: tuple[Feature, ...]
    receivers: tuple[Feature, ...]
    leavers: tuple[Feature, ...]
    rejoiners: tuple[Feature, ...]

    def groups_for(self, instance: Any) -> list[str]: ...

    def closes_old_connections(self, event: str) -> bool: ...

    async def invoke(self, instance: Any, args: list[Any]) -> list[list[Any]]: ...


def identity_of(user: Any, session_key: str | None = None) -> Identity:
    """Who a socket is: one key per user (with the session that authenticated it), or a key of its own for an
    anonymous socket."""
    if user is not None and getattr(user, "is_authenticated", False):
        pk = user.pk if isinstance(user.pk, (int, str)) else str(user.pk)
        return Identity(f"u:{pk}", pk, user.get_username(), session_tag(session_key))
    return Identity(f"a:{secrets.token_hex(6)}", None, None)


class HypergenConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Runs one ``@consumer`` function for one websocket connection.

    Subclass it and pass ``consumer_class_base=`` to ``@consumer`` to add handlers for plain channel-layer
    messages (``{"type": "x.y"}`` reaches ``x_y``) or to keep state; instances live as long as the connection.
    ``channel_layer_alias`` chooses the layer of the socket's own channel, as in Channels (default:
    ``HYPERGEN_WS["CHANNEL_LAYER"]``).
    """

    hypergen: ClassVar[ConsumerSpec]
    #: Names of handler methods that channel-layer messages may reach (set per generated class).
    layer_handlers: ClassVar[frozenset[str]] = frozenset()
    #: Channels' own list of groups to join at connect: unused (``@consumer`` decides the groups), and not a new
    #: list per connection.
    groups: Any = ()
    # Per-connection values that start the same for every connection: class defaults until a connection sets its
    # own (an idle connection keeps as little as it can).
    hub: Hub | None = None
    _request: ASGIRequest | None = None
    _closing: asyncio.Task[None] | None = None
    _rejoining: asyncio.Task[None] | None = None
    _task: asyncio.Task[Any] | None = None
    _stopped = False
    _leavers: list[Feature] | tuple[()] = ()
    _counted_closed = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Everything hypergen_ws keeps about this connection.
        self.state = ConnectionState()
        self.url_kwargs: dict[str, Any] = {}
        self.meta: dict[str, Any] = {}
        self.outbox = Outbox(self._base_send, conf.get("SEND_QUEUE_LIMIT"), self._on_overflow)

    # ---- what features and the hub see --------------------------------------------------------------------
    @property
    def spec(self) -> ConsumerSpec:
        """The ``@consumer`` this connection runs."""
        return self.hypergen

    @property
    def label(self) -> str:
        """The consumer's label, e.g. ``chat.send_message``."""
        return self.hypergen.label

    @property
    def keeps_history(self) -> bool:
        """Whether the consumer keeps history (its primary group's frames carry a seq)."""
        return bool(self.hypergen.history)

    @property
    def group_names(self) -> list[str]:
        """The groups this connection is a member of (read-only view; use ``join``/``leave``)."""
        return list(self.state.groups)

    @property
    def close_code(self) -> int | None:
        """The close code of the disconnect (``None`` until then, or when the client sent none)."""
        return self.state.close_code

    @property
    def channel_layer_alias(self) -> str:
        """The layer of this socket's own channel: ``HYPERGEN_WS["CHANNEL_LAYER"]`` unless a subclass sets one."""
        return str(conf.get("CHANNEL_LAYER"))

    # ---- ASGI plumbing: one coroutine per connection, one more only for a class with layer handlers ---------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Serve one connection with Channels' own ``AsyncConsumer.__call__``, then clean up whatever ended it.

        Channels gets the layer of ``channel_layer_alias``, makes the socket's own channel and dispatches the
        server's events and that channel's messages (through :attr:`channel_receive`) one at a time. :meth:`stop`
        ends the connection from inside (a slow client), without a message through the layer.
        """
        self._task = asyncio.current_task()
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            if not self._stopped:
                raise
            if self._task is not None:
                self._task.uncancel()
        finally:
            self._task = None
            await self._cleanup_to_the_end()
            if getattr(self, "channel_name", None):
                release_channel(self.channel_layer, self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' ``dispatch``: run the handler of ``message``'s type. Django's ``close_old_connections()``
        runs first only where the consumer's own code may need it (``Consumer.closes_old_connections``): the
        thread hop it takes is a third of the CPU of a connect otherwise."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        if self.hypergen.closes_old_connections(message["type"]):
            await aclose_old_connections()
        await handler(message)

    def stop(self) -> None:
        """End the connection's coroutine (the server then closes the socket); used to cut off a slow client."""
        task = self._task
        if task is not None and not self._stopped and task is not asyncio.current_task():
            self._stopped = True
            task.cancel()

    @property
    def channel_receive(self) -> Callable[[], Any]:
        """What Channels' ``__call__`` waits on for this socket's own channel: :meth:`_receive_own_channel`."""
        return self._receive_own_channel

    @channel_receive.setter
    def channel_receive(self, value: Any) -> None:
        # Channels sets a plain ``layer.receive`` partial here; the getter replaces it with one that survives a
        # layer outage and waits on the in-memory layer without its scan of every channel.
        pass

    async def _base_send(self, message: dict[str, Any]) -> None:
        if message.get("type") == "websocket.close" and daphne.close_with_code(
                self.base_send, message.get("code"), SLOW_CLOSE_TIMEOUT):
            return  # daphne cannot send 1008/1011/1013 through ASGI; written to its connection directly
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
                stats.event(stats.LAYER_ERROR, "", "receive")
                if failures == 1:
                    logger.warning("Receiving on the channel of a %s socket failed; retrying every second",
                                   self.label, exc_info=True,
                                   extra=fields("layer_receive_failed", consumer=self.label, state=self.state))
                await asyncio.sleep(1)
                continue
            return {"type": _LAYER_EVENT, "message": message}

    async def hypergen_ws_layer_event(self, event: dict[str, Any]) -> None:
        """Run the handler of a channel-layer message, if this class declares one for its type."""
        message = event["message"]
        kind = message.get("type") if isinstance(message, dict) else None
        if not isinstance(kind, str) or kind.startswith(RESERVED_PREFIXES):
            logger.warning("Ignored channel-layer message of type %r for %s: reserved or missing type", kind,
                           self.label, extra=fields("layer_message_ignored", consumer=self.label, state=self.state,
                                                    code=str(kind)))
            return
        try:
            name = get_handler_name(message)
        except ValueError:
            name = ""
        if name not in self.layer_handlers:
            logger.warning(
                "Ignored channel-layer message of type %r for %s: define a method %r on the class passed as "
                "consumer_class_base= to handle it", kind, self.label, name or kind,
                extra=fields("layer_message_unhandled", consumer=self.label, state=self.state, code=kind))
            return
        await getattr(self, name)(message)

    # ---- connect -------------------------------------------------------------------------------------------
    async def websocket_connect(self, message: dict[str, Any]) -> None:
        """Check permissions, join the group(s) and accept; or accept and close with 4401/4403."""
        state = self.state
        spec = self.hypergen
        state.position = protocol.take_position(self.scope)
        self.url_kwargs = dict(self.scope.get("url_route", {}).get("kwargs", {}))
        user = self.scope.get("user") or AnonymousUser()
        state.identity = identity_of(user, session_key_of(self.scope))
        if not await spec.permission.allows(user, self.url_kwargs):
            code = (protocol.CLOSE_PERMISSION_DENIED if getattr(user, "is_authenticated", False)
                    else protocol.CLOSE_NOT_AUTHENTICATED)
            if spec.permission.missing:
                logger.error("%s has no perm= and denies every connection; pass perm=... to @consumer", self.label,
                             extra=fields("consumer_without_perm", consumer=self.label, user=user, code=code))
            elif code == protocol.CLOSE_NOT_AUTHENTICATED:
                logger.warning(
                    "Refused a websocket to %s (close %s, not logged in) for %s: it requires %s. Log the user in "
                    "(and route websockets through AuthMiddlewareStack in asgi.py), or use perm=NO_PERM_REQUIRED.",
                    self.label, code, describe_user(user), spec.permission.describe(),
                    extra=fields("connection_refused", consumer=self.label, user=user, code=code))
            else:
                logger.warning("Refused a websocket to %s (close %s, permission denied) for %s: it requires %s.",
                               self.label, code, describe_user(user), spec.permission.describe(),
                               extra=fields("connection_refused", consumer=self.label, user=user, code=code))
            stats.event(stats.REFUSED, self.label, code)
            await self._refuse(code)
            return
        self.hub = get_hub()
        for feature in spec.admitters:
            refusal = await feature.admit(self)
            if refusal is not None:
                stats.event(stats.REFUSED, self.label, refusal[0])
                await self._refuse(*refusal)
                return
        groups = spec.groups_for(self)
        state.primary_group = groups[0] if groups else None
        for feature in spec.joiners:
            feature.before_join(self, groups)
        state.pending_groups = await self._join_all(groups)
        await self.base_send({"type": "websocket.accept"})
        state.advance(Lifecycle.OPEN)
        daphne.attach(self.base_send, self.outbox)
        self.outbox.direct = direct_writer(self.base_send) or daphne.direct_writer(self.base_send)
        cluster.ensure_started(self.hub)
        stats.opened(self.label)
        if state.pending_groups:
            # docs/delivery.rst: the socket is accepted and told; it joins once the layer is back.
            self.send_text(protocol.resync_frame("unavailable", None, None))
            self._rejoining = asyncio.get_running_loop().create_task(self._rejoin())
        for feature in spec.starters:
            await feature.connected(self)
        self.outbox.start()

    async def _refuse(self, code: int, reason: str | None = None) -> None:
        """Accept only to close with ``code`` (a browser sees only 1006 for a socket refused before the accept)."""
        self.state.advance(Lifecycle.CLOSING)
        self.state.close_code = code
        await self.base_send({"type": "websocket.accept"})
        await self._base_send({"type": "websocket.close", "code": code, **({"reason": reason} if reason else {})})

    async def _join_all(self, groups: list[str]) -> list[str]:
        """Join ``groups``; return those the channel layer could not join now (it is down or frozen)."""
        failed = []
        for group in groups:
            try:
                await self.join(group)
            except (TimeoutError, ConnectionError) as exc:
                logger.warning("A socket of %s could not join %s (%s); it is accepted and joins when the channel "
                               "layer is back", self.label, group, exc,
                               extra=fields("group_join_deferred", consumer=self.label, group=group,
                                            state=self.state, code="unavailable"))
                if self.hub is not None:
                    self.hub.forget(group, self._member(group))
                failed.append(group)
        return failed

    async def _rejoin(self) -> None:
        """Join the groups the connect could not join, with backoff, then let the features catch up."""
        state = self.state
        delay = REJOIN_DELAY
        while state.is_open and state.pending_groups:
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_REJOIN_DELAY)
            groups = list(state.pending_groups)
            primary = state.primary_group in groups
            if primary:
                for feature in self.hypergen.joiners:
                    feature.before_join(self, groups)
            state.pending_groups = await self._join_all(groups)
            if state.lifecycle is not Lifecycle.OPEN:  # closed while joining: leave again
                await self._leave_all()
                return
            if primary and state.primary_group in state.groups:
                logger.info("A socket of %s joined %s now that the channel layer is back", self.label,
                            state.primary_group, extra=fields("group_joined_late", consumer=self.label, state=state))
                for feature in self.hypergen.rejoiners:
                    await feature.rejoined(self)

    @property
    def request(self) -> ASGIRequest:
        """A Django ``ASGIRequest`` built from the scope (user, session, headers), made on first use."""
        if self._request is None:
            self._request = self._build_request()
        return self._request

    @request.setter
    def request(self, value: ASGIRequest) -> None:
        self._request = value

    def _build_request(self) -> ASGIRequest:
        scope = {**self.scope, "type": "http", "method": "GET"}
        request = ASGIRequest(scope, io.BytesIO())
        request.user = self.scope.get("user") or AnonymousUser()
        if "session" in self.scope:
            request.session = self.scope["session"]
        return request

    def _member(self, group: str) -> Member:
        for feature in self.hypergen.members:
            member = feature.member(self, group)
            if member is not None:
                return member
        return self

    async def join(self, group: str) -> None:
        """Join an extra group at run time (the group name must be valid for the channel layer)."""
        check_group_name(group)
        if group in self.state.groups:
            return
        hub = self.hub = self.hub or get_hub()
        await hub.join(group, self._member(group))
        self.state.groups.append(group)

    async def leave(self, group: str) -> None:
        """Leave a group joined at connect or with ``join()``."""
        if group in self.state.groups and self.hub is not None:
            self.state.groups.remove(group)
            await self.hub.leave(group, self._member(group))

    # ---- receive -------------------------------------------------------------------------------------------
    async def websocket_receive(self, message: dict[str, Any]) -> None:
        """Decode a browser frame and run the consumer function, answering bad input with an error frame."""
        if not self.state.is_open:
            return
        text = message.get("text")
        data = message.get("bytes")
        stats.received(self.label, self.state.groups,
                       stats.text_size(text) if text is not None else len(data) if data is not None else 0)
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
            stats.event(stats.ERROR, self.label, exc.close_code)
            self.outbox.push({"type": "websocket.close", "code": exc.close_code})
        else:
            self.send_error(protocol.BAD_REQUEST, str(exc), exc.id)

    def send_error(self, code: str, message: str, call_id: int | str | None = None) -> None:
        """Send this client an error frame, counted by its code in the stats."""
        stats.event(stats.ERROR, self.label, code)
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
            logger.warning("Delivering the result of a call to %s failed: %s", self.label, exc,
                           extra=fields("call_undeliverable", consumer=self.label, state=self.state,
                                        code=protocol.UNAVAILABLE))
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
        commands before the call's reply, on every layer.
        """
        text = protocol.commands_frame(commands)
        group = self.state.groups[0] if self.state.groups else None
        if self.hypergen.send_to == "caller" or group is None:
            if self.hypergen.send_to == "caller":
                self.send_text(text)
            return
        await apublish(group, text)

    async def current_user(self) -> Any:
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
        if self._request is not None:
            self._request.user = user
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
        """Close the socket after the frames queued before it (does nothing once it is closing)."""
        state = self.state
        if state.lifecycle in (Lifecycle.CLOSING, Lifecycle.CLOSED):
            return
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
        else:
            await self.base_send(message)

    def _on_overflow(self) -> None:
        logger.warning("Closing a client of %s: it fell %s frames behind", self.label, conf.get("SEND_QUEUE_LIMIT"),
                       extra=fields("slow_client_closed", consumer=self.label, state=self.state,
                                    code=protocol.CLOSE_TRY_AGAIN_LATER))
        stats.event(stats.SLOW_CLOSE, self.label, protocol.CLOSE_TRY_AGAIN_LATER)
        self._closing = asyncio.get_running_loop().create_task(self._close_slow())

    async def _close_slow(self) -> None:
        """Cut off a client that stopped reading: leave its groups, drop its frames, close with 1013, stop."""
        if self.state.is_open:
            self.state.advance(Lifecycle.CLOSING)
            self.state.close_code = protocol.CLOSE_TRY_AGAIN_LATER
        await self._leave_all()
        await self.outbox.flush_and_stop()
        # The close frame goes behind what the server buffered: the client gets it if it reads again within
        # SLOW_CLOSE_TIMEOUT; then the server drops the connection (neither daphne nor uvicorn would on its own).
        code = protocol.CLOSE_TRY_AGAIN_LATER
        if not (daphne.close_with_code(self.base_send, code, SLOW_CLOSE_TIMEOUT)
                or close_stalled(self.base_send, code, SLOW_CLOSE_TIMEOUT)):
            try:
                async with asyncio.timeout(SLOW_CLOSE_TIMEOUT):
                    await self.base_send({"type": "websocket.close", "code": code})
            except Exception:  # timed out, or the connection is already gone
                logger.debug("Closing a slow client of %s failed", self.label, exc_info=True,
                             extra=fields("slow_close_failed", consumer=self.label, state=self.state))
        self.stop()

    # ---- disconnect ----------------------------------------------------------------------------------------
    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Leave every group and stop."""
        self.state.close_code = message.get("code")
        await self._leave_all()
        raise StopConsumer()

    async def _leave_all(self) -> None:
        state = self.state
        if state.groups:
            state.last_groups = list(state.groups)
        if self.hub is not None:
            for group in list(state.groups):
                await self.hub.leave(group, self._member(group))
        state.groups.clear()

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
        if state.lifecycle is not Lifecycle.CLOSED:
            if self._rejoining is not None and not self._rejoining.done():
                self._rejoining.cancel()
            if self.hub is not None:
                for group in state.pending_groups:
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
            stats.closed(self.label)
