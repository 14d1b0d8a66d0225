"""daphne: request bodies refused while they arrive.

``install_body_limit`` makes daphne's HTTP requests answer 413 as soon as their ``Content-Length`` (or the bytes
received) goes over the limit for their path (``hypergen_ws.core.bodies``: the view's, or ``MAX_BODY_SIZE``),
before Twisted reads the body and daphne queues all of it for the application in memory.
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from ..core.logs import fields
from .layers import warn_fallback

logger = logging.getLogger("hypergen_ws")

# ---- request bodies refused before Twisted reads them -----------------------------------------------------------
# daphne reads a whole request body (Twisted spools it to a file), then puts all of it into the application's queue
# at once, in memory, before the application can look at Content-Length. The limits of
# ``hypergen_ws.core.bodies`` (a marked view's, ``MAX_BODY_SIZE``) are enforced here, in Twisted, while the body
# arrives.

#: ``(method, path) -> (limit in bytes, the setting that raises it)``, or None for no limit.
BodyLimitFor = Callable[[str, str], tuple[int, str] | None]
_REFUSED = "_hypergen_ws_refused"
_LIMIT = "_hypergen_ws_limit"
_READ = "_hypergen_ws_read"


class _Discard:
    """Where the body of a refused request goes: nowhere."""

    def write(self, data: bytes) -> None:
        pass

    def seek(self, *args: Any) -> int:
        return 0

    def read(self, *args: Any) -> bytes:
        return b""

    def close(self) -> None:
        pass

    closed = False


def _request_line(request: Any) -> tuple[str, str] | None:
    # Twisted knows the request line before the body only on its channel (private attributes; the request gets
    # them when the whole body has arrived).
    channel = getattr(request, "channel", None)
    command, path = getattr(channel, "_command", None), getattr(channel, "_path", None)
    if not isinstance(command, bytes) or not isinstance(path, bytes):
        warn_fallback("refusing large request bodies before reading them", "twisted",
                      "its HTTP channel has no _command/_path while the body arrives")
        return None
    return command.decode("latin-1"), unquote(path.split(b"?", 1)[0].decode("latin-1"))


def _refuse(request: Any, limit: int, body: bytes) -> None:
    setattr(request, _REFUSED, True)
    request.content = _Discard()
    request.requestHeaders.removeHeader(b"Expect")  # no "100 Continue" after the answer
    transport = request.channel.transport
    head = (f"HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
            "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n").encode()
    transport.write(head + body)
    transport.loseConnection()  # stops reading: the rest of the body is never received
    logger.warning("Refused a request body over the limit of %s bytes before reading it", limit,
                   extra=fields("body_refused", code=413))


def install_body_limit(limit_for: BodyLimitFor, refusal: Callable[[tuple[int, str]], bytes]) -> bool:
    """Under daphne, answer 413 (with the body ``refusal(rule)``) to a request whose body is larger than the rule
    ``limit_for(method, path)`` gives, as soon as its ``Content-Length`` (or, without one, the bytes received) says
    so; a request without a body is not looked at. Idempotent; ``False`` when daphne's HTTP protocol is not loaded
    in this process (another server)."""
    module = sys.modules.get("daphne.http_protocol")
    request_class = getattr(module, "WebRequest", None)
    if request_class is None:
        return False
    if getattr(request_class, "_hypergen_ws_body_limit", False):
        return True
    if not all(callable(getattr(request_class, name, None)) for name in ("gotLength", "handleContentChunk",
                                                                          "process")):
        warn_fallback("refusing large request bodies before reading them", "daphne",
                      "its WebRequest has no gotLength/handleContentChunk/process")
        return False
    got_length, handle_chunk, process = (request_class.gotLength, request_class.handleContentChunk,
                                         request_class.process)

    def gotLength(self: Any, length: int | None) -> None:  # noqa: N802 - Twisted's interface
        got_length(self, length)
        if length == 0:  # no body (None: chunked)
            return
        line = _request_line(self)
        rule = limit_for(*line) if line is not None else None
        if rule is None:
            return
        if length is not None and length > rule[0]:
            _refuse(self, rule[0], refusal(rule))
        else:
            setattr(self, _LIMIT, rule)
            setattr(self, _READ, 0)

    def handleContentChunk(self: Any, data: bytes) -> None:  # noqa: N802
        if getattr(self, _REFUSED, False):
            return
        rule = getattr(self, _LIMIT, None)
        if rule is not None:
            read = getattr(self, _READ, 0) + len(data)
            setattr(self, _READ, read)
            if read > rule[0]:
                _refuse(self, rule[0], refusal(rule))
                return
        handle_chunk(self, data)

    def process_unless_refused(self: Any) -> Any:
        if getattr(self, _REFUSED, False):
            return None
        return process(self)

    request_class.gotLength = gotLength
    request_class.handleContentChunk = handleContentChunk
    request_class.process = process_unless_refused
    request_class._hypergen_ws_body_limit = True
    return True
