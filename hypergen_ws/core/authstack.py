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

The websocket's ``send`` is the server's own: the session wrapper's ``send`` saves the session only for
``http.response.start``, which a websocket never sends. A scope that already holds a session or a user (a
middleware further out set them) goes through the stack itself. HTTP is never shortcut.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import import_module
from typing import Any

from channels.auth import AuthMiddleware, UserLazyObject, get_user
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.http import parse_cookie
from django.utils.functional import LazyObject

__all__ = ["inner_of_auth_stack", "with_session_and_user"]

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
