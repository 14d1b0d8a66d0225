"""ASGI application of the chaos run: the consumers of ``tests.chaos_consumers`` and the HTTP publish endpoint.

Serve with ``DJANGO_SETTINGS_MODULE=tests.e2e.chaos_settings`` (``ROOT_URLCONF`` is this module).
"""
from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.e2e.chaos_settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import include, path  # noqa: E402

from hypergen_ws import autoconsumers  # noqa: E402
from tests import chaos_consumers  # noqa: E402

urlpatterns = [path("", lambda request: HttpResponse("chaos")), path("hypergen_ws/", include("hypergen_ws.urls"))]

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": AuthMiddlewareStack(URLRouter(autoconsumers(chaos_consumers))),
})
