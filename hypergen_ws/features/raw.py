"""Raw frames: ``@consumer(..., frames="json" | "text" | "bytes")``.

By default (``frames="protocol"``) a browser frame is a protocol v1 call, ``{"args": [...], "id": 7}``. In a raw
mode every frame is handed to the function as one argument, ``func(consumer, request, payload, **url_kwargs)``:

* ``"json"``: a text frame holding any JSON value, decoded (``dict``, ``list``, ``str``, number, bool, ``None``);
* ``"text"``: a text frame, as ``str``;
* ``"bytes"``: a binary frame, as ``bytes``.

Permissions (checked on every frame), groups, ``MAX_MESSAGE_SIZE`` (characters of a text frame, bytes of a
binary one; over it the socket is closed with 1009), ``MAX_DEPTH`` (``"json"``), ``command()``, return values and
``send_to`` work as for protocol consumers. What the server sends is unchanged: protocol v1 JSON text frames.
A frame of the wrong kind (binary to a text or JSON consumer, text to a bytes consumer, invalid JSON to a JSON
consumer) gets a ``bad_request`` error frame, and the connection goes on; raw frames carry no call id, so
error frames have no ``"id"`` and no ``reply`` frame is sent.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from ..core import conf, protocol
from ..core.binding import Binder
from .base import Connection, Feature, Option, Options

PROTOCOL = "protocol"
FRAMES = (PROTOCOL, "json", "text", "bytes")


#: The ``@consumer`` options this feature reads, with their defaults (``hypergen_ws.features``).
OPTIONS: dict[str, Option] = {
    "frames": Option(PROTOCOL, "``frames`` is ``\"protocol\"`` (protocol v1 calls, the default) or a raw mode, "
                               "``\"json\"``, ``\"text\"`` or ``\"bytes\"``: every frame is passed as one argument, "
                               "``func(consumer, request, payload, **url_kwargs)`` (see :mod:`hypergen_ws.features.raw`)."),
}
#: What ``@consumer`` exposes about this feature while it is off (``declares()`` says it while on).
EXPOSES: dict[str, Any] = {"frames": PROTOCOL, "pings": True}


def configure(options: Options) -> RawFeature | None:
    """``frames=`` of ``@consumer``: a raw mode switches it on."""
    frames = check(options.frames, receive=options.receive, binder=options.binder, where=options.where)
    return None if frames == PROTOCOL else RawFeature(frames)


class RawFeature(Feature):
    """Hands every frame to the function as one payload argument."""

    name = "raw"

    def declares(self) -> dict[str, Any]:
        return {"frames": self.frames, "pings": False}  # a raw client cannot tell a ping from a payload

    def __init__(self, frames: str) -> None:
        self.frames = frames

    async def receive(self, conn: Connection, message: Mapping[str, Any]) -> bool:
        try:
            payload = decode(self.frames, message)
        except protocol.ProtocolError as exc:
            conn.protocol_error(exc)
            return True
        await conn.handle_call(protocol.Call(args=[payload]))
        return True


def check(frames: Any, *, receive: bool, binder: Binder, where: str) -> str:
    """Validate ``frames=`` and, in a raw mode, that the function takes exactly one payload argument."""
    if not isinstance(frames, str) or frames not in FRAMES:
        raise ImproperlyConfigured(f"{where}: frames={frames!r}; use one of {', '.join(map(repr, FRAMES))}.")
    if frames == PROTOCOL:
        return frames
    if not receive:
        raise ImproperlyConfigured(
            f"{where}: frames={frames!r} with receive=False; a consumer that takes no frames needs no frame mode. "
            "Drop one of the two.")
    params = binder.browser_params
    required = sum(1 for p in params if p.default is p.empty)
    if required > 1 or not (params or binder.has_varargs):
        kwargs = "".join(f", {k}" for k in sorted(binder.url_kwargs))
        raise ImproperlyConfigured(
            f"{where}: with frames={frames!r} the function takes one argument after (consumer, request), the "
            f"frame's payload. Write def {binder.func_name}(consumer, request, payload"
            f"{', *' + kwargs if kwargs else ''}): ...")
    return frames


def decode(frames: str, message: Mapping[str, Any]) -> Any:
    """The payload of an ASGI ``websocket.receive`` message, or ``ProtocolError`` saying what was wrong."""
    text = message.get("text")
    data = message.get("bytes")
    max_size = conf.get("MAX_MESSAGE_SIZE")
    if frames == "bytes":
        if data is None:
            raise protocol.ProtocolError("This consumer takes binary frames; send bytes (an ArrayBuffer or a Blob), "
                                         "not text.")
        if len(data) > max_size:
            raise _too_big(len(data), "bytes", max_size)
        return bytes(data)
    if text is None:
        raise protocol.ProtocolError(f"This consumer takes text frames ({frames}); send a string, not binary data.")
    if len(text) > max_size:
        raise _too_big(len(text), "characters", max_size)
    if frames == "text":
        return text
    max_depth = conf.get("MAX_DEPTH")
    try:
        value = protocol.loads(text)
    except RecursionError:
        raise protocol.ProtocolError(f"Frame nests deeper than {max_depth} levels; flatten it.") from None
    except ValueError as exc:
        raise protocol.ProtocolError(f"Frame is not valid JSON ({exc}); this consumer takes JSON text frames, "
                                     "e.g. JSON.stringify(value).") from None
    if protocol.depth_exceeds(value, max_depth):
        raise protocol.ProtocolError(f"Frame nests deeper than {max_depth} levels; flatten it.")
    return value


def _too_big(size: int, unit: str, limit: int) -> protocol.ProtocolError:
    return protocol.ProtocolError(
        f"Frame of {size} {unit} is over the limit of {limit}; send less per frame or raise "
        "HYPERGEN_WS['MAX_MESSAGE_SIZE'].", close_code=protocol.CLOSE_TOO_BIG)
