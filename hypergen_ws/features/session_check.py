"""The session check: the sockets of a session Django would no longer let in are closed with 4401
(docs/security.rst).

Every half ``SESSION_CHECK_INTERVAL`` a hub asks, for the sessions behind its open sockets, whether each still
exists (flushed, expired) and whether its user's password is still the one the socket was let in with
(:func:`~hypergen_ws.core.identity.ended_sessions`): one query each. A socket
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
from ..core.identity import SessionLogin, ended_sessions, watched_session
from ..core.logs import fields
from ..core.state import Lifecycle
from .base import Connection

logger = logging.getLogger("hypergen_ws")

#: Seconds between checks while ``SESSION_CHECK_INTERVAL`` is None (the check is off; it may be switched on).
IDLE_INTERVAL = 5.0


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
            found = await database_sync_to_async(ended_sessions)(mine)
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
