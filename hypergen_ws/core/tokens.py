"""Signed connection tokens: who a client without a session is (docs/clients.rst, docs/security.rst).

A token is Django signing (``django.core.signing.Signer`` with ``SECRET_KEY``, ``SECRET_KEY_FALLBACKS`` and a
salt of its own, so no other signed value of the project is ever taken for one) over a small JSON object: the
user's pk, when it was issued, when it expires, and a digest of the user's session auth hash (which changes with
the password, so a password change invalidates every token issued before it). Nothing is stored on the server:
a token is checked by its signature, its expiry and the user it names, as they are when it is presented.

Its characters are ``A-Z a-z 0-9 - _ .`` only: it fits an ``Authorization: Bearer`` header, a URL and an
RFC 6455 subprotocol token unchanged.
"""
from __future__ import annotations

import hashlib
import inspect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.core import signing
from django.utils.crypto import constant_time_compare
from django.utils.module_loading import import_string

from . import conf

__all__ = ["SALT", "TokenRefused", "aissue_token", "authenticate_token", "check_token", "issue_token", "max_age_of",
           "revoked", "user_of"]

#: The salt of hypergen_ws's tokens: a value signed for anything else never passes as one.
SALT = "hypergen_ws.token"
_SEP = "."  # an RFC 6455 token character (Django's default, ":", is not)


class TokenRefused(Exception):
    """A token that does not authenticate anyone; ``str()`` is the reason, for the server's log. ``ours`` is
    False when its signature is not hypergen_ws's (another library's token, or a forged one)."""

    def __init__(self, reason: str, *, ours: bool = True) -> None:
        super().__init__(reason)
        self.ours = ours


@dataclass(frozen=True, slots=True)
class Checked:
    """What a token says, once its signature and expiry were checked."""

    user_pk: Any
    issued_at: float
    expires_at: float
    auth_hash: str


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT, sep=_SEP)


def _digest(auth_hash: str) -> str:
    # A digest, not the hash itself: the token's payload is readable by whoever holds it.
    return hashlib.sha256(f"{SALT}:{auth_hash}".encode()).hexdigest()[:32]


def max_age_of(max_age: float | None) -> float:
    """``max_age`` checked (a positive number of seconds), or ``TOKEN_MAX_AGE``."""
    value = conf.get("TOKEN_MAX_AGE") if max_age is None else max_age
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        where = "HYPERGEN_WS['TOKEN_MAX_AGE']" if max_age is None else "max_age"
        raise ValueError(f"{where}={value!r}: give the token's lifetime as a positive number of seconds, e.g. 3600.")
    return float(value)


def issue_token(user: Any, max_age: float | None = None) -> str:
    """A signed token that authenticates ``user`` on a websocket for ``max_age`` seconds (default
    ``HYPERGEN_WS["TOKEN_MAX_AGE"]``, an hour).

    Send it in the ``Authorization: Bearer <token>`` header of the handshake (or with the JS client's
    ``getToken``). It stops working when it expires, when the user's password changes, and when the user is
    deleted or deactivated; :func:`hypergen_ws.disconnect_user` closes the sockets it opened.
    """
    if user is None or not getattr(user, "is_authenticated", False) or getattr(user, "pk", None) is None:
        raise ValueError(f"issue_token() needs a saved, authenticated user, not {user!r}: an anonymous user has "
                         "nothing to authenticate as.")
    lifetime = max_age_of(max_age)
    pk = user.pk if isinstance(user.pk, (int, str)) else str(user.pk)
    now = time.time()
    payload = {"u": pk, "t": round(now, 3), "e": round(now + lifetime, 3),
               "h": _digest(user.get_session_auth_hash())}
    return _signer().sign_object(payload)


async def aissue_token(user: Any, max_age: float | None = None) -> str:
    """:func:`issue_token` for async code (a lazy ``request.user`` is read in a thread, as Django requires)."""
    return await sync_to_async(issue_token)(user, max_age)


def check_token(token: str, now: float | None = None) -> Checked:
    """What ``token`` says; :class:`TokenRefused` when it is not one of ours, is forged or has expired."""
    try:
        payload = _signer().unsign_object(token)
    except signing.BadSignature:
        raise TokenRefused("the token is forged or not a hypergen_ws token (bad signature)", ours=False) from None
    except ValueError:
        raise TokenRefused("the token is malformed") from None
    if (not isinstance(payload, dict) or not isinstance(payload.get("u"), (int, str))
            or not isinstance(payload.get("e"), (int, float)) or not isinstance(payload.get("h"), str)):
        raise TokenRefused("the token is malformed")
    expires = float(payload["e"])
    if (time.time() if now is None else now) >= expires:
        raise TokenRefused(f"the token expired at {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(expires))}")
    return Checked(payload["u"], float(payload.get("t", 0)), expires, payload["h"])


