"""Hypergen's own client: ``@consumer(..., protocol="hypergen")`` (docs/hypergen.rst).

A page built with django-hypergen opens the socket with ``command("hypergen.websocket.open", url)`` and calls the
consumer with ``callback(url, *args)``; its client (``hypergen.js``) sends ``{"args": [...], "meta": {...}}`` and
runs every frame it receives as a bare list of commands. In this mode the consumer speaks that, with no change to
the page:

* a call's arguments have Hypergen's custom values decoded (``{"_": ["date", "2026-12-01"]}`` arrives as a
  ``datetime.date``), then the call runs like any other (permission, binding, ``command()``, ``send_to``);
* every frame the socket gets, from its own calls and from its groups (``consumer_command``, hooks), goes out as
  Hypergen's client applies it: commands as a list of commands with their names unchanged, errors as
  ``["console.error", ...]``, ``group_send`` data as ``["console.log", ...]`` (:mod:`hypergen_ws.core.hypergen_frames`).

A group frame is translated once per process and frame, however many Hypergen sockets get it. History, presence
and raw frames speak to hypergen_ws's own client and cannot be combined with this mode.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from ..core import conf, protocol
from ..core.hypergen_frames import decode_values, to_hypergen
from ..delivery.outbox import Send
from .base import Connection, Feature, Options

HYPERGEN_WS = "hypergen_ws"
HYPERGEN = "hypergen"
PROTOCOLS = (HYPERGEN_WS, HYPERGEN)


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
    """:func:`~hypergen_ws.core.hypergen_frames.to_hypergen`, once per frame however many sockets send it."""
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
