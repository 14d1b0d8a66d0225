"""Hypergen's own client: ``@consumer(..., protocol="hypergen")`` (docs/hypergen.rst).

A page built with django-hypergen opens the socket with ``command("hypergen.websocket.open", url)`` and calls the
consumer with ``callback(url, *args)``; its client (``hypergen.js``) sends ``{"args": [...], "meta": {...}}`` and
runs every frame it receives as a bare list of commands. In this mode the consumer speaks that, with no change to
the page:

* a call's arguments have Hypergen's custom values decoded (``{"_": ["date", "2026-12-01"]}`` arrives as a
  ``datetime.date``), then the call runs like any other (permission, binding, ``command()``, ``send_to``);
* every frame the socket gets, from its own calls and from its groups (``consumer_command``, hooks), goes out as
  Hypergen's client applies it: commands as a list of commands with their names unchanged, errors as
  ``["console.error", ...]``, ``group_send`` data as ``["console.log", ...]`` (:func:`to_hypergen`).

A group frame is translated once per process and frame, however many Hypergen sockets get it. History, presence
and raw frames speak to hypergen_ws's own client and cannot be combined with this mode.

The frames of Hypergen's client (django-hypergen's ``hypergen.js``):

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
from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.dateparse import parse_date, parse_datetime, parse_time

from ..core import conf, protocol
from ..core.protocol import ProtocolError, encode, unstamp
from ..delivery.outbox import Send
from .base import Connection, Feature, Option, Options

HYPERGEN_WS = "hypergen_ws"
HYPERGEN = "hypergen"
PROTOCOLS = (HYPERGEN_WS, HYPERGEN)


#: The ``@consumer`` options this feature reads, with their defaults (``hypergen_ws.features``).
OPTIONS: dict[str, Option] = {
    "protocol": Option(HYPERGEN_WS, "``protocol`` is ``\"hypergen_ws\"`` (this package's client, the default) or "
                                    "``\"hypergen\"``: the frames of django-hypergen's own client, for liveviews "
                                    "that call the consumer with ``callback(url, ...)`` (docs/hypergen.rst)."),
}
#: What ``@consumer`` exposes about this feature while it is off (``declares()`` says it while on).
EXPOSES: dict[str, Any] = {"protocol": HYPERGEN_WS, "pings": True}


def configure(options: Options) -> HypergenFeature | None:
    """``protocol=`` of ``@consumer``: ``"hypergen"`` switches it on."""
    protocol_name = options.protocol
    if not isinstance(protocol_name, str) or protocol_name not in PROTOCOLS:
        raise ImproperlyConfigured(
            f"{options.where}: protocol={protocol_name!r}; use {HYPERGEN_WS!r} (hypergen_ws's client, the default) "
            f"or {HYPERGEN!r} (django-hypergen's client).")
    if protocol_name == HYPERGEN_WS:
        return None
    clashes = [name for name, on in (("history", bool(options.history)), ("presence", bool(options.presence)),
                                     ("frames", options.frames != "protocol")) if on]
    if clashes:
        raise ImproperlyConfigured(
            f"{options.where}: protocol='hypergen' cannot be combined with {', '.join(f'{n}=' for n in clashes)}: "
            "Hypergen's client runs commands only and cannot recover, track presence or send raw frames. Drop "
            f"{' and '.join(f'{n}=' for n in clashes)}, or use hypergen_ws's own client (protocol='hypergen_ws').")
    return HypergenFeature()


class HypergenFeature(Feature):
    """Decodes Hypergen's calls and translates every outgoing frame into a list of commands."""

    name = "hypergen"

    def declares(self) -> dict[str, Any]:
        return {"protocol": HYPERGEN, "pings": False}  # Hypergen's client knows no ping

    async def connected(self, conn: Connection) -> None:
        conn.outbox.wrap_send(translating)

    async def receive(self, conn: Connection, message: Mapping[str, Any]) -> bool:
        text = message.get("text")
        if text is None:
            conn.protocol_error(protocol.ProtocolError(
                "Hypergen's client sends JSON text frames ({\"args\": [...], \"meta\": {...}}), not binary data."))
            return True
        try:
            call = protocol.parse_call(text, max_size=conf.get("MAX_MESSAGE_SIZE"), max_depth=conf.get("MAX_DEPTH"))
            call = protocol.Call(args=decode_values(call.args), meta=call.meta, id=call.id)
        except protocol.ProtocolError as exc:
            conn.protocol_error(exc)
            return True
        await conn.handle_call(call)
        return True


#: The last frame translated in this process and its translation, swapped as one tuple: a group frame reaches
#: every local socket as the same ``str`` object, so it is translated once.
_last: list[tuple[str | None, str | None]] = [(None, None)]


def translate(text: str) -> str | None:
    """:func:`to_hypergen`, once per frame however many sockets send it."""
    last_text, last = _last[0]
    if last_text is text:
        return last
    translated = to_hypergen(text)
    _last[0] = (text, translated)
    return translated


def translating(send: Send) -> Send:
    """An ASGI send that hands ``send`` Hypergen frames instead of protocol v1 frames."""
    async def send_hypergen(message: dict[str, Any]) -> None:
        text = message.get("text") if message.get("type") == "websocket.send" else None
        if text is None:
            await send(message)
            return
        translated = translate(text)
        if translated is not None:
            await send({"type": "websocket.send", "text": translated})

    return send_hypergen


# ---- the frames of Hypergen's client ------------------------------------------------------------------------
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
    try:
        return float(value)
    except OverflowError:  # an integer of more than 308 digits
        raise ProtocolError(f"Hypergen value {{'_': ['float', ...]}} holds a number of {len(str(abs(value)))} digits, "
                            "too large for a float; send a smaller number, or a string.") from None


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
    try:
        return decoder(inner)
    except ProtocolError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:  # whatever else a client's value makes a decoder raise
        raise ProtocolError(f"Hypergen value {{'_': [{kind!r}, ...]}} cannot be decoded: {exc}.") from None


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
