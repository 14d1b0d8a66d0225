"""Which web pages may open a websocket: origins compared by scheme, host and port (docs/security.rst).

A browser sends the page's origin (``Origin: https://example.com:8443``) with every websocket handshake, and,
unlike fetch requests, websockets are not bound by the same-origin policy: any page the user visits can open a
socket to the server with the user's cookies. Channels' ``AllowedHostsOriginValidator`` compares host names only,
so a page served by another program on the same host (``http://localhost:1234``) passes. :class:`SameOriginValidator`
compares the whole origin, like Django's CSRF check does for unsafe requests.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.urls.exceptions import Resolver404
from django.utils.http import is_same_domain

from .authstack import (inner_of_auth_stack, instance_of, match_route, no_route, route_path, router_of,
                        with_session_and_user)
from .identity import CROSS_ORIGIN_KEY, presents_token
from .logs import fields

logger = logging.getLogger("hypergen_ws")

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class Origin(NamedTuple):
    """An origin: lower-case scheme and host, and the port (the scheme's default when none is written)."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        default = DEFAULT_PORTS.get(self.scheme)
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}" + ("" if self.port == default else f":{self.port}")


def parse_origin(value: str) -> Origin | None:
    """``scheme://host[:port]`` as an :class:`Origin`, or None when it is not one (``null``, a path, no host)."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query:
        return None
    return Origin(scheme, parts.hostname.lower(), port if port is not None else DEFAULT_PORTS[scheme])


class Pattern(NamedTuple):
    """A trusted origin: ``https://example.com[:port]``, or ``https://*.example.com`` for its subdomains too."""

    scheme: str
    host: str  # a leading "." matches the domain and its subdomains (Django's is_same_domain)
    port: int

    def matches(self, origin: Origin) -> bool:
        return origin.scheme == self.scheme and origin.port == self.port and is_same_domain(origin.host, self.host)


def parse_pattern(value: str) -> Pattern:
    """A trusted-origin entry; ``ValueError`` saying how to write it when it is not one."""
    wildcard = "://*." in value
    origin = parse_origin(value.replace("://*.", "://", 1) if wildcard else value)
    if origin is None:
        raise ValueError(f"{value!r} is not an origin; write 'https://example.com', 'http://localhost:8000' or "
                         "'https://*.example.com' (scheme, host and, when it is not the default one, the port).")
    return Pattern(origin.scheme, ("." + origin.host) if wildcard else origin.host, origin.port)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _allowed_hosts() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]  # what Django allows itself with DEBUG and no ALLOWED_HOSTS
    return hosts


def _secure_by_proxy(scope: Scope) -> bool:
    """Whether Django's ``SECURE_PROXY_SSL_HEADER`` says the browser used TLS to the proxy in front of the server,
    as ``request.is_secure()`` reads it: ``("HTTP_X_FORWARDED_PROTO", "https")`` and that header."""
    setting = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if not setting:
        return False
    name, value = setting
    header = name.removeprefix("HTTP_").lower().replace("_", "-").encode("latin-1")
    given = _header(scope, header)
    return given is not None and given.split(",", 1)[0].strip() == value


def own_origin(scope: Scope) -> Origin | None:
    """The origin of the server as the client addressed it: the Host header (if it is in ``ALLOWED_HOSTS``), and
    ``https`` for a ``wss`` socket, ``http`` for ``ws``."""
    host = _header(scope, b"host")
    if not host:
        return None
    domain, port = split_domain_port(host)
    if not domain or not validate_host(domain, _allowed_hosts()):
        return None
    scheme = "https" if scope.get("scheme") in ("wss", "https") or _secure_by_proxy(scope) else "http"
    try:
        number = int(port) if port else DEFAULT_PORTS[scheme]
    except ValueError:
        return None
    return Origin(scheme, domain.strip("[]").lower(), number)


