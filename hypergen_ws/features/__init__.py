"""The features layer: one module per optional behaviour of a connection.

This is the one place that names them. ``@consumer`` calls :func:`select` once; each module's ``configure``
validates its own ``@consumer`` arguments and returns the feature, or None when it is off. To add a feature,
add a module with a ``configure(options)`` and a :class:`~hypergen_ws.features.base.Feature` subclass, and name
its ``configure`` below (the order is the order the hooks run in).
"""
from __future__ import annotations

from collections.abc import Callable

from . import access, connlimit, expiry, history, hooks, hypergen, membership, presence, ratelimit, raw, tokens
from .base import Feature, Options

CONFIGURES: tuple[Callable[[Options], Feature | None], ...] = (
    connlimit.configure,   # refuses a socket over MAX_CONNECTIONS_PER_USER (across processes on Redis)
    access.configure,      # closes a socket when its user may no longer keep it
    history.configure,     # catch up first: sync/replay go ahead of everything else
    presence.configure,    # then the presence list and the join frame
    expiry.configure,
    hooks.configure,       # on_connect's initial state is pushed in front of the queue
    ratelimit.configure,   # takes a token for every frame, before anything decodes it
    tokens.configure,      # token sockets: the origins a consumer allows, a new token before the old one expires
    raw.configure,
    hypergen.configure,    # Hypergen's client: decodes its calls, translates what the socket is sent
    membership.configure,
)


def select(options: Options) -> tuple[Feature, ...]:
    """The features ``options`` switch on, in hook order (raises ``ImproperlyConfigured`` for a bad option)."""
    chosen = (configure(options) for configure in CONFIGURES)
    return tuple(feature for feature in chosen if feature is not None)


__all__ = ["Feature", "Options", "select"]
