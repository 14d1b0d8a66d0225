"""The consumer class every ``@consumer`` function is turned into: one connection's state machine.

A connection's state lives in one object, :attr:`HypergenConsumer.state` (a
:class:`~hypergen_ws.core.state.ConnectionState`). The consumer calls the features its ``@consumer`` chose at
fixed points (:mod:`hypergen_ws.features.base`); it never imports a feature by name.
"""
from __future__ import annotations

import asyncio
import io
import logging
from typing import Any, ClassVar

from channels.consumer import get_handler_name
from channels.db import aclose_old_connections
from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.handlers.asgi import ASGIRequest

from ..backends import framelimit
from ..backends.channels_hooks import OwnChannelReceive
from ..backends.layers import channel_name_now, names_channels_at_once, receive_channel, release_channel
from ..backends.servers import transport_for
from ..backends.transport import Transport
from ..core import conf, protocol
from ..core import identity as identities
from ..core.logs import fields
from ..core.permissions import describe_user
from ..core.state import ConnectionState, Lifecycle, end_connect, start_connect
from ..delivery import heartbeats, outage
from ..delivery.hub import RESERVED_PREFIXES, Hub, get_hub
from ..delivery.outbox import Outbox
from ..features.base import Feature
from ..stats import counters
from .arrivals import Arrivals
from .calls import CallsMixin
from .closing import ClosingMixin
from .joining import JoiningMixin
from .liveness import LivenessMixin
from .parts import MAX_REJOIN_DELAY, REJOIN_DELAY, SLOW_CLOSE_TIMEOUT, ConsumerSpec, identity_of

__all__ = ["MAX_REJOIN_DELAY", "REJOIN_DELAY", "SLOW_CLOSE_TIMEOUT", "ConsumerSpec", "HypergenConsumer",
           "identity_of"]

logger = logging.getLogger("hypergen_ws")

_LAYER_EVENT = "hypergen_ws.layer_event"


