"""System checks for the usual mistakes of a new project: how websockets reach the consumers, and perm strings.

``manage.py check`` loads ``ASGI_APPLICATION`` and walks its routers (Channels' ``ProtocolTypeRouter``,
``URLRouter`` and the middleware in front of them) down to the consumers:

* W040: ``ASGI_APPLICATION`` is not set; E041: it cannot be imported;
* E042: websockets are routed nowhere (``asgi.py`` as ``startproject`` made it, or no ``"websocket"`` key);
* W043: consumers that no websocket route reaches (``autoconsumers()`` not routed, or only some modules);
* E044: consumers that need a user, without ``AuthMiddlewareStack`` (or another auth middleware) in front;
* W045 (``check --deploy``): no ``Origin`` check (``SameOriginValidator``) in front of the websocket routes;
* W047 (``check --deploy``): only a check by host name (``AllowedHostsOriginValidator``), which lets pages served on
  another port or scheme of an allowed host open sockets;
* W048 (``check --deploy``): an ``Origin`` check that lets cookie sockets in without an ``Origin`` header or from
  any origin (``SameOriginValidator(allow_missing=True)``, a ``"*"`` entry): clients without a browser
  authenticate with a connection token instead, which needs neither;

``hypergen_ws.code_checks`` has E046 (a ``perm`` naming a permission that does not exist) and W049 (a module with a
``@consumer`` that nothing imports). The consumer of hypergen_ws's dashboard counts only where the project serves
the dashboard (``hypergen_ws.urls`` in the URLconf); elsewhere it is routed but needs nothing.

Whatever the walk cannot see through (a wrapper of your own) ends it quietly: these checks report only what they
are sure of. Silence one with ``SILENCED_SYSTEM_CHECKS`` when your project does the same thing another way.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from channels.security.websocket import OriginValidator
from django.apps import AppConfig, apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.handlers.asgi import ASGIHandler
from django.urls import NoReverseMatch, URLPattern, URLResolver, reverse
from django.utils.module_loading import import_string

from .backends.routers import as_asgi_class, protocol_mapping, url_routes, wrapped_app
from .core import registry
from .core.identity import authenticates
from .core.origins import SameOriginValidator
from .decorators import Consumer
from .routing import not_found

__all__ = ["Route", "Walk", "check_asgi_application", "check_origin_validator", "walk_websocket_routes"]

ASGI_SNIPPET = (
    "application = ProtocolTypeRouter({'http': BodyLimit(get_asgi_application()), 'websocket': "
    "SameOriginValidator(AuthMiddlewareStack(URLRouter(autoconsumers())))}), with "
    "'from hypergen_ws.security import BodyLimit, SameOriginValidator'"
)
_ORIGIN_NAME = "origin"


@dataclass
class Route:
    """A consumer reached by the websocket router, with the wrappers it is reached through."""

    consumer: Consumer | None
    wrappers: tuple[object, ...]

    def has_auth(self) -> bool:
        """Whether a middleware in front of it sets ``scope["user"]`` (``core.identity.authenticates``)."""
        return any(authenticates(w) for w in self.wrappers)

    def has_origin_check(self) -> bool:
        """Whether an ``Origin`` check is in front of it: OriginValidator, or a class named *Origin*."""
        return any(isinstance(w, OriginValidator) or _ORIGIN_NAME in type(w).__name__.lower() for w in self.wrappers)

    def lets_cookies_in_unchecked(self) -> bool:
        """Whether an ``Origin`` check in front of it admits cookie sockets without an Origin header or from any
        origin (``allow_missing=True``, or ``"*"``)."""
        return any((isinstance(w, SameOriginValidator) and (w.allow_missing or w.any_origin))
                   or (isinstance(w, OriginValidator) and "*" in w.allowed_origins) for w in self.wrappers)

    def checks_host_names_only(self) -> bool:
        """Whether its only ``Origin`` checks compare host names (Channels' AllowedHostsOriginValidator: entries
        without a scheme), so that scheme and port are not checked."""
        checks = [w for w in self.wrappers if isinstance(w, (OriginValidator, SameOriginValidator))
                  or _ORIGIN_NAME in type(w).__name__.lower()]
        return bool(checks) and all(
            isinstance(w, OriginValidator) and any(isinstance(o, str) and o != "*" and "://" not in o
                                                   for o in w.allowed_origins)
            for w in checks)


@dataclass
class Walk:
    """What the walk from ``ASGI_APPLICATION`` found."""

    websocket: bool = False  #: whether anything handles websockets at all
    routes: list[Route] = field(default_factory=list)
    complete: bool = True  #: False when a wrapper hid what is behind it


def walk_websocket_routes(application: object) -> Walk:
    """Follow ``application``'s websocket branch down to every consumer it routes to."""
    walk = Walk()
    if isinstance(application, ASGIHandler):
        return walk  # Django's own handler: HTTP only
    mapping = protocol_mapping(application)
    if mapping is not None:
        branch = mapping.get("websocket")
        if branch is None:
            return walk
        walk.websocket = True
        _walk(branch, (), walk, set())
        return walk
    walk.websocket = True  # not a router we know: assume it handles websockets somehow
    _walk(application, (), walk, set())
    return walk


