"""How a feature plugs into a connection: the :class:`Feature` hooks and the :class:`Connection` they get.

A feature is one optional behaviour of a connection (history and recovery, presence, expiry, hooks, raw frames,
group membership). ``@consumer`` asks every feature module, once, whether its options switch it on
(``configure``); the consumer then calls the chosen features at fixed points of a connection's life:

0. ``admit(conn)``: permitted; a feature may still refuse the socket by returning a close code;
1. ``before_join(conn, groups)``: permitted, before joining its groups (the first is the primary group);
2. ``member(conn, group)``: what stands for the socket among the group's members (the first feature that
   returns one wins; default: the consumer itself);
3. ``connected(conn)``: accepted, before anything is written to the socket;
4. ``arrived(conn, message)``: a frame came from the server, at once, before it waits behind the frames still being
   handled; return True when the feature answered it itself (it is then not handled at all);
   ``receive(conn, message)``: a frame is handled, in order; return True when the feature handled it;
5. ``disconnected(conn)``: once, after the socket left its groups (also for a socket a feature refused in
   ``admit``, and one refused before it was admitted, whose ``state.opened`` is False);
6. ``rejoined(conn)``: the socket could not join its groups within its connect's budget (the channel layer was
   down or frozen; it was told ``unavailable``) and has now joined them.

Features reach the connection's state only through ``conn.state`` (:class:`~hypergen_ws.core.state.ConnectionState`).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ..core.binding import Binder
from ..core.permissions import Permission
from ..core.protocol import Call, ProtocolError
from ..core.state import ConnectionState
from ..delivery.hub import Hub, Member, Outgoing


@dataclass(frozen=True, slots=True)
class Option:
    """A ``@consumer`` option that a feature declares: its default, and how the decorator's docstring explains it."""

    default: Any
    doc: str


class Options:
    """The ``@consumer`` options as given (each one's default where it was not), and what every feature may read:
    ``receive``, the function's ``binder`` and ``where`` (for error messages). An option reads as an attribute:
    ``options.history``."""

    def __init__(self, values: Mapping[str, Any], *, receive: bool, binder: Binder, where: str) -> None:
        self.values = dict(values)
        self.receive = receive
        self.binder = binder
        self.where = where

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(f"@consumer has no option {name!r}: a feature declares the options it reads in its "
                                 "module's OPTIONS (hypergen_ws.features)") from None


class Spec(Protocol):
    """The decorated consumer, as features see it."""

    permission: Permission
    history: int
    presence_enabled: bool
    expires: float | Callable[[Any], float | None] | None
    frames: str
    url_kwarg_names: tuple[str, ...]

    @property
    def label(self) -> str: ...

    @property
    def connect_hooks(self) -> list[Any]: ...

    @property
    def disconnect_hooks(self) -> list[Any]: ...

    def result_commands(self, result: Any) -> list[list[Any]]: ...


class Connection(Protocol):
    """One websocket connection, as features see it (the consumer instance)."""

    scope: dict[str, Any]
    url_kwargs: dict[str, Any]
    request: Any

    @property
    def state(self) -> ConnectionState: ...

    @property
    def spec(self) -> Spec: ...

    @property
    def label(self) -> str: ...

    @property
    def hub(self) -> Hub | None: ...

    @property
    def outbox(self) -> Any: ...

    @property
    def channel_name(self) -> str: ...

    @property
    def keeps_history(self) -> bool: ...

    def send_text(self, text: str) -> None: ...

    async def current_user(self) -> Any: ...

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None: ...

    def close_when_handled(self, code: int, reason: str) -> None:
        """Close with ``code`` once the frames let through before now were handled (from ``arrived``)."""

    async def handle_call(self, call: Call) -> None: ...

    def protocol_error(self, exc: ProtocolError) -> None: ...


TableT = TypeVar("TableT")


class PerHub(Generic[TableT]):
    """One table per hub (that is, per event loop that serves sockets), dropped once its event loop has closed.

    Subclasses keep more per hub in attributes of their own and drop it in :meth:`forget`.
    """

    def __init__(self, new_table: Callable[[], TableT]) -> None:
        self.by_hub: dict[Hub, TableT] = {}
        self._new_table = new_table

    def of(self, hub: Hub) -> TableT:
        """The table of ``hub``, made on first use (the tables of closed event loops go then)."""
        table = self.by_hub.get(hub)
        if table is None:
            for old in [h for h in self.by_hub if h.loop.is_closed()]:
                del self.by_hub[old]
                self.forget(old)
            table = self.by_hub[hub] = self._new_table()
        return table

    def forget(self, hub: Hub) -> None:
        """Drop what else is kept for ``hub``, whose event loop has closed."""


class Feature:
    """Base class of features: every hook does nothing unless overridden."""

    #: A short name, unique among features (also the key of the feature's values in ``conn.state.extras``).
    name = "feature"

    def declares(self) -> dict[str, Any]:
        """What the consumer exposes about this feature (e.g. ``{"history": 100}``); see ``@consumer``."""
        return {}

    async def admit(self, conn: Connection) -> tuple[int, str] | None:
        """Permitted; return ``(close code, reason)`` to refuse the socket, or None to let it in."""
        return None

    def before_join(self, conn: Connection, groups: list[str]) -> None:
        """Permitted; about to join ``groups`` (the first one is the primary group)."""

    def member(self, conn: Connection, group: str) -> Member | None:
        """What stands for ``conn`` among the members of ``group``, or None for the connection itself."""
        return None

    async def connected(self, conn: Connection) -> None:
        """Accepted; nothing was written to the socket yet."""

    async def arrived(self, conn: Connection, message: Mapping[str, Any]) -> bool:
        """A ``websocket.receive`` message came from the server (frames before it may still be handled); True when
        this feature answered it itself, and it must not be handled."""
        return False

    async def receive(self, conn: Connection, message: Mapping[str, Any]) -> bool:
        """A ``websocket.receive`` message is handled (in order); True when this feature handled it."""
        return False

    async def disconnected(self, conn: Connection) -> None:
        """The socket is gone and left its groups (called once)."""

    async def rejoined(self, conn: Connection) -> None:
        """The socket joined its groups late (the channel layer was down at connect); it is open."""


__all__ = ["Connection", "Feature", "Member", "Option", "Options", "Outgoing", "Spec"]