class HypergenConsumer(CallsMixin, JoiningMixin, ClosingMixin, LivenessMixin,
                       AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Runs one ``@consumer`` function for one websocket connection.

    Subclass it and pass ``consumer_class_base=`` to ``@consumer`` to add handlers for plain channel-layer
    messages (``{"type": "x.y"}`` reaches ``x_y``) or to keep state; instances live as long as the connection.
    ``channel_layer_alias`` chooses the layer of the socket's own channel, as in Channels (default:
    ``HYPERGEN_WS["CHANNEL_LAYER"]``).

    The class is built from parts, each in a module of this package: :mod:`.calls` (the browser's frames and
    calls), :mod:`.joining` (joining and leaving groups), :mod:`.closing` (sending, closing, cleaning up),
    :mod:`.liveness` (the heartbeat and the reconnect hint); this module holds the ASGI plumbing and the connect.
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
    _rejoining: asyncio.Task[Any] | None = None
    _task: asyncio.Task[Any] | None = None
    _stopped = False
    _leavers: list[Feature] | tuple[()] = ()
    _counted_closed = False
    _arrivals: Arrivals | None = None
    _transport: Transport | None = None
    _channel_name: str | None = None
    _channel_reader: asyncio.Task[None] | None = None
    _dispatching: asyncio.Lock | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Everything hypergen_ws keeps about this connection.
        self.state = ConnectionState()
        self.url_kwargs: dict[str, Any] = {}
        self.meta: dict[str, Any] = {}
        self.outbox = Outbox(self._base_send, conf.get("SEND_QUEUE_LIMIT"), self._on_overflow)

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

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Serve one connection, then clean up whatever ended it.

        A class with layer handlers (or on a layer that makes its channels only in ``new_channel()``, such as
        ``RedisPubSubChannelLayer``) is served by Channels' own ``AsyncConsumer.__call__``: it makes the socket's
        own channel at once and dispatches the server's events and that channel's messages (through
        :attr:`channel_receive`) one at a time. Any other is served by one task that dispatches the server's
        events (the client's pings answered and its pongs taken out on the way); its own channel is made when
        something first reads :attr:`channel_name`, and from then on its messages are dispatched by a second task,
        still one message at a time. :meth:`stop` ends the connection from inside (a slow client), without a
        message through the layer.
        """
        self._task = asyncio.current_task()
        layer = get_channel_layer(self.channel_layer_alias)
        channels_call = bool(self.layer_handlers) or (layer is not None and not names_channels_at_once(layer))
        arrivals = None
        if channels_call or self.hypergen.arrivals:
            receive = self._receiving(receive)  # pings and pongs are answered and taken out first
            arrivals = self._arrivals = Arrivals(receive, self._on_arrival) if self.hypergen.arrivals else None
            receive = arrivals.receive if arrivals else receive
        try:
            if channels_call:
                await super().__call__(scope, receive, send)
            else:  # Channels' ``AsyncConsumer.__call__`` in this one task (no frame of its own kept per socket)
                self.scope = scope
                self.channel_layer = layer
                self.base_send = send
                pings = arrivals is None and self.hypergen.pings  # else answered by the wrapper of ``receive``
                try:
                    while True:
                        message = await receive()
                        if pings and self._heard(message):
                            continue
                        lock = self._dispatching
                        if lock is None:
                            await self.dispatch(message)
                        else:
                            async with lock:
                                await self.dispatch(message)
                except StopConsumer:
                    pass
        except asyncio.CancelledError:
            if not self._stopped:
                raise
            if self._task is not None:
                self._task.uncancel()
        finally:
            self._task = None
            if arrivals is not None:
                arrivals.stop()
            reader = self._channel_reader
            if reader is not None:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
            await self._cleanup_to_the_end()
            if self._channel_name is not None:
                release_channel(self.channel_layer, self._channel_name)

    @property
    def channel_name(self) -> str:
        """This socket's own channel on :attr:`channel_layer` (``channel_layer.send(name, ...)`` reaches it).

        Made at connect for a class with layer handlers, as in Channels; for any other, when first read.
        """
        name = self._channel_name
        if name is None:
            layer = getattr(self, "channel_layer", None)
            name = channel_name_now(layer) if layer is not None else None
            if name is None:
                raise AttributeError(f"{self.label} has no channel layer, so its sockets have no channel_name")
            self._channel_name = name
            self._dispatching = asyncio.Lock()
            self._channel_reader = asyncio.get_running_loop().create_task(self._read_own_channel())
        return name

    @channel_name.setter
    def channel_name(self, value: str) -> None:
        self._channel_name = value

    async def _read_own_channel(self) -> None:
        """Dispatch the messages of a channel made on first use, one at a time with the server's events."""
        lock = self._dispatching
        assert lock is not None
        try:
            while True:
                message = await self._receive_own_channel()
                async with lock:
                    await self.dispatch(message)
        except StopConsumer:
            self.stop()
        except Exception:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                return  # the socket closed while the layer's receive cleaned up after itself
            logger.exception("A channel-layer message for %s failed; closing the socket", self.label,
                             extra=fields("layer_message_failed", consumer=self.label, state=self.state))
            self.stop()

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

    #: What Channels' ``__call__`` waits on for this socket's own channel: :meth:`_receive_own_channel`, which
    #: survives a layer outage and waits on the in-memory layer without its scan of every channel (Channels'
    #: own assignment is ignored: ``backends.channels_hooks``).
    channel_receive = OwnChannelReceive("_receive_own_channel")

    @property
    def transport(self) -> Transport:
        """What the server of this connection can do besides ASGI (chosen once, on first use)."""
        transport = self._transport
        if transport is None:
            transport = self._transport = transport_for(self.base_send)
        return transport

    async def _base_send(self, message: dict[str, Any]) -> None:
        if message.get("type") == "websocket.close" and self.transport.close_with_code(
                message.get("code"), SLOW_CLOSE_TIMEOUT):
            return  # a code the server's ASGI close cannot send (daphne: 1008/1011/1012/1013), written directly
        await self.base_send(message)

    async def _receive_own_channel(self) -> dict[str, Any]:
        # A layer that is down (Redis restarting) must not end the connection: wait and try again.
        failures = 0
        while True:
            try:
                message = await receive_channel(self.channel_layer, self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the layer's own clean-up on cancel failed (channels_redis); the socket is going anyway
                failures += 1
                counters.event(counters.LAYER_ERROR, "", "receive")
                if not outage.failed("receive", exc) and failures == 1:  # (an outage is logged once, as such)
                    logger.warning("Receiving on the channel of a %s socket failed; retrying every second",
                                   self.label, exc_info=True,
                                   extra=fields("layer_receive_failed", consumer=self.label, state=self.state))
                await asyncio.sleep(1)
                continue
            if failures:
                outage.answered()
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

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        """Check permissions, join the group(s) and accept; or accept and close with 4401/4403.

        Every wait on Redis of the connect (the per-user cap, the join, the history, presence) shares one budget,
        ``CONNECT_TIMEOUT`` (:func:`~hypergen_ws.core.state.time_left`): a join that is not done by then goes on in
        the background, and the socket is accepted at once and told ``unavailable`` (docs/delivery.rst).
        """
        state = self.state
        spec = self.hypergen
        start_connect(state)
        state.position = protocol.take_position(self.scope)
        self.url_kwargs = dict(self.scope.get("url_route", {}).get("kwargs", {}))
        state.subprotocol = identities.subprotocol(self.scope)
        try:
            user, state.identity = await identities.identify(self.scope)
        except identities.NotAuthenticated as exc:
            logger.warning("Refused a websocket to %s (close %s, not authenticated): %s", self.label,
                           protocol.CLOSE_NOT_AUTHENTICATED, exc,
                           extra=fields("token_refused", consumer=self.label, code=protocol.CLOSE_NOT_AUTHENTICATED))
            counters.event(counters.REFUSED, self.label, protocol.CLOSE_NOT_AUTHENTICATED)
            await self._refuse(protocol.CLOSE_NOT_AUTHENTICATED)
            return
        if not await spec.permission.allows(user, self.url_kwargs):
            code = identities.refusal_code(user)
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
            counters.event(counters.REFUSED, self.label, code)
            await self._refuse(code)
            return
        self.hub = get_hub()
        for feature in spec.admitters:
            refusal = await feature.admit(self)
            if refusal is not None:
                counters.event(counters.REFUSED, self.label, refusal[0])
                await self._refuse(*refusal)
                return
        groups = spec.groups_for(self)
        state.primary_group = groups[0] if groups else None
        for feature in spec.joiners:
            feature.before_join(self, groups)
        joining = await self._join_within(groups)
        await self.base_send(self._accept_message())
        state.advance(Lifecycle.OPEN)
        transport = self.transport
        transport.report_backpressure(self.outbox)
        framelimit.check(self.base_send)
        self.outbox.direct = transport.writer()
        heartbeats.ensure_started(self.hub)
        counters.opened(self.label)
        if state.pending_groups:
            # docs/delivery.rst: the socket is accepted and told; it joins once the layer is back.
            self.send_text(protocol.resync_frame("unavailable", None, None))
        for feature in spec.starters:
            await feature.connected(self)
        end_connect(state)
        self.outbox.start()
        if state.pending_groups:
            self._rejoining = asyncio.get_running_loop().create_task(self._rejoin(joining))
        self._start_liveness()

    async def _refuse(self, code: int, reason: str | None = None) -> None:
        """Accept only to close with ``code`` (a browser sees only 1006 for a socket refused before the accept)."""
        self.state.advance(Lifecycle.CLOSING)
        self.state.close_code = code
        await self.base_send(self._accept_message())
        await self._base_send({"type": "websocket.close", "code": code, **({"reason": reason} if reason else {})})

    def _accept_message(self) -> dict[str, Any]:
        subprotocol = self.state.subprotocol
        return {"type": "websocket.accept", **({"subprotocol": subprotocol} if subprotocol else {})}

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
        request.user = self.scope.get("user") or identities.anonymous()
        if "session" in self.scope:
            request.session = self.scope["session"]
        return request
