"""ASGI application of the tests of closes that race connects: the test project, and ``tests.gate_consumers``.

Serve with the test project's settings and ``HGWS_TEST_GATE`` set to a directory: connects to ``gated`` wait in
their permission check until the test opens the gate (``tests/gate_consumers.py``).
"""
from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from hypergen_ws import autoconsumers  # noqa: E402
from hypergen_ws.security import SameOriginValidator  # noqa: E402
from testproject.routing import websocket_urlpatterns  # noqa: E402
from tests import gate_consumers  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(
        [*autoconsumers(gate_consumers), *websocket_urlpatterns]))),
})