def user_of(checked: Checked) -> Any:
    """The user a checked token names, as the user is now (sync: it queries the database); :class:`TokenRefused`
    when the user was deleted or deactivated, or changed their password since the token was issued."""
    model = get_user_model()
    try:
        user = model._default_manager.get(pk=checked.user_pk)
    except (model.DoesNotExist, ValueError, TypeError):
        raise TokenRefused(f"the token's user (pk={checked.user_pk!r}) does not exist (deleted?)") from None
    if not getattr(user, "is_active", True):
        raise TokenRefused(f"the token's user {user.get_username()!r} is inactive")
    if not _hash_matches(user, checked.auth_hash):
        raise TokenRefused(f"the token of {user.get_username()!r} was issued before their password changed")
    return user


def revoked(tokens: list[str]) -> dict[int, str]:
    """The tokens (by index) among ``tokens`` of open sockets that no longer authenticate their user, with why:
    the user was deleted or deactivated, or changed their password (sync: one query for all of them). Expiry is
    not checked here (a socket is asked for a new token before it), nor tokens of ``TOKEN_AUTHENTICATOR``."""
    checked: dict[int, Checked] = {}
    for index, token in enumerate(tokens):
        try:
            checked[index] = check_token(token, now=0.0)
        except TokenRefused:
            continue
    model = get_user_model()
    users = {user.pk: user for user in model._default_manager.filter(pk__in={c.user_pk for c in checked.values()})}
    out: dict[int, str] = {}
    for index, token_data in checked.items():
        user = next((u for pk, u in users.items() if str(pk) == str(token_data.user_pk)), None)
        if user is None:
            out[index] = "its user was deleted"
        elif not getattr(user, "is_active", True):
            out[index] = f"its user {user.get_username()!r} was deactivated"
        elif not _hash_matches(user, token_data.auth_hash):
            out[index] = f"the password of {user.get_username()!r} changed"
    return out


def _hash_matches(user: Any, digest: str) -> bool:
    if constant_time_compare(_digest(user.get_session_auth_hash()), digest):
        return True
    # Tokens issued before SECRET_KEY was rotated (SECRET_KEY_FALLBACKS), like Django's sessions.
    return any(constant_time_compare(_digest(fallback), digest) for fallback in user.get_session_auth_fallback_hash())


# ---- who a token authenticates ------------------------------------------------------------------------------
async def authenticate_token(token: str) -> tuple[Any, float | None]:
    """The user a token authenticates and when it expires: a token of :func:`hypergen_ws.issue_token`, or one that
    ``TOKEN_AUTHENTICATOR`` takes. :class:`TokenRefused` says why not."""
    try:
        checked = check_token(token)
    except TokenRefused as exc:
        if exc.ours or not conf.get("TOKEN_AUTHENTICATOR"):
            raise
        return await _external(token)
    return await database_sync_to_async(user_of)(checked), checked.expires_at


@cache
def _authenticator(path: str) -> tuple[Callable[[str], Any], bool]:
    try:
        func = import_string(path)
    except ImportError as exc:
        raise TokenRefused(f"HYPERGEN_WS['TOKEN_AUTHENTICATOR'] = {path!r} cannot be imported ({exc}); name a "
                               "callable (token) -> user | None by its dotted path") from None
    return func, inspect.iscoroutinefunction(func)


async def _external(token: str) -> tuple[Any, float | None]:
    func, is_async = _authenticator(str(conf.get("TOKEN_AUTHENTICATOR")))
    result = await func(token) if is_async else await database_sync_to_async(func)(token)
    user, expires_at = result if isinstance(result, tuple) else (result, None)
    if user is None or not getattr(user, "is_authenticated", False):
        raise TokenRefused("not a hypergen_ws token, and TOKEN_AUTHENTICATOR did not take it")
    if not getattr(user, "is_active", True):
        raise TokenRefused(f"the token's user {user.get_username()!r} is inactive")
    return user, float(expires_at) if expires_at is not None else None