class SameOriginValidator:
    """ASGI middleware that lets a websocket through only when its ``Origin`` is the server's own origin or a
    trusted one; every other handshake is refused (HTTP 403) with one log line.

    The server's own origin is scheme, host and port of the socket's URL (the ``Host`` header, which must be in
    ``ALLOWED_HOSTS``; ``https`` for ``wss``). ``trusted_origins`` adds others, written like Django's
    ``CSRF_TRUSTED_ORIGINS`` (which is the default): ``["https://app.example.com", "https://*.example.com",
    "http://localhost:3000"]``; ``"*"`` trusts every origin.

    A cookie never opens a socket from another origin. A handshake that presents a connection token
    (``Authorization: Bearer``, or the subprotocol form; ``core.identity``) is let through without an ``Origin``
    header (no browser sends one: a script, an app, a service), and from another site's page, marked so that
    its consumer decides (``@consumer(cross_origin=...)``); the consumer then authenticates the token or closes
    the socket with 4401, and the browser's cookies are not used. Any other handshake without an ``Origin``
    header is refused unless ``allow_missing=True`` (which lets cookie sockets in without an origin check:
    ``check --deploy`` warns about it). Wrap the websocket application with it::

        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
    """

    def __init__(self, application: App, trusted_origins: Iterable[str] | None = None, *,
                 allow_missing: bool = False) -> None:
        self.application = application
        entries = list(settings.CSRF_TRUSTED_ORIGINS if trusted_origins is None else trusted_origins)
        if isinstance(trusted_origins, str):
            raise TypeError("trusted_origins must be a list of origins, e.g. ['https://example.com'], not a str.")
        self.any_origin = "*" in entries
        self.trusted = [parse_pattern(entry) for entry in entries if entry != "*"]
        self.allow_missing = allow_missing
        #: The application inside ``application`` when that is exactly channels' ``AuthMiddlewareStack``: an
        #: accepted websocket then gets its cookies, session and user here, in one step (:mod:`.authstack`).
        self.past_auth_stack = inner_of_auth_stack(application)
        #: That application when it is exactly channels' ``URLRouter``: the websocket is routed here too, in the
        #: same copy of the scope.
        self.router = router_of(self.past_auth_stack)

    def allows(self, scope: Scope) -> tuple[bool, str]:
        """Whether the handshake in ``scope`` may go on, and why not."""
        allowed, reason, _ = self.judge(scope)
        return allowed, reason

    def judge(self, scope: Scope) -> tuple[bool, str, str | None]:
        """Whether the handshake in ``scope`` may go on, why not, and the foreign origin of a token socket that
        goes on for its token (its consumer decides whether it may stay)."""
        header = _header(scope, b"origin")
        if header is None:
            if self.allow_missing or self.any_origin or presents_token(scope):
                return True, "", None
            return False, ("no Origin header (a client without a browser sends a connection token: "
                           "'Authorization: Bearer <token>')"), None
        if self.any_origin:
            return True, "", None
        origin = parse_origin(header)
        if origin is None:
            return False, "the Origin header is not an http(s) origin", None
        own = own_origin(scope)
        if own is not None and origin == own:
            return True, "", None
        if any(pattern.matches(origin) for pattern in self.trusted):
            return True, "", None
        if presents_token(scope):
            return True, "", str(origin)
        if own is None:
            host = _header(scope, b"host")
            if not host:
                return False, "the handshake has no Host header", None
            return False, (f"its Host header {host!r} is not in ALLOWED_HOSTS, so the server's own origin is unknown "
                           f"(add {split_domain_port(host)[0]!r} to ALLOWED_HOSTS)"), None
        if origin.host == own.host and origin.scheme != own.scheme:
            return False, (f"the page is {origin.scheme}: but the socket reached the server as "
                           f"{'wss' if own.scheme == 'https' else 'ws'}: ({own}); behind a proxy that terminates TLS, "
                           "start the server with --proxy-headers (daphne, uvicorn) so that it sees the scheme the "
                           "browser used, or set SECURE_PROXY_SSL_HEADER = ('HTTP_X_FORWARDED_PROTO', 'https') for "
                           "a proxy that sends X-Forwarded-Proto"), None
        return False, (f"it is not the server's own origin {own} nor a trusted one (trust it with "
                       f"SameOriginValidator(app, trusted_origins=[{str(origin)!r}]), or add it to "
                       "CSRF_TRUSTED_ORIGINS)"), None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "websocket":
            await self.application(scope, receive, send)
            return
        allowed, reason, foreign = self.judge(scope)
        if allowed:
            extra = {CROSS_ORIGIN_KEY: foreign} if foreign else None
            inner = self.past_auth_stack
            if inner is not None:
                filled = await with_session_and_user(scope, extra)
                if filled is not None:
                    router = self.router
                    if router is None:
                        await inner(filled, receive, send)
                        return
                    nested = "path_remaining" in filled
                    path, outer = route_path(filled)
                    found = match_route(router, filled, path, outer)
                    while found is not None:
                        try:
                            await instance_of(found[1])(filled, receive, send)
                            return
                        except Resolver404:
                            found = match_route(router, filled, path, outer, found[0] + 1)
                    raise no_route(path, nested)
            await self.application({**scope, **extra} if extra else scope, receive, send)
            return
        logger.warning("Refused a websocket to %s from origin %r: %s", scope.get("path", ""),
                       _header(scope, b"origin"), reason, extra=fields("origin_refused", code=403))
        await refuse_handshake(receive, send)


async def refuse_handshake(receive: Receive, send: Send) -> None:
    """Refuse a websocket handshake: the server answers it with HTTP 403."""
    message = await receive()
    if message.get("type") == "websocket.connect":
        await send({"type": "websocket.close", "code": 1000})
