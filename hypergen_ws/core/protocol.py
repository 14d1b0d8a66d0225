"""Wire protocol version 1: JSON text frames between the browser and a consumer.

Browser to server::

    {"args": [...], "meta": {...}, "id": 7}          # "meta" and "id" optional

Server to browser, one JSON object per frame, always with a ``"type"``::

    {"type": "commands", "commands": [["hypergen.append", "messages", "<li>hi</li>"]]}
    {"type": "message", "data": <payload of group_send>}
    {"type": "reply", "id": 7}
    {"type": "error", "id": 7, "code": "bad_request", "message": "..."}

With history (docs/delivery.rst) group frames carry ``"seq"`` and ``"epoch"`` first, and a socket that
reconnects gets ``{"type": "sync", ...}`` or ``{"type": "resync", ...}``; with presence (docs/presence.rst) the
group gets ``{"type": "presence", "event": "join" | "leave" | "list", ...}``. ``{"type": "ping"}`` and
``{"type": "pong"}`` keep a connection honest, ``{"type": "reconnect", "delay": ..}`` comes before a close with 1012
(docs/protocol.rst). Every frame the server sends is built here.
"""
from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

VERSION = 1

# Close codes.
CLOSE_NORMAL = 1000
CLOSE_POLICY_VIOLATION = 1008  # kept sending over the rate limit, or too many sockets for one user
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN_LATER = 1013  # the connection could not keep up with what was sent to it
CLOSE_PROTOCOL_VIOLATION = 4400
CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_PERMISSION_DENIED = 4403
CLOSE_NO_ROUTE = 4404  # no consumer has the socket's path: the handshake is refused (the browser sees HTTP 403)
CLOSE_EXPIRED = 4408  # the connection's lifetime (@consumer(expires=...)) is over; the client reconnects
CLOSE_SERVICE_RESTART = 1012  # the server shuts down; a "reconnect" frame came first (docs/protocol.rst)
CLOSE_PING_TIMEOUT = 4410  # a "ping" went unanswered for PING_TIMEOUT seconds: the client is gone

# Error codes of "error" frames.
PERMISSION_DENIED = "permission_denied"
BAD_REQUEST = "bad_request"
SERVER_ERROR = "server_error"
UNAVAILABLE = "unavailable"  # the channel layer (Redis) failed; the call may be retried
RATE_LIMITED = "rate_limited"  # over @consumer(rate=...); the call was not run

# Query parameters of a socket URL: the position a client reconnects with (docs/delivery.rst).
SEQ_PARAM = "hgws_seq"
EPOCH_PARAM = "hgws_epoch"
#: Where a connection token may come (docs/clients.rst): the query parameter (only with TOKEN_QUERY_STRING), and
#: the subprotocols of a browser page on another domain: it offers ``hypergen-ws`` and
#: ``hypergen-ws.bearer.<the token in unpadded base64url>``, and the server selects ``hypergen-ws``.
TOKEN_PARAM = "hgws_token"
SUBPROTOCOL = "hypergen-ws"
BEARER_SUBPROTOCOL = "hypergen-ws.bearer."
#: Seqs of a group never go beyond this (2**53 - 1, the largest integer exact in JavaScript): a client that claims
#: a larger one is at an unknown position, whatever the store (Redis refuses stream ids past 2**64 - 1).
MAX_SEQ = 2**53 - 1

FRAME_FIELDS = frozenset({"args", "meta", "id"})
MAX_ID_LENGTH = 64


class ProtocolError(Exception):
    """A browser frame that breaks protocol v1; the message says what was wrong and how to fix it."""

    def __init__(self, message: str, *, id: int | str | None = None, close_code: int | None = None) -> None:
        super().__init__(message)
        self.id = id
        self.close_code = close_code


@dataclass(frozen=True, slots=True)
class Call:
    """A decoded browser call."""

    args: list[Any]
    meta: dict[str, Any] = field(default_factory=dict)
    id: int | str | None = None


