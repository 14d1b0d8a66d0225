"""ASGI application of the recovery end-to-end tests: the consumers of ``tests.recovery_consumers`` and a page.

Serve with ``DJANGO_SETTINGS_MODULE=tests.e2e.recovery_settings``; ``application`` is the ASGI entry point and
``urlpatterns`` the HTTP routes (``ROOT_URLCONF`` is this module): ``/recovery/<room>/`` is a page that lists the
``message`` frames of the ``rec_feed`` consumer of that room, and counts ``resync`` events.
"""
from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.e2e.recovery_settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.contrib.staticfiles.urls import staticfiles_urlpatterns  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

from hypergen_ws import autoconsumers  # noqa: E402
from hypergen_ws.templatetags.hypergen_ws import hypergen_ws_script  # noqa: E402
from tests import recovery_consumers  # noqa: E402

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>recovery</title></head>
<body data-resyncs="0">
<p id="state">connecting</p>
<ol id="messages"></ol>
{script_tag}
<script>
  const conn = hypergen.websocket.open("{url}");
  conn.on("state", (detail) => {{ document.getElementById("state").textContent = detail.state; }});
  conn.on("message", (data) => {{
    const li = document.createElement("li");
    li.textContent = String(data);
    document.getElementById("messages").appendChild(li);
  }});
  conn.on("resync", () => {{ document.body.dataset.resyncs = String(Number(document.body.dataset.resyncs) + 1); }});
</script>
</body></html>
"""


def recovery_page(request, room: str) -> HttpResponse:
    url = recovery_consumers.rec_feed.reverse(room=room)
    return HttpResponse(PAGE.format(script_tag=hypergen_ws_script(), url=url))


urlpatterns = [path("recovery/<slug:room>/", recovery_page), *staticfiles_urlpatterns()]

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": AuthMiddlewareStack(URLRouter(autoconsumers(recovery_consumers))),
})
