"""What the hub delivers to: a group's local members and their outgoing queues, and the message types of the
channel layer that belong to hypergen_ws."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..core.state import ConnectionState

__all__ = ["FRAME_TYPE", "RESERVED_PREFIXES", "Member", "Outgoing", "Push"]

#: The channel-layer message type of an encoded group frame.
FRAME_TYPE = "hypergen_ws.frame"
#: Message types no publisher may send to a socket's handlers.
RESERVED_PREFIXES = ("websocket.", "hypergen_ws.")

Push = Callable[[dict[str, Any], bytes], None]


class Outgoing(Protocol):
    """A member's queue of outgoing frames."""

    def push(self, message: dict[str, Any]) -> None: ...

    def push_encoded(self, message: dict[str, Any], frame: bytes) -> None: ...


class Member(Protocol):
    """What stands for a socket among a group's local members."""

    @property
    def outbox(self) -> Outgoing: ...

    @property
    def label(self) -> str: ...

    @property
    def channel_name(self) -> str: ...

    @property
    def state(self) -> ConnectionState: ...

    @property
    def keeps_history(self) -> bool: ...

    def send_text(self, text: str) -> None: ...
