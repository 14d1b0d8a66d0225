"""Django middleware of hypergen_ws.

``FollowSessionMiddleware``
    A session that moves to a new key keeps its sockets. ``update_session_auth_hash()`` (which a password change
    view calls so that the browser that changed the password stays logged in) and ``login()`` give the session a
    new key and delete the old one; without this middleware the session check would find the sockets' session
    gone and close them with 4401. With it, the sockets of the old key follow the new one, in every process, once
    the new session lets the same user in (docs/security.rst). Put it **above** ``SessionMiddleware``, so that it
    sees the session after it was saved::

        MIDDLEWARE = [
            "hypergen_ws.middleware.FollowSessionMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            ...
        ]
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.http import HttpRequest, HttpResponseBase

from .core.logs import fields
from .features.access import afollow_session, follow_session

logger = logging.getLogger("hypergen_ws")

__all__ = ["FollowSessionMiddleware"]


def _moved(request: HttpRequest) -> tuple[str, str] | None:
    """``(old key, new key)`` when the request came with a session cookie and leaves with another session."""
    old = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    session = getattr(request, "session", None)
    new = getattr(session, "session_key", None)
    if not old or not isinstance(new, str) or not new or new == old:
        return None
    return old, new


def _not_sent(request: HttpRequest) -> None:
    logger.warning("The sockets of a session that moved to a new key could not be told in every process (is Redis "
                   "down?); the session check closes them with 4401", exc_info=True,
                   extra=fields("session_follow_failed", user=getattr(request, "user", None)))


class FollowSessionMiddleware:
    """Sockets follow their session to its new key (see the module docstring); sync and async."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        response: HttpResponseBase = self.get_response(request)
        moved = _moved(request)
        if moved is not None:
            user_id = request.session.get(SESSION_KEY)
            if user_id is not None:
                try:
                    follow_session(user_id, *moved)
                except Exception:
                    _not_sent(request)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
        response = await get_response(request)
        moved = _moved(request)
        if moved is not None:
            user_id = await request.session.aget(SESSION_KEY)
            if user_id is not None:
                try:
                    await afollow_session(user_id, *moved)
                except Exception:
                    _not_sent(request)
        return response
