"""What Channels' routers and middleware hold: the one place that reads their attributes (``setup_checks`` and
``testing`` walk the ASGI application through these functions).

Channels documents how to build a ``ProtocolTypeRouter``, a ``URLRouter`` and a middleware, not what they keep:
``application_mapping``, ``routes`` and ``inner`` are its attributes as of Channels 4, read here and nowhere else.
Each function answers None for an object that does not have the attribute, so a change in Channels makes the
setup checks say that they could not see behind it, never crash.
"""
from __future__ import annotations

from typing import Any

from channels.routing import ProtocolTypeRouter, URLRouter

__all__ = ["as_asgi_class", "protocol_mapping", "url_routes", "wrapped_app"]

#: The attributes a middleware keeps what it wraps in: Channels' ``BaseMiddleware`` (``inner``), its
#: ``OriginValidator`` (``application``) and the usual name of other ASGI wrappers (``app``).
_WRAPPED = ("inner", "application", "app")


def protocol_mapping(application: object) -> dict[str, Any] | None:
    """The ``{"websocket": ..., "http": ...}`` mapping of a ``ProtocolTypeRouter``; None for anything else."""
    if not isinstance(application, ProtocolTypeRouter):
        return None
    mapping = getattr(application, "application_mapping", None)
    return dict(mapping) if isinstance(mapping, dict) else None


def url_routes(node: object) -> list[Any] | None:
    """The routes (``path()``/``re_path()`` patterns) of a ``URLRouter``; None for anything else."""
    if not isinstance(node, URLRouter):
        return None
    routes = getattr(node, "routes", None)
    return list(routes) if routes is not None else None


def wrapped_app(node: object) -> Any | None:
    """The application a middleware wraps, or None when ``node`` wraps none that can be seen."""
    for attribute in _WRAPPED:
        inner = getattr(node, attribute, None)
        if inner is not None and callable(inner):
            return inner
    return None


def as_asgi_class(node: object) -> type | None:
    """The consumer class behind ``SomeConsumer.as_asgi()``, or None for any other application."""
    found = getattr(node, "consumer_class", None)
    return found if isinstance(found, type) else None
