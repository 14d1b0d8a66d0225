"""What a handshake or a request presents to say who it is (docs/clients.rst): behind :mod:`hypergen_ws.core.identity`.

``core.identity`` decides who the user is; this module only reads the credentials a connection or a request
carries (the ``Authorization: Bearer`` header, the ``hypergen-ws.bearer.`` subprotocol, the query string when
``TOKEN_QUERY_STRING`` allows it) and says which middleware authenticates. Nothing but ``core.identity`` imports
it (an import-linter contract); its public names are ``core.identity``'s.
"""
from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from channels.auth import AuthMiddleware

from . import conf, protocol

__all__ = ["MalformedCredential", "NotAuthenticated", "authenticates", "bearer_credential", "credential_of",
           "matches_any_key", "presents_token", "subprotocol"]


class NotAuthenticated(Exception):
    """A connection presented a credential that authenticates no one; ``str()`` says why (for the log)."""


# ---- a handshake's token ----------------------------------------------------------------------------------------
def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def credential_of(scope: dict[str, Any]) -> tuple[str, str] | None:
    """The token a handshake presents, and where: the ``Authorization: Bearer`` header, the subprotocol form
    (``hypergen-ws.bearer.<base64url>``), or the query string (``?hgws_token=``, only with
    ``TOKEN_QUERY_STRING``); None when it presents none. :class:`NotAuthenticated` when it presents one in a
    form that is refused."""
    try:
        token = bearer_credential(_header(scope, b"authorization"))
    except MalformedCredential:
        raise NotAuthenticated("the Authorization header is not 'Bearer <token>'") from None
    if token is not None:
        return token, "Authorization header"
    for offered in scope.get("subprotocols") or ():
        if isinstance(offered, str) and offered.startswith(protocol.BEARER_SUBPROTOCOL):
            encoded = offered[len(protocol.BEARER_SUBPROTOCOL):]
            try:
                decoded = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
            except (binascii.Error, ValueError):
                raise NotAuthenticated("the subprotocol token is not unpadded base64url") from None
            return decoded, "subprotocol"
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    if protocol.TOKEN_PARAM in query:
        for name, value in parse_qsl(query):
            if name == protocol.TOKEN_PARAM:
                if not conf.get("TOKEN_QUERY_STRING"):
                    raise NotAuthenticated(
                        f"tokens in the query string (?{protocol.TOKEN_PARAM}=) are off, as they land in access "
                        "logs: send 'Authorization: Bearer <token>', or set HYPERGEN_WS['TOKEN_QUERY_STRING'] = True")
                return value, "query string"
    return None


def presents_token(scope: dict[str, Any]) -> bool:
    """Whether a handshake presents a token (in a form that is accepted or not): then the consumer authenticates
    it, or refuses the socket with 4401; a cookie never stands in for it."""
    try:
        return credential_of(scope) is not None
    except NotAuthenticated:
        return True


def subprotocol(scope: dict[str, Any]) -> str | None:
    """The subprotocol the server selects in its accept: ``hypergen-ws`` when the client offered it."""
    offered = scope.get("subprotocols") or ()
    return protocol.SUBPROTOCOL if protocol.SUBPROTOCOL in offered else None


# ---- middleware and HTTP credentials ------------------------------------------------------------------------------
_AUTH_NAME = "auth"


def authenticates(middleware: object) -> bool:
    """Whether an ASGI middleware in front of a consumer sets ``scope["user"]``: Channels' ``AuthMiddleware`` (and
    so ``AuthMiddlewareStack``), or a class of the project's whose name says *Auth*."""
    return isinstance(middleware, AuthMiddleware) or _AUTH_NAME in type(middleware).__name__.lower()


class MalformedCredential(ValueError):
    """An ``Authorization`` header that is not ``Bearer <credential>``."""


def bearer_credential(header: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer <credential>`` header; None when there is no header,
    :class:`MalformedCredential` when it is not of that form."""
    if not header:
        return None
    scheme, _, given = header.strip().partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        raise MalformedCredential("Malformed Authorization header: send 'Authorization: Bearer <key>'.")
    return given


def matches_any_key(candidate: str, keys: Iterable[bytes]) -> bool:
    """Whether ``candidate`` is one of ``keys``, compared in constant time against every key (the time taken does
    not depend on which one matched)."""
    given = candidate.encode("latin-1", "replace")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(key, given)
    return matched