def text_frame(text: str) -> bytes:
    """The bytes on the wire of an unmasked, unfragmented websocket text frame carrying ``text`` (RFC 6455, 5.2):
    the same for every socket a server sends it to, unless an extension (``permessage-deflate``) was negotiated."""
    data = text.encode()
    size = len(data)
    head = (bytes((0x81, size)) if size < 126 else struct.pack("!BBH", 0x81, 126, size) if size < 65536
            else struct.pack("!BBQ", 0x81, 127, size))
    return head + data


def encode(obj: Any, what: str = "payload") -> str:
    """Encode ``obj`` as compact JSON, raising ``TypeError`` that says what to change when it is not JSON (a dict
    key that is not a string included: ``json.dumps`` would turn ``1``, ``None`` or ``True`` into a string)."""
    try:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"The {what} must be JSON (dict, list, str, int, float, bool, None; finite numbers only): {exc}. "
            "Convert the value first, for example str(value), value.isoformat() or list(value)."
        ) from exc
    key = _key_not_a_string(obj)
    if key is not _NONE:
        raise TypeError(
            f"The {what} must be JSON, whose object keys are strings: it has a dict key {key!r} "
            f"({type(key).__name__}). Convert the keys first, for example {{str(k): v for k, v in d.items()}}.")
    return text


_NONE = object()


def _key_not_a_string(obj: Any) -> Any:
    """The first dict key in ``obj`` (nested in dicts, lists and tuples) that is not a ``str``, else ``_NONE``."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if not isinstance(key, str):
                    return key
                if isinstance(value, (dict, list, tuple)):
                    stack.append(value)
        elif isinstance(item, (list, tuple)):
            stack.extend(value for value in item if isinstance(value, (dict, list, tuple)))
    return _NONE


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not standard JSON; send finite numbers only")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text} overflows a double; send a smaller number or a string")
    return value


def loads(text: str | bytes) -> Any:
    """``json.loads`` that refuses what is not standard JSON: NaN, Infinity and numbers that overflow.

    Raises ``ValueError`` (or ``RecursionError`` for absurd nesting) saying what was wrong.
    """
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)


def depth_exceeds(obj: Any, limit: int) -> bool:
    """Whether ``obj`` nests lists/dicts deeper than ``limit`` (iterative, so huge inputs are safe)."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in item)
    return False


def parse_call(text: str, *, max_size: int, max_depth: int) -> Call:
    """Decode and validate one browser text frame, raising ``ProtocolError`` for every kind of bad input."""
    if len(text) > max_size:
        raise ProtocolError(
            f"Frame of {len(text)} characters is over the limit of {max_size}; send less data per call "
            "or raise HYPERGEN_WS['MAX_MESSAGE_SIZE'].",
            close_code=CLOSE_TOO_BIG,
        )
    try:
        frame = loads(text)
    except RecursionError:
        raise ProtocolError(f"Frame nests deeper than {max_depth} levels; flatten the arguments.") from None
    except ValueError as exc:
        raise ProtocolError(f"Frame is not valid JSON ({exc}); send {{\"args\": [...]}}.") from None
    if not isinstance(frame, dict):
        raise ProtocolError(f"Frame must be a JSON object like {{\"args\": [...]}}, not {type(frame).__name__}.")
    call_id = frame.get("id")
    if call_id is not None and not _valid_id(call_id):
        raise ProtocolError(f"\"id\" must be an integer or a string of at most {MAX_ID_LENGTH} characters.")
    unknown = sorted(set(frame) - FRAME_FIELDS)
    if unknown:
        raise ProtocolError(
            f"Unknown field(s) {', '.join(map(repr, unknown))}; a call frame has only \"args\", \"meta\" and \"id\".",
            id=call_id,
        )
    if depth_exceeds(frame, max_depth + 1):
        raise ProtocolError(f"Frame nests deeper than {max_depth} levels; flatten the arguments.", id=call_id)
    args = frame.get("args", [])
    if not isinstance(args, list):
        raise ProtocolError(f"\"args\" must be a list, not {type(args).__name__}.", id=call_id)
    meta = frame.get("meta", {})
    if not isinstance(meta, dict):
        raise ProtocolError(f"\"meta\" must be an object, not {type(meta).__name__}.", id=call_id)
    return Call(args=args, meta=meta, id=call_id)


