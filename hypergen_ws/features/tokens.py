"""Sockets opened with a connection token (docs/clients.rst): where they may come from, and their expiry.

Who a token authenticates is decided in :mod:`hypergen_ws.core.identity`; this feature keeps a token socket
honest while it is open:

* **Origin.** A token socket that a page of another site opened (``SameOriginValidator`` let it in for its
  token) stays only if its consumer allows that origin: ``@consumer(cross_origin=True)`` for any site, or a list
  like ``["https://app.example.com", "https://*.example.com"]``. Others are closed with 4403.
* **Revocation.** Every ``SESSION_CHECK_INTERVAL`` seconds a hub checks the tokens of its open token sockets in one
  query: a socket whose user was deleted or deactivated, or changed their password since the token was issued, is
  closed with 4401 (``disconnect_user`` and a logout close them at once, through ``features.access``).
* **Expiry.** A token that expires while its socket is open: the socket is told
  ``{"type": "token", "event": "expiring", "expires_at": ...}`` shortly before (a quarter of the token's
  remaining life, at most a minute); the client answers with ``{"type": "token", "token": "<a new one>"}``,
  checked like the first (same user; 4401 otherwise) and acknowledged with ``"event": "refreshed"``. A socket
  whose token expires without one is closed with 4401.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from ..core import conf, identity, protocol
from ..core.logs import fields
from ..core.origins import Pattern, parse_origin, parse_pattern
from ..core.state import Lifecycle
from ..delivery.hub import Hub
from .base import Connection, Feature, Option, Options, PerHub

logger = logging.getLogger("hypergen_ws")

#: At most this many seconds before a token expires, its socket is asked for a new one.
NOTICE = 60.0

_tasks: set[asyncio.Task[None]] = set()
#: Seconds between checks while ``SESSION_CHECK_INTERVAL`` is None (off; it may be switched on).
IDLE_INTERVAL = 5.0


class Sockets(PerHub[set[Connection]]):
    """The open sockets of each hub that a hypergen_ws token authenticated, and each hub's check of them."""

    def __init__(self) -> None:
        super().__init__(set)
        self.checks: dict[Hub, asyncio.Task[None]] = {}

    def forget(self, hub: Hub) -> None:
        self.checks.pop(hub, None)


sockets = Sockets()


#: The ``@consumer`` options this feature reads, with their defaults (``hypergen_ws.features``).
OPTIONS: dict[str, Option] = {
    "cross_origin": Option(False, "``cross_origin`` lets token sockets from other sites' pages in: True for any "
                                  "site, or a list of origins like ``[\"https://app.example.com\"]`` "
                                  "(docs/clients.rst; cookie sockets never)."),
}
#: What ``@consumer`` exposes about this feature while it is off (``declares()`` says it while on).
EXPOSES: dict[str, Any] = {}


def configure(options: Options) -> TokenFeature:
    """``cross_origin=`` of ``@consumer``: False (the default), True, or a list of origins."""
    value = options.cross_origin
    if isinstance(value, bool):
        return TokenFeature(value, ())
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ImproperlyConfigured(f"{options.where}: cross_origin={value!r}; pass True (token sockets from any site), "
                                   "False, or a list like ['https://app.example.com'].")
    try:
        patterns = tuple(parse_pattern(entry) for entry in value)
    except (ValueError, AttributeError, TypeError) as exc:
        raise ImproperlyConfigured(f"{options.where}: cross_origin: {exc}") from None
    return TokenFeature(False, patterns)


