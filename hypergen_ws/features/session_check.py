"""The session check: the sockets of a session Django would no longer let in are closed with 4401
(docs/security.rst).

Every half ``SESSION_CHECK_INTERVAL`` a hub asks, for the sessions behind its open sockets, whether each still
exists (flushed, expired: :func:`~hypergen_ws.core.sessions.live_sessions`) and whether its user's password is still
the one the socket was let in with (:func:`~hypergen_ws.core.sessions.changed_passwords`): one query each. A socket
that fails two checks in a row is closed, within ``SESSION_CHECK_INTERVAL`` of the change. The second check leaves
room for a session that moved to a new key in the same moment (``update_session_auth_hash()`` after a password
change): its sockets follow it (:mod:`hypergen_ws.middleware`) and pass.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from channels.db import database_sync_to_async

from ..core import conf, protocol
from ..core.identity import watched_session
from ..core.logs import fields
from ..core.sessions import SessionLogin, changed_passwords, live_sessions
from ..core.state import Lifecycle
from .base import Connection

logger = logging.getLogger("hypergen_ws")

#: Seconds between checks while ``SESSION_CHECK_INTERVAL`` is None (the check is off; it may be switched on).
IDLE_INTERVAL = 5.0


def failing(sockets: dict[Connection, tuple[str, SessionLogin | None]]) -> dict[Connection, str]:
    """The sockets among ``sockets`` (each with its session key and login) whose session Django no longer
    accepts, with why (sync: it queries the session store and the users)."""
    live = live_sessions([key for key, _login in sockets.values()])
    changed = changed_passwords({login for _key, login in sockets.values() if login is not None})
    out: dict[Connection, str] = {}
    for conn, (key, login) in sockets.items():
        if key not in live:
            out[conn] = "its session ended"
        elif login is not None and login in changed:
            out[conn] = "its user's password changed"
    return out


async def check_sessions(sockets: Callable[[], Iterable[Connection] | None],
                         login: Callable[[Connection], SessionLogin | None],
                         spawn: Callable[[Coroutine[Any, Any, Any]], None]) -> None:
    """Check the sessions of the open ``sockets()`` for as long as it gives any (None: the hub is gone), closing
    through ``spawn`` those that failed twice in a row; ``login(conn)`` is what a socket was let in with."""
    failures = 0
    suspects: set[Connection] = set()
    while True:
        interval = conf.get("SESSION_CHECK_INTERVAL")
        await asyncio.sleep(float(interval) / 2 if interval else IDLE_INTERVAL)
        conns = sockets()
        if conns is None:
            return
        if not interval:
            continue
        mine: dict[Connection, tuple[str, SessionLogin | None]] = {}
        for conn in conns:
            identity = conn.state.identity
            key = watched_session(conn.scope, identity) if identity is not None else None
            if conn.state.lifecycle is Lifecycle.OPEN and key is not None:
                mine[conn] = (key, login(conn))
        if not mine:
            suspects.clear()
            continue
        try:
            found = await database_sync_to_async(failing)(mine)
        except Exception:
            failures += 1
            if failures == 1:
                logger.warning("Checking the sessions of open sockets failed; trying again", exc_info=True,
                               extra=fields("session_check_failed"))
            continue
        failures = 0
        for conn, why in found.items():
            if conn in suspects and login(conn) == mine[conn][1]:
                logger.info("Closing a socket of %s to %s: %s (close %s)",
                            conn.state.identity.username if conn.state.identity else None, conn.label, why,
                            protocol.CLOSE_NOT_AUTHENTICATED,
                            extra=fields("socket_closed", consumer=conn.label, state=conn.state,
                                         code=protocol.CLOSE_NOT_AUTHENTICATED))
                spawn(conn.close(protocol.CLOSE_NOT_AUTHENTICATED))
        suspects = {conn for conn in found if conn not in suspects}
