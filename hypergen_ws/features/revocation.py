"""Closes that reach a socket whatever it is doing: open, or still connecting (docs/security.rst).

A close (a logout, ``disconnect_user()``) is handled in each hub's event loop. It closes the sockets that are
open, and marks those counted but not open yet (:class:`Admitted`), which close once they are. A socket whose
connect began before the close arrived but that was not counted yet finds it in :class:`Revocations` when it is
counted (``AccessFeature.admit``): a socket is counted first and then looks, so none falls between the two.

A session that moved to a new key (``update_session_auth_hash()``, :mod:`hypergen_ws.middleware`) takes its
sockets along (:func:`follow`) once the new session lets their user in.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from ..core import identity as identities
from ..core.identity import Identity, SessionLogin
from ..core.logs import fields
from ..core.state import Lifecycle
from .base import Connection

logger = logging.getLogger("hypergen_ws")

#: Seconds a close is remembered for the sockets whose connect was under way when it arrived (far longer than a
#: connect takes; a socket that was already counted is marked instead).
REVOCATION_MEMORY = 60.0


@dataclass(frozen=True, slots=True)
class Revocation:
    """A close that reached a hub at ``at`` (``time.monotonic()``): of ``user``'s sockets (every user's when None),
    of one ``session`` of theirs when given."""

    at: float
    user: str | None
    session: str | None
    code: int
    reason: str

    def covers(self, identity: Identity) -> bool:
        """Whether this close is meant for a socket of ``identity`` (``core.identity.revoked_by``)."""
        return identities.revoked_by(identity, {"user": self.user, "session": self.session})


class Revocations:
    """The closes one hub handled in the last :data:`REVOCATION_MEMORY` seconds, by user."""

    def __init__(self) -> None:
        self._order: deque[Revocation] = deque()
        self._by_user: dict[str | None, deque[Revocation]] = {}

    def __len__(self) -> int:
        return len(self._order)

    def record(self, revocation: Revocation) -> None:
        self._order.append(revocation)
        self._by_user.setdefault(revocation.user, deque()).append(revocation)
        self._forget_old(revocation.at)

    def since(self, started: float, identity: Identity) -> Revocation | None:
        """A close meant for ``identity`` that arrived at ``started`` or later (``time.monotonic()``), or None."""
        if not self._order:
            return None
        self._forget_old(time.monotonic())
        for user in (identity.key, None):
            for revocation in self._by_user.get(user, ()):
                if revocation.at >= started and revocation.covers(identity):
                    return revocation
        return None

    def _forget_old(self, now: float) -> None:
        while self._order and now - self._order[0].at > REVOCATION_MEMORY:
            old = self._order.popleft()
            mine = self._by_user[old.user]
            mine.popleft()
            if not mine:
                del self._by_user[old.user]


@dataclass(frozen=True, slots=True)
class Admitted:
    """What live authorization keeps about a counted socket (``conn.state.extras["access"]``); replaced, never
    changed, so that every socket without a session shares :data:`NO_LOGIN`."""

    #: The password its session let it in with (None for a socket without a session).
    login: SessionLogin | None
    #: A close that arrived while it was still connecting: ``(code, reason)``, applied once it is open.
    revoked: tuple[int, str] | None = None


#: What a counted socket without a session (an anonymous one, a token's) is admitted with.
NO_LOGIN = Admitted(None)


def revoke(conns: Iterable[Connection], revocation: Revocation) -> list[Connection]:
    """Mark the sockets among ``conns`` that ``revocation`` covers and that are still connecting; return the open
    ones it covers, for the caller to close."""
    to_close = []
    for conn in conns:
        identity, admitted = conn.state.identity, conn.state.extras.get("access")
        if identity is None or not revocation.covers(identity):
            continue
        if conn.state.lifecycle is Lifecycle.OPEN:
            log_close(conn, revocation.reason, revocation.code)
            to_close.append(conn)
        elif conn.state.lifecycle is Lifecycle.CONNECTING and isinstance(admitted, Admitted):
            log_close(conn, revocation.reason, revocation.code, "once it is open")
            conn.state.extras["access"] = Admitted(admitted.login, (revocation.code, revocation.reason))
    return to_close


def log_close(conn: Connection, reason: str, code: int, when: str = "") -> None:
    """Log that a socket is closed by live authorization."""
    identity = conn.state.identity
    logger.info("Closing a socket of %s to %s (%s; close %s%s)", identity.username if identity else None,
                conn.label, reason, code, f", {when}" if when else "",
                extra=fields("socket_closed", consumer=conn.label, state=conn.state, code=code))


async def follow(conns: Iterable[Connection], session: str, sealed: str) -> int:
    """Move the open sockets among ``conns`` of ``session`` (a tag) to the session's new key, which ``sealed``
    carries, when that session lets their user in. Returns how many moved."""
    moved = 0
    for conn in list(conns):
        identity = conn.state.identity
        if conn.state.lifecycle is not Lifecycle.OPEN or identity is None:
            continue
        found = await identities.followed(conn.scope, identity, session, sealed)
        if found is None or conn.state.identity is not identity:
            continue
        new_session, login, conn.state.identity = found
        conn.scope["session"] = new_session
        conn.request.session = new_session
        conn.state.extras["access"] = Admitted(login)
        logger.info("A socket of %s to %s follows its session to a new key", identity.username, conn.label,
                    extra=fields("socket_followed_session", consumer=conn.label, state=conn.state))
        moved += 1
    return moved
