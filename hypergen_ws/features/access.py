"""Live authorization: a socket stays open only while its user may keep it (docs/security.rst).

Permissions are checked at connect and before every call; this feature also closes sockets that are only
listening, in every server process:

* a **logout** (``user_logged_out``) closes every socket of that user with 4401 at once, in every process
  (``LOGOUT_CLOSES = "session"``: only the sockets of the session that logged out);
* a session that was **flushed** or **expired**, or whose user's **password changed**, is found by the session
  check (:mod:`hypergen_ws.features.session_check`) and its sockets are closed with 4401; a session that moved to a
  new key (``update_session_auth_hash()``) keeps its sockets (:mod:`hypergen_ws.middleware`);
* :func:`disconnect_user` closes every socket of a user (deactivation, "log out everywhere");
* :func:`recheck_permissions` checks the sockets of a user, or all of them, against their consumer's ``perm``
  again and closes with 4403 those that no longer pass (4401 when the user is no longer authenticated).

A close reaches the sockets that are open, and those whose connect was under way in the process when it arrived
(:mod:`hypergen_ws.features.revocation`): a socket either is open when the close is handled, or it finds the
close when it opens.
The messages travel through :mod:`hypergen_ws.delivery.control`. The cap on a user's sockets
(``MAX_CONNECTIONS_PER_USER``) is :mod:`hypergen_ws.features.connlimit`.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from ..core import conf, protocol
from ..core import identity as identities
from ..core.identity import SessionLogin, user_key
from ..core.logs import fields
from ..core.state import Lifecycle
from ..core.sync import refuse_in_loop
from ..delivery import control
from ..delivery.hub import Hub
from . import session_check
from .base import Connection, Feature, Option, Options, PerHub
from .revocation import NO_LOGIN, Admitted, Revocation, Revocations, follow, log_close, revoke

logger = logging.getLogger("hypergen_ws")

Table = dict[str, set[Connection]]  # identity key -> the open sockets of that identity in one hub
#: The key all anonymous sockets share in a table: each is a user of its own, but none is ever looked up by its
#: key (a close or a recheck of everyone goes through them all), so one set holds them instead of a set each.
ANONYMOUS = "a:"


def _key(identity: identities.Identity) -> str:
    return identity.key if identity.is_user else ANONYMOUS


class Tables(PerHub[Table]):
    """The sockets of each hub, by who they are, each hub's recent closes and its session check."""

    def __init__(self) -> None:
        super().__init__(dict)
        self.watchers: dict[Hub, asyncio.Task[None]] = {}
        self.revoked: dict[Hub, Revocations] = {}

    def revocations(self, hub: Hub) -> Revocations:
        found = self.revoked.get(hub)
        if found is None:
            self.of(hub)  # (drops the tables of closed event loops)
            found = self.revoked[hub] = Revocations()
        return found

    def forget(self, hub: Hub) -> None:
        self.watchers.pop(hub, None)
        self.revoked.pop(hub, None)


tables = Tables()
_tasks: set[asyncio.Task[Any]] = set()


#: The ``@consumer`` options this feature reads, with their defaults (``hypergen_ws.features``).
OPTIONS: dict[str, Option] = {}
#: What ``@consumer`` exposes about this feature while it is off (``declares()`` says it while on).
EXPOSES: dict[str, Any] = {}


def configure(options: Options) -> AccessFeature:
    """Always on."""
    control.add_handler(handle_control)
    return AccessFeature()


