"""What the parts of :class:`~hypergen_ws.consumers.HypergenConsumer` share: the ``@consumer`` it runs, the timings of its groups and closes, and the attributes every part of the class may use."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from django.core.handlers.asgi import ASGIRequest

from ..backends.transport import Transport
from ..core.permissions import Permission
from ..core.protocol import Call, ProtocolError
from ..core.identity import identity_of
from ..core.state import ConnectionState
from ..delivery.hub import Hub, Member
from ..delivery.outbox import Outbox
from ..features.base import Feature, Spec
from .arrivals import Arrivals

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
    pings: bool
    features: tuple[Feature, ...]
    admitters: tuple[Feature, ...]
    joiners: tuple[Feature, ...]
    members: tuple[Feature, ...]
    starters: tuple[Feature, ...]
    arrivals: tuple[Feature, ...]
    receivers: tuple[Feature, ...]
    leavers: tuple[Feature, ...]
    rejoiners: tuple[Feature, ...]

    def groups_for(self, instance: Any) -> list[str]: ...

    def closes_old_connections(self, event: str) -> bool: ...

    async def invoke(self, instance: Any, args: list[Any]) -> list[list[Any]]: ...


class ConsumerParts:
    """The attributes and methods one part of the consumer uses from the others (declarations only: the class
    adds no behaviour, so Channels' methods stay where the parts do not override them)."""

    hypergen: ClassVar[ConsumerSpec]
    scope: dict[str, Any]
    state: ConnectionState
    url_kwargs: dict[str, Any]
    meta: dict[str, Any]
    hub: Hub | None
    outbox: Outbox
    base_send: Callable[[dict[str, Any]], Awaitable[None]]
    _request: ASGIRequest | None
    _closing: asyncio.Task[None] | None
    _rejoining: asyncio.Task[Any] | None
    _leavers: list[Feature] | tuple[()]
    _counted_closed: bool
    _arrivals: Arrivals | None

    if TYPE_CHECKING:
        channel_name: str
        request: ASGIRequest

        @property
        def spec(self) -> ConsumerSpec: ...

        @property
        def label(self) -> str: ...

        @property
        def keeps_history(self) -> bool: ...

        async def current_user(self) -> Any: ...

        async def handle_call(self, call: Call) -> None: ...

        def protocol_error(self, exc: ProtocolError) -> None: ...

        @property
        def transport(self) -> Transport: ...

        def stop(self) -> None: ...

        def send_text(self, text: str) -> None: ...

        async def close(self, code: int | bool | None = None, reason: str | None = None) -> None: ...

        def _queue_close(self, code: int | bool | None, reason: str | None = None) -> dict[str, Any] | None: ...

        async def _cut_off(self, code: int, grace: float) -> None: ...

        def _stop_liveness(self) -> None: ...

        def close_when_handled(self, code: int, reason: str) -> None: ...

        def _member(self, group: str) -> Member: ...

        async def join(self, group: str) -> None: ...

        async def _leave_all(self) -> None: ...


__all__ = ["MAX_REJOIN_DELAY", "REJOIN_DELAY", "SLOW_CLOSE_TIMEOUT", "ConsumerParts", "ConsumerSpec",
           "identity_of"]
