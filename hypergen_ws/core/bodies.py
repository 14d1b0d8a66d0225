"""Request bodies that are refused before they are read (docs/security.rst, "Request bodies").

Django's ASGI handler reads a whole request body (into a temporary file) before a view can look at
``Content-Length``, and daphne even reads all of it and hands it to the application at once, in memory, before the
application runs. :class:`BodyLimit`, the outer ASGI wrapper of a project's HTTP application, refuses with 413 a
body over its limit before reading it, so that what a server holds for one request stays within a small multiple
of the limit:

* a view marked with :func:`max_body_size` (the HTTP publish endpoint: ``PUBLISH_MAX_BODY_SIZE``) has its own
  limit;
* every other request has ``HYPERGEN_WS["MAX_BODY_SIZE"]``, by default Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``
  (2.5 MiB), the most Django lets a view read from ``request.body`` or ``request.POST`` anyway.

Under daphne, ``hypergen_ws.backends.daphne`` enforces the same limits inside daphne while the body arrives
(installed automatically): the marked views' always, the default once a ``BodyLimit`` was made in the process.
"""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from django.conf import settings
from django.urls import Resolver404, resolve

from . import conf

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
Limit = Callable[[], int]

#: The attribute a view marked with ``max_body_size`` carries: ``(a callable returning its limit, the setting)``.
MARK = "hypergen_ws_max_body_size"
DEFAULT_SETTING = "HYPERGEN_WS['MAX_BODY_SIZE'] (default: DATA_UPLOAD_MAX_MEMORY_SIZE)"
_wraps_all: list[bool] = []


class Rule(NamedTuple):
    """The limit of one request's body, in bytes, and the setting that raises it (named in the 413 answer)."""

    limit: int
    setting: str


def max_body_size(limit: int | Limit, setting: str = "the max_body_size() of its view") -> Callable[[Any], Any]:
    """Mark a view: its request body may have at most ``limit`` bytes (an int, or a callable read when a request
    arrives), instead of ``MAX_BODY_SIZE``. A view that takes file uploads larger than that says so with it::

        @max_body_size(50 * 2**20)
        def upload(request): ...
    """
    if isinstance(limit, bool) or not (callable(limit) or (isinstance(limit, int) and limit >= 0)):
        raise TypeError(f"max_body_size({limit!r}): pass a number of bytes (an int >= 0) or a callable returning one.")
    read: Limit = limit if callable(limit) else (lambda: limit)

    def mark(view: Any) -> Any:
        setattr(view, MARK, (read, setting))
        return view

    return mark


def default_limit() -> int | None:
    """``MAX_BODY_SIZE``, or ``DATA_UPLOAD_MAX_MEMORY_SIZE`` when it is None; None for no limit."""
    value = conf.get("MAX_BODY_SIZE")
    if value is None:
        value = getattr(settings, "DATA_UPLOAD_MAX_MEMORY_SIZE", None)
    return int(value) if value is not None else None


def rule_for(path: str, *, default: bool = True) -> Rule | None:
    """The limit of a body sent to ``path``: its view's, else (with ``default``) ``MAX_BODY_SIZE``; None for none."""
    try:
        mark = getattr(resolve(path).func, MARK, None)
    except (Resolver404, ValueError):
        mark = None
    if mark is not None:
        read, setting = mark
        return Rule(int(read()), setting)
    if not default:
        return None
    limit = default_limit()
    return None if limit is None else Rule(limit, DEFAULT_SETTING)


def daphne_rule_for(method: str, path: str) -> Rule | None:
    """What daphne's hook enforces: the marked views' limits, and ``MAX_BODY_SIZE`` once a ``BodyLimit`` exists."""
    return rule_for(path, default=bool(_wraps_all))


def too_large_body(rule: tuple[int, str]) -> bytes:
    """The JSON body of a 413 answer."""
    limit, setting = rule
    return json.dumps({"error": f"The body is over the limit of {limit} bytes for this URL; send less per request, "
                                f"or raise {setting}."}).encode()


def declared_length(scope: Scope) -> int | None:
    """``Content-Length`` of an HTTP scope, or None when there is none (or it is not a number)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _may_have_body(scope: Scope, length: int | None) -> bool:
    if length is not None:
        return length > 0
    if scope.get("http_version") in ("1.0", "1.1"):  # HTTP/1: a body without Content-Length is chunked
        return any(name == b"transfer-encoding" for name, _ in scope.get("headers", ()))
    return True  # HTTP/2 and 3 need not declare a length


class BodyLimit:
    """ASGI middleware, the outer wrapper of the HTTP application: refuse with 413, before reading it, a body
    larger than its view allows (:func:`max_body_size`), or than ``MAX_BODY_SIZE`` for every other view.

    A declared ``Content-Length`` over the limit is answered at once, without reading a byte of the body; a body
    without one is read up to the limit and answered with 413 as soon as it goes over. An accepted body is passed on
    unchanged, and so is every request without a body. Wrap the whole HTTP application::

        "http": BodyLimit(get_asgi_application())
    """

    def __init__(self, application: App) -> None:
        self.application = application
        if not _wraps_all:
            _wraps_all.append(True)  # daphne's hook enforces MAX_BODY_SIZE from now on, while bodies arrive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = declared_length(scope) if scope.get("type") == "http" else 0
        rule = rule_for(scope.get("path", "")) if _may_have_body(scope, length) else None
        if rule is None:
            await self.application(scope, receive, send)
            return
        if length is not None and length > rule.limit:
            await refuse(send, rule)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            if message.get("type") != "http.request":  # the client went away
                return
            size += len(message.get("body", b""))
            if size > rule.limit:
                await refuse(send, rule)
                return
            messages.append(message)
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.application(scope, replay, send)


async def refuse(send: Send, rule: Rule) -> None:
    """Answer 413 with a JSON error; the connection is closed, so the unread body is never read."""
    body = too_large_body(rule)
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})