def call_id_of(text: Any, max_size: int = 65536) -> int | str | None:
    """The ``id`` of a call frame, when ``text`` is a small JSON object with a valid one (else None)."""
    if not isinstance(text, str) or len(text) > max_size or '"id"' not in text:
        return None
    try:
        frame = loads(text)
    except (ValueError, RecursionError):
        return None
    call_id = frame.get("id") if isinstance(frame, dict) else None
    return call_id if call_id is not None and _valid_id(call_id) else None


def _valid_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and len(value) <= MAX_ID_LENGTH


def check_commands(commands: Any) -> list[list[Any]]:
    """Validate a list of commands (``[["name", *args], ...]``), raising ``TypeError`` with the fix."""
    if not isinstance(commands, (list, tuple)):
        raise TypeError(
            f"Commands must be a list of lists like [['hypergen.append', 'messages', '<li>hi</li>']], "
            f"not {type(commands).__name__}."
        )
    out = []
    for i, cmd in enumerate(commands):
        if not isinstance(cmd, (list, tuple)) or not cmd or not isinstance(cmd[0], str) or not cmd[0]:
            raise TypeError(
                f"Command #{i} is {cmd!r}; each command is a list whose first item is the command name, "
                "e.g. ['hypergen.append', 'messages', '<li>hi</li>']."
            )
        out.append(list(cmd))
    return out


def commands_frame(commands: list[list[Any]]) -> str:
    """Encode a ``commands`` frame."""
    return '{"type":"commands","commands":' + encode(commands, "commands") + "}"


def message_frame(data: Any) -> str:
    """Encode a ``message`` frame carrying ``data``."""
    return '{"type":"message","data":' + encode(data, "group_send() payload") + "}"


def reply_frame(call_id: int | str) -> str:
    """Encode the ``reply`` frame for a finished call."""
    return encode({"type": "reply", "id": call_id})


def error_frame(code: str, message: str, call_id: int | str | None = None) -> str:
    """Encode an ``error`` frame."""
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if call_id is not None:
        frame["id"] = call_id
    return encode(frame)


def take_position(scope: dict[str, Any]) -> tuple[int, int] | None:
    """Remove ``hgws_seq``/``hgws_epoch`` from the scope's query string; return them when both are valid.

    A seq above :data:`MAX_SEQ` is no group's position: it becomes ``MAX_SEQ + 1``, so that every store is asked
    the same question and every layer answers ``unknown_position``.
    """
    raw = scope.get("query_string") or b""
    if b"hgws_" not in raw:
        return None
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    found = {k: v for k, v in pairs if k in (SEQ_PARAM, EPOCH_PARAM)}
    scope["query_string"] = urlencode([(k, v) for k, v in pairs if k not in found]).encode("latin-1")
    try:
        seq, epoch = int(found[SEQ_PARAM]), int(found[EPOCH_PARAM])
    except (KeyError, ValueError):
        return None
    return (min(seq, MAX_SEQ + 1), epoch) if seq >= 0 and epoch > 0 else None


# ---- history: stamps, sync and resync -------------------------------------------------------------------------
STAMP = re.compile(r'\{"seq":(\d+),"epoch":(\d+),')
#: What a frame published with history starts with.
STAMP_PREFIX = '{"seq":'


def stamp(text: str, seq: int, epoch: int) -> str:
    """``text`` (an encoded JSON object) with ``"seq"`` and ``"epoch"`` inserted first."""
    return f'{{"seq":{seq},"epoch":{epoch},{text[1:]}'


