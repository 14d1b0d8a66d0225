"""``autoconsumers()``: the websocket URL patterns of every ``@consumer``, for Channels' ``URLRouter``."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from importlib import import_module
from types import ModuleType
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.urls import re_path

from .backends.servers import install_body_limit
from .core import protocol, registry
from .core.bodies import daphne_rule_for, too_large_body
from .core.logs import fields
from .decorators import all_consumers
from .delivery.shutdown import drain_all
from .installed import HINT, not_installed_message

logger = logging.getLogger("hypergen_ws")

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def not_found(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """The ASGI app of every websocket path no consumer matched: refuse the handshake and log one line.

    The server answers the handshake with HTTP 403 (what refusing a websocket before the accept means in ASGI);
    nothing raises, so no traceback is logged and no HTTP 500 is sent.
    """
    if scope.get("type") != "websocket":
        return
    message = await receive()
    if message.get("type") != "websocket.connect":
        return
    logger.warning("No websocket route for path %r: refused the connection (check the URL the client opened; "
                   "reverse() gives a consumer's URL)", scope.get("path", ""), extra=fields("no_route", code=403))
    await send({"type": "websocket.close", "code": protocol.CLOSE_NO_ROUTE})


def autoconsumers(*modules: ModuleType | str, not_found_route: bool | None = None) -> list[Any]:
    """Return URL patterns for ``URLRouter``.

    Without arguments: the consumers of every installed app (their ``consumers`` and ``views`` modules are
    imported), followed by a last route that refuses every other path cleanly (:func:`not_found`): Channels'
    router would raise and the server answer HTTP 500 with a traceback in the log. With modules (objects or
    dotted paths): only the consumers defined in those modules, and no last route, so that the list can be
    combined with others. ``not_found_route`` forces the last route on (``True``) or off (``False``); put routes
    of your own *before* a list that ends with it.
    """
    if not apps.is_installed("hypergen_ws"):
        raise ImproperlyConfigured(f"{not_installed_message()} {HINT}")
    if modules:
        names = set()
        for module in modules:
            mod = import_module(module) if isinstance(module, str) else module
            names.add(mod.__name__)
        consumers = [c for c in all_consumers() if c.func.__module__ in names]
    else:
        registry.discover()
        app_names = {config.name for config in apps.get_app_configs()}
        consumers = [c for c in all_consumers() if registry.in_apps(c.func.__module__, app_names)]
    registry.check_unique(list(consumers))
    # `manage.py runserver` loads daphne after the apps are ready, and the routes when it starts serving.
    install_body_limit(daphne_rule_for, too_large_body)
    patterns: list[Any] = [c.urlpattern() for c in consumers]
    if not_found_route if not_found_route is not None else not modules:
        app: Any = not_found  # an ASGI app, as URLRouter expects (Django's stubs know only views)
        patterns.append(re_path(r"", app, name="hypergen_ws.not_found"))
    return patterns


async def lifespan(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """An ASGI lifespan application (``ProtocolTypeRouter({..., "lifespan": lifespan})``): at the lifespan shutdown,
    every socket of the process is told to reconnect within ``RECONNECT_SPREAD`` and closed with 1012, for servers
    that send the shutdown before they close their sockets (docs/scaling.rst, "Deploys"). uvicorn and daphne are
    told by SIGTERM without it."""
    if scope.get("type") != "lifespan":
        return
    while True:
        message = await receive()
        if message.get("type") == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message.get("type") == "lifespan.shutdown":
            await drain_all()
            await send({"type": "lifespan.shutdown.complete"})
            return