def _walk(node: object, wrappers: tuple[object, ...], walk: Walk, seen: set[int]) -> None:
    if id(node) in seen:
        return
    seen.add(id(node))
    consumer_class = as_asgi_class(node)
    if consumer_class is not None:  # Consumer.as_asgi()
        spec = getattr(consumer_class, "hypergen", None)
        walk.routes.append(Route(spec if isinstance(spec, Consumer) else None, wrappers))
        return
    routes = url_routes(node)
    if routes is not None:
        for route in routes:
            if getattr(route, "callback", None) is not_found:  # autoconsumers()' last route: refuses, routes nothing
                continue
            if isinstance(route, (URLPattern, URLResolver)) and getattr(route, "callback", None) is not None:
                _walk(route.callback, wrappers, walk, seen)
            else:
                walk.complete = False
        return
    inner = wrapped_app(node)  # Channels' middleware, OriginValidator, other wrappers
    if inner is not None:
        _walk(inner, (*wrappers, node), walk, seen)
        return
    walk.complete = False


def _load_application() -> tuple[object | None, list[CheckMessage]]:
    path = getattr(settings, "ASGI_APPLICATION", None)
    if not path:
        return None, [Warning(
            "ASGI_APPLICATION is not set, so `manage.py runserver` (daphne) does not know which application "
            "serves websockets, and hypergen_ws cannot check how they reach the consumers.",
            hint="Set ASGI_APPLICATION = 'mysite.asgi.application' (your project's asgi.py) and route websockets "
                 f"there: {ASGI_SNIPPET}",
            id="hypergen_ws.W040",
        )]
    try:
        return import_string(path), []
    except Exception as exc:  # an import error anywhere in asgi.py and what it imports
        return None, [Error(
            f"ASGI_APPLICATION {path!r} cannot be loaded: {type(exc).__name__}: {exc}",
            hint="Fix the error above, or point ASGI_APPLICATION to the 'application' object of your asgi.py.",
            id="hypergen_ws.E041",
        )]


def _discovered() -> bool:
    """Import the apps' consumers (checks run in no particular order); False when that fails (E007 says why)."""
    try:
        registry.discover()
    except Exception:
        return False
    return True


def _consumers() -> list[Consumer]:
    """Every registered ``@consumer``."""
    return [spec for spec in registry.all_consumers() if isinstance(spec, Consumer)]


def _installed_consumers() -> list[Consumer]:
    app_names = {config.name for config in apps.get_app_configs()}
    return [c for c in _consumers() if registry.in_apps(c.func.__module__, app_names)]


#: The consumer of the dashboard page (hypergen_ws.dashboard), routed by autoconsumers() like any other.
DASHBOARD_LABEL = "hypergen_ws.dashboard"


def _dashboard_served() -> bool:
    """Whether the project serves the dashboard page (``hypergen_ws.urls`` in its URLconf), so that its consumer
    matters; elsewhere it is routed, refuses everyone but staff, and is no concern of the project's setup."""
    try:
        reverse("hypergen_ws:dashboard")
    except NoReverseMatch:
        return False
    return True


def _concerns(consumer: Consumer | None) -> bool:
    """Whether a routed consumer is the project's business (every one, but an unserved dashboard's)."""
    return consumer is not None and (consumer.label != DASHBOARD_LABEL or _dashboard_served())