def read_stamp(text: str) -> tuple[int, int] | None:
    """``(seq, epoch)`` of a stamped frame, or None."""
    match = STAMP.match(text)
    return (int(match[1]), int(match[2])) if match else None


def unstamp(text: str) -> str:
    """``text`` without its stamp (unchanged when it has none)."""
    match = STAMP.match(text)
    return "{" + text[match.end():] if match else text


#: What history keeps in place of a frame it may no longer replay (a deleted row, the earlier version of an edited
#: one, ``redact_history()``): the frame keeps its seq, so recovery has no gap, and says nothing.
REDACTED = '{"type":"redacted"}'


def sync_frame(seq: int, epoch: int, replayed: int) -> str:
    """``{"type":"sync","seq":..,"epoch":..,"replayed":n}``: the position the frames after it continue from."""
    return encode({"type": "sync", "seq": seq, "epoch": epoch, "replayed": replayed})


def resync_frame(reason: str, seq: int | None, epoch: int | None) -> str:
    """``{"type":"resync","reason":..,"seq":..,"epoch":..}``: frames were lost; the client reloads its state."""
    return encode({"type": "resync", "reason": reason, "seq": seq, "epoch": epoch})


# ---- presence -------------------------------------------------------------------------------------------------
def presence_list_frame(users: list[dict[str, Any]]) -> str:
    """``{"type":"presence","event":"list","users":[...]}``: who is in the group, for a new socket."""
    return encode({"type": "presence", "event": "list", "users": users})


def presence_join_frame(user: dict[str, Any]) -> str:
    """``{"type":"presence","event":"join",...}``: a user's first socket joined the group."""
    return encode({"type": "presence", "event": "join", **user})


def presence_leave_frame(key: str, user_id: Any, username: str | None) -> str:
    """``{"type":"presence","event":"leave",...}``: a user's last socket left the group."""
    return encode({"type": "presence", "event": "leave", "id": key, "user_id": user_id, "username": username})


# ---- liveness: the heartbeat and the reconnect hint (docs/protocol.rst) ----------------------------------------
#: The server sends it on a quiet socket, a client as a probe; the other side answers ``PONG``.
PING = '{"type":"ping"}'
PONG = '{"type":"pong"}'


def reconnect_frame(delay: float) -> str:
    """``{"type":"reconnect","delay":..}``: the server shuts down; reconnect after ``delay`` seconds."""
    return encode({"type": "reconnect", "delay": round(delay, 3)})


def liveness(text: Any) -> str | None:
    """``"ping"`` or ``"pong"`` when ``text`` is a ping or pong frame (in any JSON spelling), else None."""
    if text == PONG or text == PING:
        return str(text[9:13])
    if isinstance(text, str) and len(text) <= 40 and '"type"' in text:
        try:
            frame = loads(text)
        except ValueError:
            return None
        if isinstance(frame, dict) and len(frame) == 1 and frame.get("type") in ("ping", "pong"):
            return str(frame["type"])
    return None


# ---- connection tokens (docs/clients.rst) ---------------------------------------------------------------------
def token_frame(event: str, expires_at: float) -> str:
    """``{"type":"token","event":"expiring"|"refreshed","expires_at":..}``: the socket's token expires soon (send
    ``{"type":"token","token":"<a new one>"}``), or the new one was taken."""
    return encode({"type": "token", "event": event, "expires_at": expires_at})


def refresh_token_of(text: str) -> str | None:
    """The new token of a ``{"type":"token","token":"..."}`` frame, or None when ``text`` is not one."""
    if '"token"' not in text or len(text) > 65536:  # the cheap test first: every frame of a token socket passes
        return None
    try:
        frame = loads(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(frame, dict) and frame.get("type") == "token" and isinstance(frame.get("token"), str):
        return str(frame["token"])
    return None