class TokenFeature(Feature):
    """Refuses token sockets from origins the consumer does not allow; asks for a new token before expiry."""

    name = "tokens"

    def __init__(self, any_origin: bool, patterns: tuple[Pattern, ...]) -> None:
        self.any_origin = any_origin
        self.patterns = patterns

    def allows(self, origin: str) -> bool:
        """Whether a token socket from ``origin`` (another site's page) may stay."""
        if self.any_origin:
            return True
        parsed = parse_origin(origin)
        return parsed is not None and any(pattern.matches(parsed) for pattern in self.patterns)

    async def admit(self, conn: Connection) -> tuple[int, str] | None:
        origin = identity.cross_origin(conn.scope)
        if origin is None or self.allows(origin):
            return None
        logger.warning("Refused a token socket to %s from the page of %s (close %s): the consumer does not allow "
                       "that origin; allow it with @consumer(cross_origin=[%r])", conn.label, origin,
                       protocol.CLOSE_PERMISSION_DENIED, origin,
                       extra=fields("cross_origin_refused", consumer=conn.label, state=conn.state,
                                    code=protocol.CLOSE_PERMISSION_DENIED))
        return protocol.CLOSE_PERMISSION_DENIED, "Sockets from this origin are not allowed."

    async def connected(self, conn: Connection) -> None:
        self._arm(conn)
        who, hub = conn.state.identity, conn.hub
        if who is not None and who.via == "token" and hub is not None:
            sockets.of(hub).add(conn)
            task = sockets.checks.get(hub)
            if task is None or task.done():
                sockets.checks[hub] = hub.loop.create_task(_check_tokens(hub))

    def _arm(self, conn: Connection) -> None:
        self._disarm(conn)
        who = conn.state.identity
        if who is None or who.expires_at is None:
            return
        left = who.expires_at - time.time()
        loop = asyncio.get_running_loop()
        notice = max(0.0, left - min(NOTICE, left / 4))
        conn.state.extras[self.name] = (loop.call_later(notice, _notify, conn, who.expires_at),
                                        loop.call_later(max(0.0, left), _expire, conn, who.expires_at))

    def _disarm(self, conn: Connection) -> None:
        for timer in conn.state.extras.pop(self.name, ()):
            timer.cancel()

    async def receive(self, conn: Connection, message: Mapping[str, Any]) -> bool:
        who = conn.state.identity
        text = message.get("text")
        if who is None or who.via != "token" or not isinstance(text, str):
            return False
        token = protocol.refresh_token_of(text)
        if token is None:
            return False
        try:
            conn.state.identity = await identity.refresh(conn.scope, who, token)
        except identity.NotAuthenticated as exc:
            logger.warning("Closing a socket of %s to %s (close %s): its new token was refused: %s", who.username,
                           conn.label, protocol.CLOSE_NOT_AUTHENTICATED, exc,
                           extra=fields("token_refused", consumer=conn.label, state=conn.state,
                                        code=protocol.CLOSE_NOT_AUTHENTICATED))
            await conn.close(protocol.CLOSE_NOT_AUTHENTICATED)
            return True
        logger.debug("A socket of %s to %s took a new token", who.username, conn.label,
                     extra=fields("token_refreshed", consumer=conn.label, state=conn.state))
        self._arm(conn)
        expires_at = conn.state.identity.expires_at
        if expires_at is not None:
            conn.send_text(protocol.token_frame("refreshed", expires_at))
        return True

    async def disconnected(self, conn: Connection) -> None:
        self._disarm(conn)
        if conn.hub is not None:
            sockets.of(conn.hub).discard(conn)


def _current(conn: Connection, expires_at: float) -> bool:
    who = conn.state.identity
    return conn.state.lifecycle is Lifecycle.OPEN and who is not None and who.expires_at == expires_at


def _notify(conn: Connection, expires_at: float) -> None:
    if _current(conn, expires_at):
        conn.send_text(protocol.token_frame("expiring", expires_at))


def _expire(conn: Connection, expires_at: float) -> None:
    if not _current(conn, expires_at):
        return
    logger.info("Closing a socket of %s to %s: its token expired without a refresh (close %s)",
                conn.state.identity.username if conn.state.identity else None, conn.label,
                protocol.CLOSE_NOT_AUTHENTICATED,
                extra=fields("token_expired", consumer=conn.label, state=conn.state,
                             code=protocol.CLOSE_NOT_AUTHENTICATED))
    task = asyncio.get_running_loop().create_task(conn.close(protocol.CLOSE_NOT_AUTHENTICATED))
    _tasks.add(task)  # referenced until done: an unreferenced task may be garbage-collected mid-way
    task.add_done_callback(_tasks.discard)


async def _check_tokens(hub: Hub) -> None:
    """Close the token sockets of ``hub`` whose token no longer authenticates its user; ends with the last one."""
    failures = 0
    while True:
        interval = conf.get("SESSION_CHECK_INTERVAL")
        await asyncio.sleep(float(interval) if interval else IDLE_INTERVAL)
        conns = [c for c in sockets.by_hub.get(hub, ()) if c.state.lifecycle is Lifecycle.OPEN]
        if not conns:
            if not sockets.by_hub.get(hub):
                return
            continue
        if not interval:
            continue
        try:
            revoked = await identity.revoked_tokens([conn.scope for conn in conns])
        except Exception:
            failures += 1
            if failures == 1:
                logger.warning("Checking the tokens of open sockets failed; trying again", exc_info=True,
                               extra=fields("session_check_failed"))
            continue
        failures = 0
        for index, why in revoked.items():
            conn = conns[index]
            logger.info("Closing a socket of %s to %s: its token no longer authenticates it (%s; close %s)",
                        conn.state.identity.username if conn.state.identity else None, conn.label, why,
                        protocol.CLOSE_NOT_AUTHENTICATED,
                        extra=fields("token_revoked", consumer=conn.label, state=conn.state,
                                     code=protocol.CLOSE_NOT_AUTHENTICATED))
            task = hub.loop.create_task(conn.close(protocol.CLOSE_NOT_AUTHENTICATED))
            _tasks.add(task)
            task.add_done_callback(_tasks.discard)
