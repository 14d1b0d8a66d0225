"""Channels' ``AuthMiddlewareStack`` done in one step for a websocket, by the validator in front of it.

``AuthMiddlewareStack(inner)`` is three middlewares (``CookieMiddleware``, ``SessionMiddleware``,
``AuthMiddleware``). For every websocket they copy the scope four times, keep four coroutine frames and a
session wrapper alive for the whole connection, and look the user up in a worker thread even when the handshake
carries no session cookie (the user is then anonymous without a database query). ``SameOriginValidator`` is the
outer wrapper of that stack in the asgi.py the quickstart shows; when its application is exactly that stack (the
three classes of ``channels.sessions`` and ``channels.auth``, not subclasses), it fills the scope of an accepted
websocket itself and calls ``inner`` directly:

* ``scope["cookies"]``: the ``Cookie`` header parsed as ``CookieMiddleware`` does;
* ``scope["session"]``: a ``LazyObject`` around the ``SESSION_ENGINE``'s store for the session cookie, as
  ``SessionMiddleware`` sets it;
* ``scope["user"]``: a ``UserLazyObject`` around the user ``channels.auth.get_user`` finds (in a worker
  thread, as there), or around an ``AnonymousUser`` at once when there is no session cookie, which is what
  ``get_user`` returns for a session without a key.

When the stack's application is exactly channels' ``URLRouter``, the validator routes the websocket too
(:func:`route_path`, :func:`match_route`): the same matching, ``path_remaining`` and ``url_route`` as
``URLRouter.__call__``, written into the one copy of the scope instead of a second, and no router frame kept for
the connection. A route to ``Consumer.as_asgi()`` gets its consumer made here (:func:`instance_of`), as that
function makes it, without its frame. A route whose application raises ``Resolver404`` passes on to the next one, and a path no route
matches raises the same ``ValueError``, as there.

The websocket's ``send`` is the server's own: the session wrapper's ``send`` saves the session only for
``http.response.start``, which a websocket never sends. A scope that already holds a session or a user (a
middleware further out set them) goes through the stack itself. HTTP is never shortcut.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import import_module
from typing import Any

from channels.auth import AuthMiddleware, UserLazyObject, get_user
from channels.consumer import AsyncConsumer
from channels.routing import URLRouter
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.http import parse_cookie
from django.urls.exceptions import Resolver404
from django.utils.functional import LazyObject

__all__ = ["inner_of_auth_stack", "instance_of", "match_route", "no_route", "route_path", "router_of", "with_session_and_user"]

Scope = dict[str, Any]
App = Callable[..., Awaitable[None]]


def inner_of_auth_stack(application: Any) -> App | None:
    """The application inside ``AuthMiddlewareStack(inner)`` when ``application`` is exactly that stack, else
    None (any other application, a subclass, or another order of the middlewares)."""
    if type(application) is not CookieMiddleware:
        return None
    session = getattr(application, "inner", None)
    if type(session) is not SessionMiddleware:
        return None
    auth = getattr(session, "inner", None)
    if type(auth) is not AuthMiddleware:
        return None
    inner: App | None = getattr(auth, "inner", None)
    return inner


async def with_session_and_user(scope: Scope, extra: dict[str, Any] | None = None) -> Scope | None:
    """A copy of ``scope`` (and ``extra``) with the cookies, session and user ``AuthMiddlewareStack`` would put
    in it; None when the scope already holds a session or a user (the stack itself must run then)."""
    if "session" in scope or "user" in scope:
        return None
    cookies: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            cookies = parse_cookie(value.decode("latin1"))
            break
    new = dict(scope, cookies=cookies, **(extra or {}))
    session: Any = LazyObject()
    store = import_module(settings.SESSION_ENGINE).SessionStore(cookies.get(settings.SESSION_COOKIE_NAME))
    session._wrapped = store
    new["session"] = session
    user: Any = UserLazyObject()
    new["user"] = user
    if store.session_key is None:
        from django.contrib.auth.models import AnonymousUser  # (the app registry is ready by now)

        user._wrapped = AnonymousUser()  # get_user of a session without a key, without the thread
    else:
        user._wrapped = await get_user(new)
    return new


def router_of(application: Any) -> URLRouter | None:
    """``application`` when it is exactly channels' ``URLRouter`` (not a subclass), else None."""
    return application if type(application) is URLRouter else None


def route_path(scope: Scope) -> tuple[str, dict[str, Any]]:
    """The path ``URLRouter`` matches for ``scope`` (root path and leading ``/`` taken off) and the outer
    ``url_route``; ``ValueError`` as there for a scope without a path or outside its root path."""
    path = scope.get("path_remaining", scope.get("path", None))
    if path is None:
        raise ValueError("No 'path' key in connection scope, cannot route URLs")
    if "path_remaining" not in scope:
        root_path = scope.get("root_path", "")
        if root_path and not path.startswith(root_path):
            raise ValueError("No route found for path %r." % path)
        path = path[len(root_path):]
    return path.lstrip("/"), scope.get("url_route", {})


def match_route(router: URLRouter, scope: Scope, path: str, outer: dict[str, Any],
                start: int = 0) -> tuple[int, App] | None:
    """The first route of ``router`` from ``start`` on that matches ``path`` (its index and application), with
    ``path_remaining`` and ``url_route`` written into ``scope`` as ``URLRouter`` writes them into its copy."""
    routes = router.routes
    for index in range(start, len(routes)):
        route = routes[index]
        try:
            match = route.pattern.match(path)
        except Resolver404:
            continue
        if match:
            new_path, args, kwargs = match
            kwargs.update(route.default_args)
            scope["path_remaining"] = new_path
            scope["url_route"] = {"args": outer.get("args", ()) + args,
                                  "kwargs": {**outer.get("kwargs", {}), **kwargs}}
            return index, route.callback
    return None


def no_route(path: str, nested: bool) -> Exception:
    """The error ``URLRouter`` raises when no route matched ``path``."""
    if nested:
        return Resolver404("No route found for path %r." % path)
    return ValueError("No route found for path %r." % path)


#: The code of the function ``Consumer.as_asgi()`` returns (the same for every consumer class).
_AS_ASGI_CODE = AsyncConsumer.as_asgi().__code__


def instance_of(application: App) -> App:
    """For the function ``Consumer.as_asgi(**initkwargs)`` returns, what it would call: a new
    ``Consumer(**initkwargs)``; any other application as it is."""
    if getattr(application, "__code__", None) is _AS_ASGI_CODE:
        made: App = application.consumer_class(**application.consumer_initkwargs)  # type: ignore[attr-defined]
        return made
    return application
