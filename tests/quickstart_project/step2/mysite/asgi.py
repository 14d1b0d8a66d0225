"""ASGI entry point of the quickstart's project: HTTP through Django, websockets through the consumers' routes."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django_asgi_app = get_asgi_application()  # first: it sets Django up before the imports below

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from hypergen_ws.security import BodyLimit, SameOriginValidator

from mysite.routing import websocket_urlpatterns

application = ProtocolTypeRouter({
    "http": BodyLimit(django_asgi_app),  # every request body: refused over its limit before it is read
    "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
})
