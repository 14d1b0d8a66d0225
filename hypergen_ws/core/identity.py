"""Who the user of a connection is, and what revokes it: the one place that decides (docs/security.rst).

Everything else asks this module: the consumer (who connects, who calls), ``features.access`` (which sockets a
logout, ``disconnect_user`` or an ended session closes, and who a socket is when its permissions are checked
again), ``features.connlimit`` and ``features.presence`` (which user a socket counts for), ``setup_checks`` (which
middleware authenticates) and ``http`` (the ``Authorization: Bearer`` credential of a request).

A connection's :class:`Identity` is fixed at connect: ``key`` names the user (``u:<pk>``; every anonymous socket
is a user of its own, ``a:<random>``), ``session`` a digest of the session that authenticated it. Revocation is
addressed to identities: a close message names a user key and, optionally, a session digest
(:func:`revocation`, :func:`revoked_by`); the sessions behind sockets are checked again (:func:`ended_sessions`)
and followed to a new key (:func:`session_move`, :func:`followed`); tokens are issued here too (``issue_token``).

Behind this room, and imported by nothing else (an import-linter contract): ``core.credentials`` (what a
handshake or a request presents), ``core.sessions`` (which sessions still let their user in) and ``core.tokens``
(signed connection tokens).
"""
from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from typing import Any, TypeVar

from channels.auth import get_user
from channels.db import database_sync_to_async

from . import protocol, tokens
from .credentials import (MalformedCredential, NotAuthenticated, authenticates, bearer_credential, credential_of,
                          matches_any_key, presents_token, subprotocol)
from .permissions import forget_cached_permissions
from .sessions import (SessionLogin, changed_passwords, follow_login, live_sessions, login_of, open_key, seal_key,
                       session_key_of, session_tag, store_class)
from .tokens import aissue_token, issue_token, max_age_of

__all__ = ["Identity", "MalformedCredential", "NotAuthenticated", "SessionLogin", "admitted_login", "aissue_token",
           "authenticates", "bearer_credential", "cross_origin", "current_user", "ended_sessions", "followed",
           "identify", "identity_of", "issue_token", "matches_any_key", "max_age_of", "presents_token", "refresh",
           "refusal_code", "revocation", "revoked_by", "session_move", "subprotocol", "user_key", "watched_session"]

#: Scope keys: the token a socket connected with (``current_user`` checks it again), and the origin of a token
#: socket that ``SameOriginValidator`` let in from another site (the consumer decides whether it may stay).
TOKEN_KEY = "hypergen_ws.token"
CROSS_ORIGIN_KEY = "hypergen_ws.cross_origin"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a connection is, fixed at connect: ``key`` is ``u:<pk>`` for a user, ``a:<token>`` for an anonymous
    socket (every anonymous socket is a user of its own); ``session`` a digest of the key of the session that
    authenticated it (``core.sessions.session_tag``), or None."""

    key: str
    user_id: int | str | None
    username: str | None
    session: str | None = None
    #: What authenticated it: ``"session"``, ``"token"``, or ``"scope"`` (another middleware, or no one).
    via: str = "scope"
    #: When its token expires (``time.time()`` seconds), for a token with an expiry.
    expires_at: float | None = None

    @property
    def is_user(self) -> bool:
        """Whether a user (not an anonymous socket) is behind it: what per-user limits and presence count."""
        return self.user_id is not None


# ---- who a connection is ------------------------------------------------------------------------------------------
def anonymous() -> Any:
    """Django's ``AnonymousUser``, for a connection no one authenticated."""
    from django.contrib.auth.models import AnonymousUser  # here: the models need the app registry (as in Channels)
    return AnonymousUser()


def user_key(user: Any) -> str:
    """The identity key of ``user`` (a user object or a primary key), as sockets know it."""
    pk = getattr(user, "pk", user)
    if pk is None or isinstance(pk, bool) or not isinstance(pk, (int, str)):
        raise TypeError(f"Pass a user (or a user's primary key), not {user!r}.")
    return f"u:{pk}"