class AccessFeature(Feature):
    """Counts a socket among its user's, refuses one whose user was closed out while it connected, and forgets
    it when it is gone."""

    name = "access"

    async def admit(self, conn: Connection) -> tuple[int, str] | None:
        hub, identity = conn.hub, conn.state.identity
        if hub is None or identity is None:
            return None
        if control.CONTROL_GROUP not in hub.listeners:  # in the background: a frozen Redis must not hold the connect
            _spawn(hub, control.listen(hub))
        tables.of(hub).setdefault(_key(identity), set()).add(conn)
        login = identities.admitted_login(conn.scope, identity)
        conn.state.extras[self.name] = NO_LOGIN if login is None else Admitted(login)
        if identity.session is not None:
            _watch(hub)
        # Registered first, then the closes that arrived since the connect began: none falls between the two.
        revocation = tables.revocations(hub).since(conn.state.created, identity)
        if revocation is not None:
            log_close(conn, revocation.reason, revocation.code, "while it connected")
            return revocation.code, revocation.reason
        return None

    async def connected(self, conn: Connection) -> None:
        admitted = conn.state.extras.get(self.name)
        if isinstance(admitted, Admitted) and admitted.revoked is not None:
            await conn.close(admitted.revoked[0])

    async def disconnected(self, conn: Connection) -> None:
        identity = conn.state.identity
        if conn.state.extras.pop(self.name, None) is None or conn.hub is None or identity is None:
            return
        table = tables.of(conn.hub)
        key = _key(identity)
        mine = table.get(key)
        if mine is not None:
            mine.discard(conn)
            if not mine:
                del table[key]


def _spawn(hub: Hub, coro: Coroutine[Any, Any, Any]) -> None:
    task = hub.loop.create_task(coro)
    _tasks.add(task)  # referenced until done: an unreferenced task may be garbage-collected mid-way
    task.add_done_callback(_tasks.discard)


def _open(conns: set[Connection]) -> list[Connection]:
    return [c for c in conns if c.state.lifecycle is Lifecycle.OPEN]


# ---- control messages (in each hub's event loop) --------------------------------------------------------------
def handle_control(hub: Hub, message: dict[str, Any]) -> None:
    """Close, follow or recheck this hub's sockets as a control message says."""
    action = message.get("action")
    user, session = message.get("user"), message.get("session")
    if action == "close":
        code = message.get("code")
        code = code if isinstance(code, int) else protocol.CLOSE_NOT_AUTHENTICATED
        reason = str(message.get("reason") or "closed by the server")
        revocation = Revocation(time.monotonic(), user if isinstance(user, str) else None,
                                session if isinstance(session, str) else None, code, reason)
        tables.revocations(hub).record(revocation)  # for the sockets still connecting, before they are counted
        for conns in list(tables.by_hub.get(hub, {}).values()):
            for conn in revoke(list(conns), revocation):
                _spawn(hub, conn.close(revocation.code))
        return
    table = tables.by_hub.get(hub)
    if not table:
        return
    if action == "follow" and isinstance(user, str) and isinstance(session, str):
        sealed = message.get("key")
        if isinstance(sealed, str):
            _spawn(hub, follow(table.get(user, set()), session, sealed))
    elif action == "recheck":
        _spawn(hub, recheck_hub(hub, user if isinstance(user, str) else None))


async def recheck_hub(hub: Hub, user: str | None) -> int:
    """Check this hub's sockets (of ``user``, or all) against their consumer's ``perm``; close those that fail.

    Returns how many were closed. Each identity's user is read once (``core.identity.current_user``), and its
    permissions are cached on it.
    """
    users: dict[identities.Identity, Any] = {}
    closed = 0
    for key, conns in list(tables.by_hub.get(hub, {}).items()):
        if user is not None and key != user:
            continue
        for conn in _open(conns):
            permission = conn.spec.permission
            if permission.public:
                continue
            who = conn.state.identity
            current = users.get(who) if who is not None else None
            if current is None:
                current = await conn.current_user()
                if who is not None:
                    users[who] = current
            if await permission.allows(current, conn.url_kwargs):
                continue
            code = identities.refusal_code(current)
            logger.info("Closing a socket of %s to %s: it no longer passes perm=%s (close %s)",
                        conn.state.identity.username if conn.state.identity else None, conn.label,
                        permission.describe(), code,
                        extra=fields("socket_closed", consumer=conn.label, state=conn.state, code=code))
            await conn.close(code)
            closed += 1
    return closed


# ---- sessions that ended without a logout -----------------------------------------------------------------------
def _watch(hub: Hub) -> None:
    task = tables.watchers.get(hub)
    if task is None or task.done():
        tables.watchers[hub] = hub.loop.create_task(session_check.check_sessions(
            lambda: _sockets_of(hub), _login, lambda coro: _spawn(hub, coro)))


