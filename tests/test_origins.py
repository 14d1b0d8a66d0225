"""SameOriginValidator (hypergen_ws.core.origins): scheme, host and port of the Origin header must match."""
from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator  # the validator wraps a bare ASGI app, not a @consumer

from hypergen_ws.core.origins import SameOriginValidator, parse_origin, parse_pattern


async def accept_all(scope, receive, send):
    await receive()
    await send({"type": "websocket.accept"})
    await receive()


def headers(origin, host="localhost:8000"):
    out = [(b"host", host.encode())]
    if origin is not None:
        out.append((b"origin", origin.encode()))
    return out


async def connects(app, origin, host="localhost:8000", scheme="ws"):
    communicator = WebsocketCommunicator(app, "/ws/x/", headers=headers(origin, host))
    communicator.scope["scheme"] = scheme
    connected, _ = await communicator.connect()
    if connected:
        await communicator.disconnect()
    return connected


@pytest.fixture(autouse=True)
def _hosts(settings):
    settings.ALLOWED_HOSTS = ["localhost", "app.example.com"]
    settings.CSRF_TRUSTED_ORIGINS = []


@pytest.mark.parametrize("origin, host, scheme, allowed", [
    ("http://localhost:8000", "localhost:8000", "ws", True),
    ("HTTP://LOCALHOST:8000", "localhost:8000", "ws", True),
    ("http://localhost:1234", "localhost:8000", "ws", False),       # another app on the same host
    ("https://localhost:8000", "localhost:8000", "ws", False),      # another scheme
    ("http://localhost", "localhost:8000", "ws", False),
    ("https://app.example.com", "app.example.com", "wss", True),    # default ports on both sides
    ("https://app.example.com:443", "app.example.com", "wss", True),
    ("http://app.example.com", "app.example.com", "wss", False),
    ("http://evil.example:8000", "evil.example:8000", "ws", False),  # DNS rebinding: Host not in ALLOWED_HOSTS
    ("null", "localhost:8000", "ws", False),
    ("http://localhost:8000/path", "localhost:8000", "ws", False),
    (None, "localhost:8000", "ws", False),
])
async def test_only_the_servers_own_origin_by_default(origin, host, scheme, allowed):
    assert await connects(SameOriginValidator(accept_all), origin, host, scheme) is allowed


async def test_trusted_origins_add_exact_origins_and_subdomains(settings):
    app = SameOriginValidator(accept_all, ["http://localhost:3000", "https://*.example.com"])
    assert await connects(app, "http://localhost:3000")
    assert not await connects(app, "http://localhost:3001")
    assert await connects(app, "https://cdn.example.com")
    assert await connects(app, "https://example.com")
    assert not await connects(app, "http://cdn.example.com")
    settings.CSRF_TRUSTED_ORIGINS = ["https://admin.example.org"]
    assert await connects(SameOriginValidator(accept_all), "https://admin.example.org")
    assert await connects(SameOriginValidator(accept_all, ["*"]), "http://anything.test:1")
    assert await connects(SameOriginValidator(accept_all, allow_missing=True), None)


async def test_a_refusal_is_logged_in_one_line(caplog):
    with caplog.at_level("WARNING", logger="hypergen_ws"):
        assert not await connects(SameOriginValidator(accept_all), "http://localhost:1234")
    (record,) = [r for r in caplog.records if r.name == "hypergen_ws"]
    assert "'http://localhost:1234'" in record.getMessage() and "http://localhost:8000" in record.getMessage()


@pytest.mark.parametrize("origin, host, scheme, reason", [
    ("http://localhost:1234", "localhost:8000", "ws",
     "it is not the server's own origin http://localhost:8000 nor a trusted one (trust it with "
     "SameOriginValidator(app, trusted_origins=['http://localhost:1234']), or add it to CSRF_TRUSTED_ORIGINS)"),
    ("https://app.example.com", "app.example.com", "ws",  # TLS ended at a proxy the server does not know of
     "the page is https: but the socket reached the server as ws: (http://app.example.com); behind a proxy that "
     "terminates TLS, start the server with --proxy-headers (daphne, uvicorn) so that it sees the scheme the browser "
     "used, or set SECURE_PROXY_SSL_HEADER = ('HTTP_X_FORWARDED_PROTO', 'https') for a proxy that sends "
     "X-Forwarded-Proto"),
    ("http://evil.example:8000", "evil.example:8000", "ws",
     "its Host header 'evil.example:8000' is not in ALLOWED_HOSTS, so the server's own origin is unknown (add "
     "'evil.example' to ALLOWED_HOSTS)"),
])
def test_each_cause_of_a_refusal_gets_its_own_hint(origin, host, scheme, reason):
    scope = {"type": "websocket", "scheme": scheme, "headers": headers(origin, host)}
    assert SameOriginValidator(accept_all).allows(scope) == (False, reason)


async def test_secure_proxy_ssl_header_tells_the_scheme_the_browser_used(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    app = SameOriginValidator(accept_all)
    proxied = [*headers("https://app.example.com", "app.example.com"), (b"x-forwarded-proto", b"https")]
    assert app.allows({"type": "websocket", "scheme": "ws", "headers": proxied}) == (True, "")
    assert not app.allows({"type": "websocket", "scheme": "ws",
                           "headers": headers("https://app.example.com", "app.example.com")})[0]


def test_bad_trusted_origins_say_how_to_write_them():
    with pytest.raises(ValueError, match="write 'https://example.com'"):
        parse_pattern("example.com")
    with pytest.raises(TypeError, match="a list of origins"):
        SameOriginValidator(accept_all, "https://example.com")
    assert parse_origin("https://[::1]:8443") == ("https", "::1", 8443)
    assert str(parse_origin("https://Example.com:443")) == "https://example.com"


async def test_http_passes_through():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    await SameOriginValidator(app)({"type": "http", "headers": []}, None, None)
    assert seen == ["http"]