def identity_of(user: Any, session_key: str | None = None) -> Identity:
    """Who a socket is: one key per user (with the session that authenticated it), or a key of its own for an
    anonymous socket."""
    if user is not None and getattr(user, "is_authenticated", False):
        pk = user.pk if isinstance(user.pk, (int, str)) else str(user.pk)
        tag = session_tag(session_key)
        return Identity(f"u:{pk}", pk, user.get_username(), tag, "session" if tag else "scope")
    return Identity(f"a:{secrets.token_hex(6)}", None, None)


def refusal_code(user: Any) -> int:
    """The close code for a socket whose user fails a permission: 4403 for a user, 4401 when no one is logged in."""
    authenticated = bool(getattr(user, "is_authenticated", False))
    return protocol.CLOSE_PERMISSION_DENIED if authenticated else protocol.CLOSE_NOT_AUTHENTICATED


async def identify(scope: dict[str, Any]) -> tuple[Any, Identity]:
    """The user of a connection that is connecting, and its :class:`Identity`.

    A connection that presents a token (:func:`credential_of`) is the token's user and no one else: its scope's
    session and cookies (a browser's, perhaps of another user) are dropped. Any other connection is the user the
    authentication middleware put in the scope (``AuthMiddlewareStack``: the session's), or an anonymous one.
    Raises :class:`NotAuthenticated` for a token that is malformed, forged, expired or revoked, or whose user was
    deleted or deactivated.
    """
    found = credential_of(scope)
    if found is None:
        user = scope.get("user") or anonymous()
        return user, identity_of(user, session_key_of(scope))
    token, where = found
    try:
        user, expires_at = await _authenticate(token)
    except NotAuthenticated as exc:
        raise NotAuthenticated(f"the token in the {where} was refused: {exc}") from None
    scope["user"] = user
    scope[TOKEN_KEY] = token
    scope["session"] = store_class()()  # empty: a token socket never acts on a browser's session
    scope["headers"] = [(name, value) for name, value in scope.get("headers", ()) if name != b"cookie"]
    return user, dataclasses.replace(identity_of(user), via="token", expires_at=expires_at)


async def refresh(scope: dict[str, Any], identity: Identity, token: str) -> Identity:
    """Take a new token for an open token socket (a ``{"type": "token"}`` frame): the :class:`Identity` with the new
    expiry; :class:`NotAuthenticated` when the token is refused or names another user."""
    user, expires_at = await _authenticate(token)
    if identity_of(user).key != identity.key:
        raise NotAuthenticated(f"the new token is for user {user.get_username()!r}, not for this socket's user "
                               f"{identity.username!r}")
    scope["user"] = user
    scope[TOKEN_KEY] = token
    return dataclasses.replace(identity, expires_at=expires_at)


async def current_user(scope: dict[str, Any], *, public: bool = False) -> Any:
    """The user of a connection as of now, for a call or a permission check.

    A socket authenticated by a session reads its session again (a logout, a flush or a deactivation since the
    connect count); any other gets its scope's user with no stale permission cache. ``public`` consumers
    (``NO_PERM_REQUIRED``) read nothing. The scope's ``"user"`` is updated.
    """
    if public:
        return scope.get("user") or anonymous()
    token = scope.get(TOKEN_KEY)
    if token is not None:  # checked again: a password change, a deactivation, a revoked third-party token count
        try:
            user, _ = await _authenticate(token)
        except NotAuthenticated:
            user = anonymous()
        scope["user"] = user
        return user
    session = scope.get("session")
    if session is not None and getattr(session, "session_key", None):
        # A fresh store: the connection's copy caches the data it loaded at connect, logouts included.
        fresh = session.__class__(session_key=session.session_key)
        user = await get_user({**scope, "session": fresh})
        scope["user"] = user
        return user
    user = scope.get("user") or anonymous()
    forget_cached_permissions(user)
    return user


async def _authenticate(token: str) -> tuple[Any, float | None]:
    try:
        return await tokens.authenticate_token(token)
    except tokens.TokenRefused as exc:
        raise NotAuthenticated(str(exc)) from None


