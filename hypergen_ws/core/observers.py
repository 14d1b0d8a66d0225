"""Listeners on the publish path: every frame published to a group is shown to them, once, at the publish.

Every publisher (``group_send``, ``consumer_command``, their async variants, the HTTP endpoint, the management
command, and what a consumer's function sends to its group) ends in the one publish path, which calls
:func:`published` with the group and the encoded frame before it delivers it. ``hypergen_ws.testing`` records
publishes this way (``capture_publishes()``); instrumentation can do the same::

    from hypergen_ws.core import observers

    def log_publish(record: observers.Publish) -> None:
        print(record.group, record.text)

    observers.add_listener(log_publish)

A listener runs synchronously in the thread that publishes (for a sync publish over Redis, the thread of the
process's publisher loop), so it must be quick and must not block. An exception in a listener is logged and
never reaches the publisher. With no listener the cost is one tuple check per publish.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from .logs import fields, logger

__all__ = ["Listener", "Publish", "add_listener", "listeners", "published", "remove_listener"]


@dataclass(frozen=True, slots=True)
class Publish:
    """One frame published to a group: the group's name and the frame as encoded JSON text (without the
    ``seq``/``epoch`` stamp that history adds)."""

    group: str
    text: str


Listener = Callable[[Publish], None]

_listeners: tuple[Listener, ...] = ()
_lock = threading.Lock()


def add_listener(listener: Listener) -> None:
    """Call ``listener(record)`` for every publish from now on (in every thread) until it is removed."""
    global _listeners
    if not callable(listener):
        raise TypeError(f"add_listener() takes a callable taking one Publish record, not {listener!r}.")
    with _lock:
        _listeners = (*_listeners, listener)


def remove_listener(listener: Listener) -> None:
    """Stop calling ``listener``; ``ValueError`` when it was not added (or was removed already)."""
    global _listeners
    with _lock:
        if listener not in _listeners:
            raise ValueError(f"{listener!r} is not a publish listener; add it with add_listener() first.")
        index = _listeners.index(listener)
        _listeners = _listeners[:index] + _listeners[index + 1:]


def listeners() -> tuple[Listener, ...]:
    """The listeners, in the order they were added."""
    return _listeners


def published(group: str, text: str) -> None:
    """Show a publish to every listener (called by the publish path, once per publish)."""
    current = _listeners
    if not current:
        return
    record = Publish(group, text)
    for listener in current:
        try:
            listener(record)
        except Exception:
            logger.exception("A publish listener (%r) failed on a publish to %s; the publish goes on", listener,
                             group, extra=fields("publish_listener_failed", group=group))
