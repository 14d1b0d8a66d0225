"""ASGI entry point: HTTP through Django, websockets through the hypergen_ws router.

``BodyLimit`` wraps all of HTTP: a request body over its limit (``MAX_BODY_SIZE``, or its view's own) is refused
before it is read, on every URL, the login page included; ``SameOriginValidator`` lets only pages of this server
(scheme, host and port) and ``CSRF_TRUSTED_ORIGINS`` open sockets (docs/security.rst).
"""
from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter

from hypergen_ws.security import BodyLimit, SameOriginValidator
from testproject.routing import websocket_urlpatterns

application = ProtocolTypeRouter(
    {
        "http": BodyLimit(django_asgi_app),
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
