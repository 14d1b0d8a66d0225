"""ASGI applications for the origin-validator check (settings.ASGI_APPLICATION points at one of them)."""
from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator, OriginValidator

from hypergen_ws.security import SameOriginValidator


async def http_app(scope, receive, send):
    pass


router = URLRouter([])
unprotected = ProtocolTypeRouter({"http": http_app, "websocket": AuthMiddlewareStack(router)})
hostnames_only = ProtocolTypeRouter({"http": http_app,
                                     "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(router))})
full_origins = ProtocolTypeRouter({"http": http_app, "websocket": OriginValidator(router, ["https://example.com"])})
same_origin = ProtocolTypeRouter({"http": http_app, "websocket": SameOriginValidator(AuthMiddlewareStack(router))})
http_only = ProtocolTypeRouter({"http": http_app})
