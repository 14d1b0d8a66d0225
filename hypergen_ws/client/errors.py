"""What :func:`hypergen_ws.client.connect` raises and returns: one exception per reason a socket ends for good,
and the result of a call."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core import protocol

__all__ = ["CallResult", "ConnectionClosed", "Disconnected", "HypergenClientError", "NoRoute", "NotAuthenticated",
           "PermissionDenied", "closed_for_good"]


class HypergenClientError(Exception):
    """Base class of the websocket client's errors; ``code`` is the close code (or the HTTP status of a refused
    handshake), when there is one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class NotAuthenticated(HypergenClientError):
    """4401: the server did not take the token (malformed, forged, expired, revoked by a password change, its user
    deleted or inactive), or it revoked the socket (``disconnect_user``, a logout)."""


class PermissionDenied(HypergenClientError):
    """4403: the token's user may not use this consumer (its ``perm``), or its origin is not allowed."""


class NoRoute(HypergenClientError):
    """The server refused the handshake (HTTP 403/404, or 4404): no consumer has that path, or the origin check
    refused it."""


class ConnectionClosed(HypergenClientError):
    """The connection was closed (by :meth:`Connection.close` or the end of ``async with``)."""


class Disconnected(HypergenClientError):
    """The socket was lost before the call's reply: the call may or may not have run."""


def closed_for_good(code: int, reason: str, url: str) -> HypergenClientError | None:
    """The error of a close after which the client does not reconnect, or None."""
    why = f" ({reason})" if reason else ""
    if code == protocol.CLOSE_NOT_AUTHENTICATED:
        return NotAuthenticated(
            f"The server refused the socket to {url} with 4401 (not authenticated){why}: the token is missing, "
            "malformed, forged, expired or revoked (a password change, disconnect_user, a logout), or its user was "
            "deleted or deactivated. The server's log says which. Get a new token (issue_token() or GET "
            "hypergen_ws/token/) or pass get_token= so the client fetches one.", code)
    if code == protocol.CLOSE_PERMISSION_DENIED:
        return PermissionDenied(
            f"The server refused the socket to {url} with 4403 (permission denied){why}: the token's user lacks the "
            "consumer's perm=, or the consumer does not allow this origin (cross_origin=). Grant the permission or "
            "use another user's token.", code)
    if code == protocol.CLOSE_NO_ROUTE:
        return NoRoute(f"No consumer has the path of {url} (4404){why}; `manage.py hypergen_ws_consumers` lists "
                       "the routes.", code)
    return None


@dataclass(slots=True)
class CallResult:
    """What one ``await conn.call(...)`` got back, like ``hypergen_ws.testing``'s: the frames that arrived
    between the call and its ``reply`` or ``error`` (that one included).

    ``commands`` are the commands of the ``commands`` frames among them, in order; ``messages`` the data of the
    ``message`` frames; ``reply`` the reply frame (None after an error); ``error`` None or
    ``{"code": ..., "message": ...}``.
    """

    frames: list[dict[str, Any]] = field(default_factory=list)
    commands: list[list[Any]] = field(default_factory=list)
    messages: list[Any] = field(default_factory=list)
    reply: dict[str, Any] | None = None
    error: dict[str, str] | None = None

    def add(self, frame: dict[str, Any]) -> None:
        """Take one frame that arrived while the call was waiting."""
        self.frames.append(frame)
        kind = frame.get("type")
        if kind == "commands" and isinstance(frame.get("commands"), list):
            self.commands.extend(frame["commands"])
        elif kind == "message":
            self.messages.append(frame.get("data"))
        elif kind == "reply":
            self.reply = frame
        elif kind == "error":
            self.error = {"code": str(frame.get("code")), "message": str(frame.get("message"))}