async def revoked_tokens(scopes: list[dict[str, Any]]) -> dict[int, str]:
    """Which open token sockets (by the index of their scope) no longer authenticate their user, and why (their
    user was deleted or deactivated, or changed their password); one query for all of them."""
    revoked: dict[int, str] = await database_sync_to_async(tokens.revoked)(
        [str(scope.get(TOKEN_KEY, "")) for scope in scopes])
    return revoked


def cross_origin(scope: dict[str, Any]) -> str | None:
    """The origin of another site whose page opened this token socket (``SameOriginValidator`` let it in for its
    token), or None."""
    value = scope.get(CROSS_ORIGIN_KEY)
    return value if isinstance(value, str) else None


# ---- what revokes it ----------------------------------------------------------------------------------------------
def revocation(user: Any, session: str | None = None) -> dict[str, Any]:
    """Who a close message is addressed to: every socket of ``user`` (a user or a pk), or, with ``session`` (a
    session digest), only the sockets that session authenticated."""
    return {"user": user_key(user), "session": session}


def revoked_by(identity: Identity, message: dict[str, Any]) -> bool:
    """Whether a close message (:func:`revocation`) reaches a socket of ``identity``; a message that names no
    user reaches every socket."""
    user, session = message.get("user"), message.get("session")
    if user is not None and identity.key != user:
        return False
    return session is None or identity.session == session


def watched_session(scope: dict[str, Any], identity: Identity) -> str | None:
    """The key of the session whose end closes this socket (checked every ``SESSION_CHECK_INTERVAL``), or None
    for a socket no session authenticated."""
    if identity.session is None:
        return None
    return session_key_of(scope)


def logout_session(request: Any) -> str | None:
    """The digest of the session a logout ended (for ``LOGOUT_CLOSES = "session"``), or None."""
    return session_tag(getattr(getattr(request, "session", None), "session_key", None))


def admitted_login(scope: dict[str, Any], identity: Identity) -> SessionLogin | None:
    """What a socket a session authenticated was let in with (its user's password and session auth hash), for the
    session check; None for a socket no session authenticated."""
    return login_of(scope.get("user")) if identity.session is not None else None


_T = TypeVar("_T")


def ended_sessions(sockets: dict[_T, tuple[str, SessionLogin | None]]) -> dict[_T, str]:
    """The sockets among ``sockets`` (each with the session key it watches, :func:`watched_session`, and its
    :func:`admitted_login`) whose session Django no longer accepts, with why (sync: it queries the session store
    and the users)."""
    live = live_sessions([key for key, _login in sockets.values()])
    changed = changed_passwords({login for _key, login in sockets.values() if login is not None})
    out: dict[_T, str] = {}
    for conn, (key, login) in sockets.items():
        if key not in live:
            out[conn] = "its session ended"
        elif login is not None and login in changed:
            out[conn] = "its user's password changed"
    return out


# ---- a session that moved to a new key -------------------------------------------------------------------------
def session_move(user_id: Any, old_key: str, new_key: str) -> dict[str, Any]:
    """Whom a "the session moved" message is for (the sockets of ``user_id``'s session ``old_key``), and the new
    key sealed so that only those sockets can read it."""
    return {"user": user_key(user_id), "session": session_tag(old_key), "key": seal_key(new_key, old_key)}


async def followed(scope: dict[str, Any], identity: Identity, session: str, sealed: str) -> \
        tuple[Any, SessionLogin, Identity] | None:
    """For a socket of ``identity`` authenticated by the session tagged ``session``: the session it moves to (the
    key ``sealed`` carries, :func:`session_move`), what it is let in with there and its new :class:`Identity`;
    None when the socket is not of that session, or the new session does not let its user in as Django would."""
    old_key = watched_session(scope, identity)
    if identity.session != session or old_key is None:
        return None
    new_key = open_key(sealed, old_key)
    found = await database_sync_to_async(follow_login)(new_key, identity.user_id) if new_key else None
    if found is None or new_key is None:
        return None
    new_session, login = found
    return new_session, login, dataclasses.replace(identity, session=session_tag(new_key))
