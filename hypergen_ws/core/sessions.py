"""Which Django sessions still let their user in: the sessions behind open sockets are checked again
(docs/security.rst).

A socket authenticated by a session must close when Django would no longer accept that session: a logout
(``user_logged_out``), a ``session.flush()``, its expiry, or a change of the user's password (Django compares the
session auth hash, ``get_session_auth_hash()``, kept in the session at login). :func:`live_sessions` asks the
session store, in as few queries as it allows: one ``IN`` query for the database stores (``db``, ``cached_db``),
one ``get_many`` for the cache store, one ``exists()`` per key for the others. Signed-cookie sessions live in the
browser only: nothing on the server can tell that one ended, so they always count as live (a logout still closes
their sockets through the signal). :func:`changed_passwords` finds, in one query, the users whose password is no
longer the one their sockets were let in with (:class:`SessionLogin`).

``update_session_auth_hash()`` (and ``login()``) move a session to a new key; :func:`seal_key` carries the new key
to the sockets of the old one without revealing it, and :func:`follow_login` checks that the new session still
lets the same user in.
"""
from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.cache import SessionStore as CacheStore
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from django.contrib.sessions.backends.signed_cookies import SessionStore as SignedCookieStore
from django.core.cache import caches
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

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


# ---- the password a session-authenticated socket was let in with -------------------------------------------
@dataclass(frozen=True, slots=True)
class SessionLogin:
    """What a socket authenticated by a session was let in with: its user's primary key, password field (a
    hash) and session auth hash (the one Django keeps in the session, ``HASH_SESSION_KEY``)."""

    user_id: Any
    password: str
    auth_hash: str


def login_of(user: Any) -> SessionLogin | None:
    """The :class:`SessionLogin` of ``user`` as it is now, or None for a user without a session auth hash."""
    password = getattr(user, "password", None)
    if not isinstance(password, str) or not callable(getattr(user, "get_session_auth_hash", None)):
        return None
    return SessionLogin(user.pk, password, user.get_session_auth_hash())


def _accepted_hashes(user: Any) -> list[str]:
    """The session auth hashes Django accepts for ``user``: the current one and those of ``SECRET_KEY_FALLBACKS``."""
    fallbacks = getattr(user, "get_session_auth_fallback_hash", None)
    return [user.get_session_auth_hash(), *(fallbacks() if callable(fallbacks) else ())]


def changed_passwords(logins: Collection[SessionLogin]) -> set[SessionLogin]:
    """The logins among ``logins`` that Django no longer accepts because the user's password changed (their session
    auth hash is not the user's any more) or the user is gone (sync: one query, plus one per changed password)."""
    by_user: dict[str, list[SessionLogin]] = {}
    for login in logins:
        by_user.setdefault(str(login.user_id), []).append(login)
    if not by_user:
        return set()
    model = get_user_model()
    current: dict[str, str] = {}
    pks = list({login.user_id for login in logins})
    for i in range(0, len(pks), _CHUNK):
        current.update((str(pk), password) for pk, password in
                       model._default_manager.filter(pk__in=pks[i:i + _CHUNK]).values_list("pk", "password"))
    changed: set[SessionLogin] = set()
    for pk, mine in by_user.items():
        password = current.get(pk)
        moved = [login for login in mine if login.password != password]
        if not moved:
            continue
        user = model._default_manager.filter(pk=moved[0].user_id).first() if password is not None else None
        accepted = _accepted_hashes(user) if user is not None else []
        changed.update(login for login in moved
                       if not any(constant_time_compare(login.auth_hash, h) for h in accepted))
    return changed


# ---- a session that moved to a new key --------------------------------------------------------------------------
_SEAL_SALT = "hypergen_ws.sessions.seal_key"


def _pad(old_key: str, size: int) -> bytes:
    blocks, i = b"", 0
    while len(blocks) < size:
        blocks += salted_hmac(_SEAL_SALT, f"{i}:{old_key}", algorithm="sha256").digest()
        i += 1
    return blocks[:size]


def seal_key(new_key: str, old_key: str) -> str:
    """``new_key`` masked with a pad only ``old_key`` and ``SECRET_KEY`` make: the sockets of the old session can
    read it (they know the old key), a reader of the channel layer cannot."""
    data = new_key.encode()
    return bytes(a ^ b for a, b in zip(data, _pad(old_key, len(data)), strict=True)).hex()


def open_key(sealed: str, old_key: str) -> str | None:
    """The key :func:`seal_key` sealed for ``old_key``, or None when ``sealed`` is not one."""
    try:
        data = bytes.fromhex(sealed)
        return bytes(a ^ b for a, b in zip(data, _pad(old_key, len(data)), strict=True)).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def follow_login(new_key: str, user_id: Any) -> tuple[Any, SessionLogin] | None:
    """The session ``new_key`` and the :class:`SessionLogin` of its user, when that session lets the user
    ``user_id`` in as Django would (same user, a session auth hash it accepts); else None (sync: it queries)."""
    session = store_class()(session_key=new_key)
    if str(session.get(SESSION_KEY)) != str(user_id):
        return None
    user = get_user_model()._default_manager.filter(pk=user_id).first()
    login = login_of(user) if user is not None else None
    stored = session.get(HASH_SESSION_KEY)
    if login is None or not isinstance(stored, str) or not any(
            constant_time_compare(stored, h) for h in _accepted_hashes(user)):
        return None
    return session, login
