"""Where hypergen_ws steps into Channels' own objects: the one place that knows these two of its internals.

* ``AsyncConsumer.__call__`` assigns ``self.channel_receive = functools.partial(layer.receive, channel_name)``
  and then waits on it. :class:`OwnChannelReceive` is a descriptor that gives the consumer's own receive instead
  (one that survives a layer outage) and lets that assignment fall through.
* ``channels.layers.channel_layers`` keeps one layer object per alias in ``backends``;
  :func:`forget_channel_layers` empties it, so the next ``get_channel_layer()`` makes new ones (a test's event
  loop is not the next one's).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channels.layers import channel_layers

__all__ = ["OwnChannelReceive", "forget_channel_layers"]


class OwnChannelReceive:
    """A class attribute ``channel_receive = OwnChannelReceive("_receive_own_channel")``: reading it gives that
    method; Channels' assignment in ``AsyncConsumer.__call__`` is ignored."""

    def __init__(self, method: str) -> None:
        self.method = method

    def __get__(self, instance: Any, owner: type | None = None) -> Callable[[], Any]:
        if instance is None:
            return self  # type: ignore[return-value]  # the descriptor itself, on the class
        found: Callable[[], Any] = getattr(instance, self.method)
        return found

    def __set__(self, instance: Any, value: Any) -> None:
        pass  # Channels' plain ``layer.receive`` partial: the consumer's own receive is used instead


def forget_channel_layers() -> None:
    """Forget the channel layer objects Channels made (``channel_layers.backends``)."""
    channel_layers.backends.clear()
