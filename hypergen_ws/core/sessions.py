"""Which Django sessions still exist: the sessions behind open sockets are checked again (docs/security.rst).

A socket authenticated by a session must close when that session ends: a logout (``user_logged_out``), a
``session.flush()``, or its expiry. :func:`live_sessions` asks the session store, in as few queries as it allows:
one ``IN`` query for the database stores (``db``, ``cached_db``), one ``get_many`` for the cache store, one
``exists()`` per key for the others. Signed-cookie sessions live in the browser only: nothing on the server can
tell that one ended, so they always count as live (a logout still closes their sockets through the signal).
"""
from __future__ import annotations

import hashlib
from collections.abc import Collection
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.cache import SessionStore as CacheStore
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from django.contrib.sessions.backends.signed_cookies import SessionStore as SignedCookieStore
from django.core.cache import caches
from django.utils import timezone

_CHUNK = 500


def session_tag(session_key: str | None) -> str | None:
    """A digest of a session key that names the session in control messages without revealing the key."""
    if not session_key:
        return None
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


def session_key_of(scope: dict[str, Any]) -> str | None:
    """The key of the session a connection's scope carries, or None."""
    session = scope.get("session")
    key = getattr(session, "session_key", None)
    return key if isinstance(key, str) and key else None


def store_class() -> Any:
    """``SESSION_ENGINE``'s ``SessionStore``."""
    return import_module(settings.SESSION_ENGINE).SessionStore


def live_sessions(keys: Collection[str]) -> set[str]:
    """The keys among ``keys`` whose session exists and has not expired (sync: it queries the session store)."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return set()
    store = store_class()
    if issubclass(store, SignedCookieStore):
        return set(keys)
    if issubclass(store, DatabaseStore):  # the database is the truth for cached_db too
        model = store.get_model_class()
        live: set[str] = set()
        now = timezone.now()
        for i in range(0, len(keys), _CHUNK):
            live.update(model.objects.filter(session_key__in=keys[i:i + _CHUNK], expire_date__gt=now)
                        .values_list("session_key", flat=True))
        return live
    if issubclass(store, CacheStore):
        cache = caches[settings.SESSION_CACHE_ALIAS]
        found = cache.get_many([store.cache_key_prefix + key for key in keys])
        return {key for key in keys if store.cache_key_prefix + key in found}
    return {key for key in keys if store(session_key=key).exists(key)}
