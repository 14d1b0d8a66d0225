"""Group membership: groups joined after connect.

A connection's primary group (joined at connect) is the one history and presence follow. A group joined later with
``consumer.join(group)`` is a *secondary* membership: its frames reach the socket without a seq, so the client
never sees a second sequence on one socket as gaps. (The groups of every process: :mod:`.admin`.)
"""
from __future__ import annotations

from typing import Any

from ..core.protocol import STAMP_PREFIX, resync_frame, unstamp
from ..core.state import ConnectionState
from ..delivery.hub import Member
from .base import Connection, Feature, Option, Options


#: The ``@consumer`` options this feature reads, with their defaults (``hypergen_ws.features``).
OPTIONS: dict[str, Option] = {}
#: What ``@consumer`` exposes about this feature while it is off (``declares()`` says it while on).
EXPOSES: dict[str, Any] = {}


def configure(options: Options) -> MembershipFeature:
    """Always on."""
    return MembershipFeature()


class MembershipFeature(Feature):
    """Stands for a connection in the groups it joined after its primary group; tells a socket without history
    that joined late that frames may have been published before it did."""

    name = "membership"

    async def rejoined(self, conn: Connection) -> None:
        if not conn.keeps_history:  # (a history consumer's catch-up says where it stands)
            conn.send_text(resync_frame("rejoined", None, None))

    def member(self, conn: Connection, group: str) -> Member | None:
        primary = conn.state.primary_group
        if primary is None or group == primary:
            return None
        wrappers: dict[str, SecondaryMember] = conn.state.extras.setdefault(self.name, {})
        found = wrappers.get(group)
        if found is None:
            found = wrappers[group] = SecondaryMember(conn)
        return found


class _Unstamping:
    """An outbox in front of a socket's outbox that takes the seq off stamped frames."""

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def push(self, message: dict[str, Any]) -> None:
        text = message.get("text")
        if isinstance(text, str) and text.startswith(STAMP_PREFIX):
            message = {"type": "websocket.send", "text": unstamp(text)}
        self.conn.outbox.push(message)

    def push_encoded(self, message: dict[str, Any], frame: bytes) -> None:
        text = message.get("text")
        if isinstance(text, str) and text.startswith(STAMP_PREFIX):
            self.push(message)
        else:
            self.conn.outbox.push_encoded(message, frame)


class SecondaryMember:
    """A connection's membership of a group joined with ``join()``: its frames reach the socket without a seq."""

    __slots__ = ("conn", "outbox")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.outbox = _Unstamping(conn)

    @property
    def label(self) -> str:
        return self.conn.label

    @property
    def channel_name(self) -> str:
        return self.conn.channel_name

    @property
    def state(self) -> ConnectionState:
        return self.conn.state

    @property
    def keeps_history(self) -> bool:
        return False

    def send_text(self, text: str) -> None:
        self.conn.send_text(text)
