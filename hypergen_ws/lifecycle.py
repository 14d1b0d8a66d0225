"""A connection's life around its calls: recovery at connect, presence, expiry.

``HypergenConsumer`` calls these at fixed points: :func:`take_position` first, :func:`before_join` before it
joins its groups, :func:`member` for every join and leave, :func:`connected` after the accept (before its
outbox starts), :func:`disconnected` once it is gone.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from . import protocol, recovery
from .history import remember_group, unstamp

if TYPE_CHECKING:
    from .consumers import HypergenConsumer

logger = logging.getLogger("hypergen_ws")


def take_position(consumer: HypergenConsumer) -> None:
    """Take the client's recovery position (``hgws_seq``/``hgws_epoch``) out of the query string."""
    consumer.recovery_position = recovery.take_position(consumer.scope)


def primary_group(consumer: HypergenConsumer) -> str | None:
    """The group the connection joined at connect: the one recovery and presence follow."""
    return consumer.__dict__.get("_hgws_primary")


def before_join(consumer: HypergenConsumer, groups: list[str]) -> None:
    """Note the primary group; hold its stamped frames aside when the consumer keeps history."""
    if not groups:
        return
    consumer._hgws_primary = groups[0]
    size = consumer.hypergen.history
    remember_group(groups[0], size)
    if size and consumer._hub is not None:
        recovery.hold(consumer, consumer._hub, groups[0])


def member(consumer: HypergenConsumer, group: str, *, leaving: bool = False) -> Any:
    """What stands for ``consumer`` in the hub's members of ``group``: itself for its primary group, else a
    :class:`SecondaryMember` whose frames lose their seq."""
    members = consumer.__dict__.setdefault("_hgws_members", {})
    if leaving:
        return members.pop(group, consumer)
    found = members.get(group)
    if found is None:
        primary = primary_group(consumer)
        found = consumer if primary is None or group == primary else SecondaryMember(consumer)
        members[group] = found
    return found


async def connected(consumer: HypergenConsumer) -> None:
    """After the accept, before the outbox starts: catch up, announce presence, arm the expiry."""
    spec = consumer.hypergen
    group = primary_group(consumer)
    if group is not None and group in consumer.group_names:
        if spec.history:
            await recovery.catch_up(consumer, group, consumer.__dict__.get("recovery_position"))
        if spec.presence_enabled:
            from . import presence

            await presence.joined(consumer, group)
    expires = spec.expires(consumer) if callable(spec.expires) else spec.expires
    if expires:
        consumer._hgws_expires_at = time.time() + expires
        consumer._hgws_expiry = asyncio.get_running_loop().call_later(expires, expire, consumer)
    if consumer._hub is not None and not consumer._hub.bypass_layer:
        from . import cluster

        cluster.ensure_started(consumer._hub)


def expire(consumer: HypergenConsumer) -> None:
    """Close a connection whose lifetime is over with 4408; the client reconnects (and catches up)."""
    if getattr(consumer, "_hgws_gone", False):
        return
    logger.info("Closing a client of %s: its lifetime is over (close %s)", consumer.label, protocol.CLOSE_EXPIRED)
    asyncio.get_running_loop().create_task(consumer.close(protocol.CLOSE_EXPIRED))


def expired(consumer: HypergenConsumer, now: float | None = None) -> bool:
    """Whether the connection's lifetime is over."""
    deadline = consumer.__dict__.get("_hgws_expires_at")
    return deadline is not None and (now or time.time()) >= deadline


async def disconnected(consumer: HypergenConsumer) -> None:
    """Once, when the socket is gone: stop the expiry, drop recovery state, announce the leave."""
    if consumer.__dict__.get("_hgws_gone"):
        return
    consumer._hgws_gone = True
    timer = consumer.__dict__.get("_hgws_expiry")
    if timer is not None:
        timer.cancel()
    group = primary_group(consumer)
    recovery.forget(consumer, consumer._hub, group)
    if consumer._hub is not None and not consumer._hub.bypass_layer:
        from . import cluster

        cluster.changed(consumer._hub)
    if group is not None and consumer.hypergen.presence_enabled:
        from . import presence

        await presence.left(consumer, group)


def check_options(history: Any, presence: Any, expires: Any, where: str) -> tuple[int, bool, Any]:
    """Validate ``@consumer(history=, presence=, expires=)``; return ``(history size, presence, expires)``."""
    from django.core.exceptions import ImproperlyConfigured

    from . import conf

    if history is True:
        history = int(conf.get("HISTORY_SIZE"))
    elif history is False or history is None:
        history = 0
    if not isinstance(history, int) or history < 0:
        raise ImproperlyConfigured(f"{where}: history={history!r}; pass the number of frames to keep, e.g. "
                                   "history=100 (or True for HYPERGEN_WS['HISTORY_SIZE']).")
    if not isinstance(presence, bool):
        raise ImproperlyConfigured(f"{where}: presence={presence!r}; pass True or False.")
    if expires is not None and not callable(expires) and (
            isinstance(expires, bool) or not isinstance(expires, (int, float)) or expires <= 0):
        raise ImproperlyConfigured(f"{where}: expires={expires!r}; pass a number of seconds > 0, or a callable "
                                   "taking the consumer and returning one (or None for no limit).")
    return history, presence, expires


# ---- memberships of groups joined after connect -----------------------------------------------------------

class _Unstamping:
    __slots__ = ("consumer",)

    def __init__(self, consumer: HypergenConsumer) -> None:
        self.consumer = consumer

    def push(self, message: dict[str, Any]) -> None:
        text = message.get("text")
        if text is not None and text.startswith('{"seq":'):
            message = {"type": "websocket.send", "text": unstamp(text)}
        self.consumer.outbox.push(message)

    def push_text(self, text: str) -> None:
        self.push({"type": "websocket.send", "text": text})


class SecondaryMember:
    """A consumer's membership of a group joined with ``join()``: its frames reach the socket without a seq.

    Recovery follows the group a connection joined at connect; a second sequence on the same socket would make
    the client see gaps that are not there.
    """

    __slots__ = ("consumer", "outbox")

    def __init__(self, consumer: HypergenConsumer) -> None:
        self.consumer = consumer
        self.outbox = _Unstamping(consumer)

    def enqueue_layer_message(self, message: dict[str, Any]) -> None:
        self.consumer.enqueue_layer_message(message)

    def __getattr__(self, name: str) -> Any:  # label, url_kwargs, ...: the consumer's
        return getattr(self.consumer, name)
