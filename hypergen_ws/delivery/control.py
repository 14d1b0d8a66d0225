"""Control messages to every server process: "close these sockets", "check these sockets again".

Logging a user out, deactivating them or taking a permission away happens in one process (often a web worker with
no socket at all); the sockets it concerns live in any process. A control message reaches every hub: this
process's at once, the others' (on Redis) through the channel-layer group :data:`CONTROL_GROUP`, which every hub
that serves sockets listens to (``Hub.listen``). Features register what to do with them (:func:`add_handler`).
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import secrets
from collections.abc import Callable
from typing import Any

from ..backends.layers import bypasses_layer, get_layer
from ..core import conf
from ..core.logs import fields
from ..core.sync import background_loop
from .hub import Hub, local_hubs

logger = logging.getLogger("hypergen_ws")

#: The channel-layer group every serving process listens to for control messages.
CONTROL_GROUP = "hgws.control"
#: The channel-layer message type of a control message.
CONTROL_TYPE = "hypergen_ws.control"

Handler = Callable[[Hub, dict[str, Any]], None]
_handlers: list[Handler] = []
_origin: list[tuple[int, str]] = []


def add_handler(handler: Handler) -> None:
    """Call ``handler(hub, message)`` in each hub's event loop for every control message (registered once)."""
    if handler not in _handlers:
        _handlers.append(handler)


def process_token() -> str:
    """Marks control messages this process sent, so that it does not handle its own twice (new after a fork)."""
    pid = os.getpid()
    if not _origin or _origin[0][0] != pid:
        _origin[:] = [(pid, f"{pid}.{secrets.token_hex(6)}")]
    return _origin[0][1]


def dispatch(hub: Hub, message: dict[str, Any]) -> None:
    """Hand a control message to every handler, in ``hub``'s event loop."""
    for handler in list(_handlers):
        try:
            handler(hub, message)
        except Exception:
            logger.exception("A control message (%s) could not be handled", message.get("action"),
                             extra=fields("control_failed", code=str(message.get("action"))))


def _dispatch_locally(message: dict[str, Any]) -> None:
    """Hand ``message`` to every hub of this process, each in its own event loop.

    In a fresh context: the sender may be a sync view inside ``sync_to_async``, whose context would make every
    database call of the handlers look like a deadlock to asgiref.
    """
    for hub in local_hubs():
        try:
            hub.loop.call_soon_threadsafe(dispatch, hub, message, context=contextvars.Context())
        except RuntimeError:  # the loop closed meanwhile
            continue


def _from_layer(hub: Hub) -> Callable[[dict[str, Any]], None]:
    def receive(message: dict[str, Any]) -> None:
        if message.get("type") == CONTROL_TYPE and message.get("origin") != process_token():
            dispatch(hub, message)

    return receive


async def listen(hub: Hub) -> None:
    """Make ``hub`` receive control messages from other processes (idempotent; a failure is logged, and the
    next socket to connect tries again)."""
    if CONTROL_GROUP in hub.listeners:
        return
    try:
        await hub.listen(CONTROL_GROUP, _from_layer(hub), float(conf.get("PUBLISH_TIMEOUT")))
    except Exception:
        logger.warning("Could not listen to control messages on the channel layer (is Redis down?); logouts in "
                       "other processes reach this one's sockets once it can", exc_info=True,
                       extra=fields("control_listen_failed", group=CONTROL_GROUP))


async def asend(message: dict[str, Any]) -> None:
    """Send a control message to every process: this one's hubs at once, the others through the channel layer
    within ``PUBLISH_TIMEOUT``. Raises ``TimeoutError`` or ``ConnectionError`` when the layer failed (this
    process's sockets were handled anyway)."""
    _dispatch_locally(message)
    layer = get_layer()
    if bypasses_layer(layer):
        return
    timeout = float(conf.get("PUBLISH_TIMEOUT"))
    try:
        async with asyncio.timeout(timeout):
            await layer.group_send(CONTROL_GROUP, {**message, "type": CONTROL_TYPE, "origin": process_token()})
    except TimeoutError:
        raise TimeoutError(f"Sending a control message to the other server processes did not finish within "
                           f"{timeout} s (HYPERGEN_WS['PUBLISH_TIMEOUT']); it may still reach them, so its outcome "
                           "is unknown. Is Redis reachable?") from None
    except Exception as exc:
        raise ConnectionError(f"Sending a control message to the other server processes failed: "
                              f"{type(exc).__name__}: {exc}. Is Redis reachable?") from exc


def send(message: dict[str, Any]) -> None:
    """:func:`asend` from sync code (a view, a signal receiver, a task)."""
    layer = get_layer()
    if bypasses_layer(layer):
        _dispatch_locally(message)
        return
    background_loop().run(asend(message), "Sending a control message", float(conf.get("PUBLISH_TIMEOUT")) + 1)
