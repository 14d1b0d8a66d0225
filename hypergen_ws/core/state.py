"""The state of one websocket connection, owned by one object.

``ConnectionState`` holds where a connection is in its life (an explicit :class:`Lifecycle`), the groups it
joined, the recovery position it reconnected with, when it expires and who it is. The consumer creates one per
connection; features read and change it through the consumer (``hypergen_ws.features.base.Connection``), never
through attributes set on the consumer from outside.

Transitions::

    CONNECTING -> OPEN -> CLOSING -> CLOSED
    CONNECTING -> CLOSING          (refused: accepted only to send the close code)
    CONNECTING | OPEN -> CLOSED    (the client went away)

Any other transition raises :class:`IllegalTransition`.
"""
from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import conf

#: The least one wait on Redis gets during a connect, even once the connect's budget is spent.
MIN_CONNECT_STEP = 0.25

from .identity import Identity

__all__ = ["ConnectionState", "IllegalTransition", "Identity", "Lifecycle"]


class Lifecycle(enum.Enum):
    """Where a connection is in its life."""

    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


_ALLOWED: dict[Lifecycle, frozenset[Lifecycle]] = {
    Lifecycle.CONNECTING: frozenset({Lifecycle.OPEN, Lifecycle.CLOSING, Lifecycle.CLOSED}),
    Lifecycle.OPEN: frozenset({Lifecycle.CLOSING, Lifecycle.CLOSED}),
    Lifecycle.CLOSING: frozenset({Lifecycle.CLOSED}),
    Lifecycle.CLOSED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A connection was asked to move to a state it cannot reach from where it is."""


@dataclass(slots=True)
class ConnectionState:
    """Everything hypergen_ws keeps about one connection."""

    lifecycle: Lifecycle = Lifecycle.CONNECTING
    #: Groups the connection is a member of, in the order it joined them.
    groups: list[str] = field(default_factory=list)
    #: The group joined at connect: the one history, recovery and presence follow.
    primary_group: str | None = None
    #: ``(seq, epoch)`` the client reconnected with (``?hgws_seq=&hgws_epoch=``), or None.
    position: tuple[int, int] | None = None
    #: When the connection's lifetime is over (``time.time()`` seconds), or None.
    expires_at: float | None = None
    #: Who the connection is (``core.identity``), fixed at connect.
    identity: Identity | None = None
    #: The close code of the disconnect, or the one the server closed with.
    close_code: int | None = None
    #: The groups the connection was in when it left them (for ``on_disconnect``); a list once it left any.
    last_groups: Sequence[str] = ()
    #: Whether the connection was ever open (it passed the permission check and was accepted).
    opened: bool = False
    #: Groups the connection could not join at connect (the channel layer was down); it joins them later.
    pending_groups: Sequence[str] = ()
    #: While the connect runs: the event-loop time (``loop.time()``) its waits on Redis must end by
    #: (``CONNECT_TIMEOUT``); None before and after.
    connect_deadline: float | None = None
    #: The subprotocol selected in the accept (``hypergen-ws`` when the client offered it), or None.
    subprotocol: str | None = None
    #: Per-feature values (timers, wrappers), keyed by the feature's name.
    extras: dict[str, Any] = field(default_factory=dict)
    #: When the connection began (``time.monotonic()``, as the consumer was made): a close of its user that
    #: arrives later reaches it, even before it is open.
    created: float = field(default_factory=time.monotonic)

    def advance(self, target: Lifecycle) -> None:
        """Move to ``target``, or raise :class:`IllegalTransition` when it cannot be reached from here."""
        if target not in _ALLOWED[self.lifecycle]:
            raise IllegalTransition(
                f"A connection cannot go from {self.lifecycle.value} to {target.value}; allowed from "
                f"{self.lifecycle.value}: {', '.join(sorted(s.value for s in _ALLOWED[self.lifecycle])) or 'nothing'}."
            )
        self.lifecycle = target
        if target is Lifecycle.OPEN:
            self.opened = True

    @property
    def is_open(self) -> bool:
        """Whether the connection was accepted and is not closing."""
        return self.lifecycle is Lifecycle.OPEN



def start_connect(state: ConnectionState) -> None:
    """Start the connect's budget: every wait on Redis until :func:`end_connect` shares ``CONNECT_TIMEOUT``
    seconds (at most ``PUBLISH_TIMEOUT``). Call it in the connection's event loop."""
    budget = min(float(conf.get("CONNECT_TIMEOUT")), float(conf.get("PUBLISH_TIMEOUT")))
    state.connect_deadline = asyncio.get_running_loop().time() + budget


def end_connect(state: ConnectionState) -> None:
    """The connect is over: later waits on Redis (a late join, a call) get ``PUBLISH_TIMEOUT`` each."""
    state.connect_deadline = None


def time_left(state: ConnectionState) -> float:
    """Seconds one wait on Redis may take for this connection now: during its connect what is left of the budget
    (at least :data:`MIN_CONNECT_STEP`), otherwise ``PUBLISH_TIMEOUT``."""
    if state.connect_deadline is None:
        return float(conf.get("PUBLISH_TIMEOUT"))
    return max(MIN_CONNECT_STEP, state.connect_deadline - asyncio.get_running_loop().time())