@register(Tags.compatibility)
def check_asgi_application(app_configs: Sequence[AppConfig] | None = None, **kwargs: object) -> list[CheckMessage]:
    """W040, E041, E042, W043, E044: websockets reach the consumers, behind authentication where they need it."""
    if getattr(settings, "ASGI_APPLICATION", None) and not _discovered():
        return []  # importing the consumers failed: hypergen_ws.E007 says why, and asgi.py would fail the same way
    application, problems = _load_application()
    if application is None:
        return problems
    path = settings.ASGI_APPLICATION
    walk = walk_websocket_routes(application)
    if not walk.websocket:
        why = ("is Django's ASGIHandler, as `startproject` wrote asgi.py" if isinstance(application, ASGIHandler)
               else "is a ProtocolTypeRouter without a 'websocket' entry")
        return [Error(
            f"Websockets are routed nowhere: ASGI_APPLICATION {path!r} {why}. Browsers reconnect for ever and the "
            "server logs 'Django can only handle ASGI/HTTP connections, not websocket.'",
            hint=f"Route websockets to the consumers in asgi.py: {ASGI_SNIPPET} (see the quickstart).",
            id="hypergen_ws.E042",
        )]
    messages: list[CheckMessage] = []
    reached = {route.consumer for route in walk.routes if route.consumer is not None}
    if walk.complete:
        # The dashboard's own consumer is optional: a project that routes only its own modules does without it.
        unrouted = [c for c in _installed_consumers() if c not in reached and c.label != DASHBOARD_LABEL]
        if unrouted:
            messages.append(Warning(
                f"{_labels(unrouted)} {'has' if len(unrouted) == 1 else 'have'} no websocket route in "
                f"ASGI_APPLICATION {path!r}: connecting to {'it' if len(unrouted) == 1 else 'them'} fails.",
                hint="Route every consumer with URLRouter(autoconsumers()) (in routing.py, included in asgi.py's "
                     "'websocket' entry).",
                id="hypergen_ws.W043",
            ))
    needs_user = [route.consumer for route in walk.routes if _concerns(route.consumer) and route.consumer is not None
                  and not route.consumer.permission.public and not route.consumer.permission.missing
                  and not route.has_auth()]
    if needs_user:
        one = len(needs_user) == 1
        why = (" (hypergen_ws.dashboard is the consumer of the dashboard page that hypergen_ws.urls serves to staff "
               "users)" if any(c.label == DASHBOARD_LABEL for c in needs_user) else "")
        messages.append(Error(
            f"{_labels(needs_user)}{why} {'checks' if one else 'check'} the user's permissions, but no authentication "
            f"middleware is in front of {'it' if one else 'them'} in ASGI_APPLICATION {path!r}: every user is "
            "anonymous, and every socket is refused with 4401.",
            hint="Wrap the websocket routes in channels.auth.AuthMiddlewareStack(URLRouter(...)). If middleware of "
                 "your own sets scope['user'], silence this with SILENCED_SYSTEM_CHECKS = ['hypergen_ws.E044'].",
            id="hypergen_ws.E044",
        ))
    return [*problems, *messages]


@register(Tags.security, deploy=True)
def check_origin_validator(app_configs: Sequence[AppConfig] | None = None, **kwargs: object) -> list[CheckMessage]:
    """W045 (``check --deploy``): websocket routes without an ``Origin`` check accept sockets from any site."""
    application, _ = _load_application()
    if application is None:
        return []
    routes = [route for route in walk_websocket_routes(application).routes
              if route.consumer is None or _concerns(route.consumer)]
    unchecked = [route for route in routes if not route.has_origin_check()]
    hint = ("Wrap the websocket routes in hypergen_ws.security.SameOriginValidator(...), which accepts the server's "
            "own origin (scheme, host and port) and CSRF_TRUSTED_ORIGINS (docs/security.rst).")
    if unchecked:
        consumers = [route.consumer for route in unchecked if route.consumer is not None]
        what = _labels(consumers, start=False) if consumers else f"{len(unchecked)} websocket route(s)"
        return [Warning(
            f"No Origin check is in front of {what} in ASGI_APPLICATION {settings.ASGI_APPLICATION!r}: any web site "
            "can open a websocket with your users' cookies (cross-site websocket hijacking).",
            hint=hint, id="hypergen_ws.W045",
        )]
    loose = [route for route in routes if route.lets_cookies_in_unchecked()]
    if loose:
        consumers = [route.consumer for route in loose if route.consumer is not None]
        what = _labels(consumers, start=False) if consumers else f"{len(loose)} websocket route(s)"
        return [Warning(
            f"The Origin check in front of {what} in ASGI_APPLICATION {settings.ASGI_APPLICATION!r} lets sockets in "
            "without an Origin header or from any origin (allow_missing=True or '*'): a cookie session opens them, "
            "with no origin check (cross-site websocket hijacking).",
            hint="Drop allow_missing=True and '*': clients without a browser send a connection token "
                 "('Authorization: Bearer <token>', docs/clients.rst), which SameOriginValidator lets in without an "
                 "Origin header; pages of other sites use @consumer(cross_origin=[...]) with a token.",
            id="hypergen_ws.W048",
        )]
    by_name = [route for route in routes if route.checks_host_names_only()]
    if not by_name:
        return []
    consumers = [route.consumer for route in by_name if route.consumer is not None]
    what = _labels(consumers, start=False) if consumers else f"{len(by_name)} websocket route(s)"
    return [Warning(
        f"The Origin check in front of {what} in ASGI_APPLICATION {settings.ASGI_APPLICATION!r} compares host names "
        "only (AllowedHostsOriginValidator): a page served on another port or scheme of an allowed host, such as "
        "http://localhost:1234, can open websockets with your users' cookies.",
        hint=hint, id="hypergen_ws.W047",
    )]


def _labels(consumers: Iterable[Consumer], *, start: bool = True) -> str:
    labels = sorted({c.label for c in consumers})
    shown = ", ".join(labels[:5]) + (f" and {len(labels) - 5} more" if len(labels) > 5 else "")
    return f"{'T' if start else 't'}he consumer{'s' if len(labels) != 1 else ''} {shown}"
