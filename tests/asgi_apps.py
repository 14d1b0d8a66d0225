"""ASGI applications with the usual mistakes, for the checks of hypergen_ws.setup_checks (tests/test_setup_checks.py).

Each is what a project's ``asgi.py`` might define as ``application``; a test points ``ASGI_APPLICATION`` at one.
"""
from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.middleware import BaseMiddleware
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application

from hypergen_ws import autoconsumers
from hypergen_ws.security import SameOriginValidator

http = get_asgi_application()

#: ``asgi.py`` as ``django-admin startproject`` wrote it.
startproject = http
#: A router that forgot the websockets.
http_only = ProtocolTypeRouter({"http": http})
#: Every consumer, behind authentication and an Origin check of scheme, host and port: nothing to report.
complete = ProtocolTypeRouter({
    "http": http,
    "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(autoconsumers()))),
})
#: An Origin check by host name only.
hostnames_only = ProtocolTypeRouter({
    "http": http,
    "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(autoconsumers()))),
})
#: An Origin check that lets cookie sockets without an Origin header in.
missing_allowed = ProtocolTypeRouter({
    "http": http,
    "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(autoconsumers())), allow_missing=True),
})
#: No AuthMiddlewareStack: every user is anonymous.
no_auth = ProtocolTypeRouter({"http": http, "websocket": AllowedHostsOriginValidator(URLRouter(autoconsumers()))})
#: No Origin check.
no_origin = ProtocolTypeRouter({"http": http, "websocket": AuthMiddlewareStack(URLRouter(autoconsumers()))})
#: Only the chat app's consumers are routed.
chat_only = ProtocolTypeRouter({
    "http": http,
    "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(
        autoconsumers("testproject.chat.consumers")))),
})


class TokenAuthMiddleware(BaseMiddleware):  # type: ignore[misc]  # channels has no type hints
    """Authentication of a project's own (it would set scope["user"] from a token)."""


#: A project's own authentication middleware, by its name.
own_auth = ProtocolTypeRouter({
    "http": http,
    "websocket": AllowedHostsOriginValidator(TokenAuthMiddleware(URLRouter(autoconsumers()))),
})


def _opaque(scope: dict[str, Any], receive: Any, send: Any) -> Any:
    return complete(scope, receive, send)


#: A function of the project's own in front of the routes: the checks cannot see through it and stay quiet.
opaque = ProtocolTypeRouter({"http": http, "websocket": _opaque})