def _sockets_of(hub: Hub) -> list[Connection] | None:
    table = tables.by_hub.get(hub)
    return [conn for conns in list(table.values()) for conn in conns] if table else None


def _login(conn: Connection) -> SessionLogin | None:
    admitted = conn.state.extras.get(AccessFeature.name)
    return admitted.login if isinstance(admitted, Admitted) else None


# ---- public API -------------------------------------------------------------------------------------------------
def _close_message(user: Any, code: int, reason: str, session: str | None = None) -> dict[str, Any]:
    if not isinstance(code, int) or isinstance(code, bool) or not (code == 1000 or 3000 <= code <= 4999):
        raise ValueError(f"code={code!r}: use 1000 or a code from 3000 to 4999 (4401 means 'log in again').")
    return {"action": "close", **identities.revocation(user, session), "code": code, "reason": reason}


async def adisconnect_user(user: Any, code: int = protocol.CLOSE_NOT_AUTHENTICATED) -> None:
    """Close every socket of ``user`` (a user object or its pk) in every server process with ``code``.

    Raises ``TimeoutError`` / ``ConnectionError`` when the channel layer could not carry the message to the other
    processes (this process's sockets are closed anyway).
    """
    await control.asend(_close_message(user, code, "disconnect_user()"))


def disconnect_user(user: Any, code: int = protocol.CLOSE_NOT_AUTHENTICATED) -> None:
    """Sync variant of :func:`adisconnect_user`."""
    refuse_in_loop("disconnect_user")
    control.send(_close_message(user, code, "disconnect_user()"))


async def arecheck_permissions(user: Any = None) -> None:
    """Check the open sockets of ``user`` (or of everyone) in every process against their consumer's ``perm``
    again; those that fail are closed with 4403 (4401 when the user is no longer authenticated). Call it after
    changing permissions, groups or ``is_active``."""
    await control.asend({"action": "recheck", "user": None if user is None else user_key(user)})


def recheck_permissions(user: Any = None) -> None:
    """Sync variant of :func:`arecheck_permissions`."""
    refuse_in_loop("recheck_permissions")
    control.send({"action": "recheck", "user": None if user is None else user_key(user)})


def _follow_message(user_id: Any, old_key: str, new_key: str) -> dict[str, Any]:
    return {"action": "follow", **identities.session_move(user_id, old_key, new_key)}


async def afollow_session(user_id: Any, old_key: str, new_key: str) -> None:
    """Tell every process that the session ``old_key`` of the user ``user_id`` moved to ``new_key``
    (``update_session_auth_hash()``, ``login()``): its sockets follow it once the new session lets the user in.
    Raises ``TimeoutError`` / ``ConnectionError`` like :func:`adisconnect_user`."""
    await control.asend(_follow_message(user_id, old_key, new_key))


def follow_session(user_id: Any, old_key: str, new_key: str) -> None:
    """Sync variant of :func:`afollow_session`."""
    refuse_in_loop("follow_session")
    control.send(_follow_message(user_id, old_key, new_key))


#: The values of ``LOGOUT_CLOSES``.
LOGOUT_SCOPES = ("user", "session")


def on_logout(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    """``user_logged_out`` receiver: close, in every process, every socket of the user that logged out
    (``LOGOUT_CLOSES = "user"``, the default) or only those of the session that logged out (``"session"``)."""
    if user is None or getattr(user, "pk", None) is None:
        return
    session = None
    if conf.get("LOGOUT_CLOSES") == "session":
        session = identities.logout_session(request)
        # (a request without a session names none: then every socket of the user closes, never none)
    message = _close_message(user, protocol.CLOSE_NOT_AUTHENTICATED, "logged out", session)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # logout() called inside an event loop: send from it, without blocking it
        task = loop.create_task(_quietly(control.asend(message)))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
        return
    try:
        control.send(message)
    except Exception:
        logger.warning("A logout could not reach the sockets of other server processes (is Redis down?); their "
                       "session check closes them", exc_info=True, extra=fields("logout_not_propagated", user=user))


async def _quietly(coro: Coroutine[Any, Any, None]) -> None:
    try:
        await coro
    except Exception:
        logger.warning("A logout could not reach the sockets of other server processes", exc_info=True,
                       extra=fields("logout_not_propagated"))
