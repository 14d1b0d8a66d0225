"""ASGI application of the benchmark project: the hand-written consumer, plus hypergen_ws when enabled."""
from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproject.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import path  # noqa: E402

from benchproject.handwritten import FanoutConsumer  # noqa: E402

websocket_urlpatterns = [path("ws/bench/", FanoutConsumer.as_asgi())]

if settings.BENCH_HYPERGEN:
    from hypergen_ws import autoconsumers  # noqa: E402

    import benchproject.consumers  # noqa: E402,F401  (registers the @consumer)

    websocket_urlpatterns += autoconsumers()

websocket_app = URLRouter(websocket_urlpatterns)
http_app = django_asgi_app
if settings.BENCH_AUTH:
    websocket_app = AuthMiddlewareStack(websocket_app)
if settings.BENCH_QUICKSTART:
    from hypergen_ws.security import BodyLimit, SameOriginValidator  # noqa: E402

    websocket_app = SameOriginValidator(websocket_app)
    http_app = BodyLimit(django_asgi_app)

application = ProtocolTypeRouter({"http": http_app, "websocket": websocket_app})
