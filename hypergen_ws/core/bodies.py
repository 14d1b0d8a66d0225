"""Request bodies that are refused before they are read (docs/security.rst).

Django's ASGI handler reads a whole request body (into a temporary file) before a view can look at
``Content-Length``, and daphne even hands the whole body to the application at once, in memory. A view marked with
:func:`max_body_size` declares how large its body may be; :class:`BodyLimit` (ASGI middleware, for any server) and
``hypergen_ws.backends.daphne`` (installed automatically under daphne) refuse a larger body with 413 before reading
it, so that what a server holds for one such request stays within a small multiple of the limit.
"""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from django.urls import Resolver404, resolve

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
Limit = Callable[[], int]

#: The attribute a view marked with ``max_body_size`` carries: a callable returning its limit in bytes.
MARK = "hypergen_ws_max_body_size"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def max_body_size(limit: Limit) -> Callable[[Any], Any]:
    """Mark a view: its request body may have at most ``limit()`` bytes (read when a request arrives)."""
    def mark(view: Any) -> Any:
        setattr(view, MARK, limit)
        return view

    return mark


def limit_for(method: str, path: str) -> int | None:
    """The body limit of the view ``path`` resolves to, for a method that carries a body; None when unlimited."""
    if method.upper() not in BODY_METHODS:
        return None
    try:
        match = resolve(path)
    except (Resolver404, ValueError):
        return None
    limit = getattr(match.func, MARK, None)
    return int(limit()) if callable(limit) else None


def too_large_body(limit: int) -> bytes:
    """The JSON body of a 413 answer."""
    return json.dumps({"error": f"The body is over the limit of {limit} bytes; publish less per request or raise "
                                "HYPERGEN_WS['PUBLISH_MAX_BODY_SIZE']."}).encode()


def declared_length(scope: Scope) -> int | None:
    """``Content-Length`` of an HTTP scope, or None when there is none (or it is not a number)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """ASGI middleware: refuse with 413, before reading it, a body larger than its view allows.

    A declared ``Content-Length`` over the limit is answered at once, without reading a byte of the body; a body
    without one is read up to the limit and answered with 413 as soon as it goes over. An accepted body is passed on
    unchanged. Every other request passes through untouched. Wrap the HTTP application::

        "http": BodyLimit(get_asgi_application())
    """

    def __init__(self, application: App) -> None:
        self.application = application

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = limit_for(scope.get("method", ""), scope.get("path", "")) if scope.get("type") == "http" else None
        if limit is None:
            await self.application(scope, receive, send)
            return
        length = declared_length(scope)
        if length is not None and length > limit:
            await refuse(send, limit)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            if message.get("type") != "http.request":  # the client went away
                return
            size += len(message.get("body", b""))
            if size > limit:
                await refuse(send, limit)
                return
            messages.append(message)
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.application(scope, replay, send)


async def refuse(send: Send, limit: int) -> None:
    """Answer 413 with a JSON error; the connection is closed, so the unread body is never read."""
    body = too_large_body(limit)
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})
