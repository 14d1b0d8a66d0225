"""The frames of Hypergen's own client (django-hypergen's ``hypergen.js``), for ``@consumer(protocol="hypergen")``.

Browser to server, sent by ``callback("ws://...", ...)``: ``{"args": [...], "meta": {...}}``, a protocol v1 call
without an id, whose arguments may hold Hypergen's custom values, ``{"_": ["date", "2026-12-01"]}`` and the like.
:func:`decode_values` turns those into Python values.

Server to browser: a bare JSON list of commands, which the client runs with
``hypergen.applyCommands(JSON.parse(e.data))``. :func:`to_hypergen` turns an encoded v1 server frame into that:

* ``{"type": "commands", "commands": C}`` becomes ``C`` (a stamp of history is dropped);
* ``{"type": "error", "code": ..., "message": ...}`` becomes ``[["console.error", "hypergen_ws: <message> (<code>)"]]``;
* ``{"type": "message", "data": D}`` (``group_send``) becomes ``[["console.log", "hypergen_ws message:", D]]``:
  the client runs commands only, so data is shown, not lost;
* ``{"type": "reply"}`` is not sent (the client sends no call ids, so it never waits for one).
"""
from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime, parse_time

from .protocol import ProtocolError, encode, unstamp

COMMANDS_PREFIX = '{"type":"commands","commands":'


def _parsed(parse: Callable[[str], Any], kind: str, example: str) -> Callable[[Any], Any]:
    def decode(value: Any) -> Any:
        try:
            result = parse(value) if isinstance(value, str) else None
        except ValueError:
            result = None
        if result is None:
            raise ProtocolError(f"Hypergen value {{'_': ['{kind}', {value!r}]}} is not a valid {kind}; send one like "
                                f"{example!r}.")
        return result
    return decode


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f"Hypergen value {{'_': ['float', {value!r}]}} is not a number.")
    return float(value)


def _collection(make: Callable[[list[Any]], Any], kind: str) -> Callable[[Any], Any]:
    def decode(value: Any) -> Any:
        if not isinstance(value, list):
            raise ProtocolError(f"Hypergen value {{'_': ['{kind}', ...]}} must hold a list, not {value!r}.")
        try:
            return make(value)
        except TypeError as exc:
            raise ProtocolError(f"Hypergen value {{'_': ['{kind}', {value!r}]}} cannot be a {kind}: {exc}.") from None
    return decode


def _range(value: Any) -> range:
    if not (isinstance(value, list) and 1 <= len(value) <= 3 and all(type(v) is int for v in value)):
        raise ProtocolError(f"Hypergen value {{'_': ['range', {value!r}]}} must hold [start, stop, step] integers.")
    try:
        return range(*value)
    except ValueError as exc:
        raise ProtocolError(f"Hypergen value {{'_': ['range', {value!r}]}}: {exc}.") from None


#: Hypergen's custom value types (``hypergen.liveview.DECODINGS``), by the name its client sends.
DECODERS: dict[str, Callable[[Any], Any]] = {
    "float": _number,
    "date": _parsed(parse_date, "date", "2026-12-01"),
    "datetime": _parsed(parse_datetime, "datetime", "2026-12-01T13:45:00"),
    "time": _parsed(parse_time, "time", "13:45"),
    "tuple": _collection(tuple, "tuple"),
    "deque": _collection(deque, "deque"),
    "set": _collection(set, "set"),
    "frozenset": _collection(frozenset, "frozenset"),
    "range": _range,
}


def decode_values(value: Any) -> Any:
    """``value`` with every ``{"_": [kind, v]}`` inside it replaced by the Python value it stands for.

    Decodes like Hypergen's own ``loads()``: inner values first, any object whose ``"_"`` is a two-item list.
    An unknown kind or a value that does not fit it raises :class:`ProtocolError` saying what was wrong.
    """
    if isinstance(value, list):
        return [decode_values(item) for item in value]
    if not isinstance(value, dict):
        return value
    decoded = {key: decode_values(item) for key, item in value.items()}
    tagged = decoded.get("_")
    if not (isinstance(tagged, list) and len(tagged) == 2):
        return decoded
    kind, inner = tagged
    decoder = DECODERS.get(kind) if isinstance(kind, str) else None
    if decoder is None:
        raise ProtocolError(f"Unknown Hypergen value type {kind!r}; known types: {', '.join(DECODERS)}.")
    return decoder(inner)


def to_hypergen(text: str) -> str | None:
    """The frame Hypergen's client applies for the encoded v1 server frame ``text``, or None to send nothing."""
    body = unstamp(text)
    if body.startswith(COMMANDS_PREFIX):  # built by protocol.commands_frame: the commands are the rest
        return body[len(COMMANDS_PREFIX):-1]
    frame = json.loads(body)
    kind = frame.get("type")
    if kind == "commands":
        return encode(frame.get("commands"), "frame")
    if kind == "reply":
        return None
    if kind == "error":
        return encode([["console.error", f"hypergen_ws: {frame.get('message')} ({frame.get('code')})"]], "frame")
    if kind == "message":
        return encode([["console.log", "hypergen_ws message:", frame.get("data")]], "frame")
    return encode([["console.log", f"hypergen_ws {kind} frame:", frame]], "frame")
