"""The notifications consumer: a socket that only listens.

Pages connect to ``/ws/notifications/listen/``; the backend publishes to ``listen.group_name()`` with
``group_send(group, data)`` and every open page gets ``{"type": "message", "data": data}`` (the JavaScript client
fires a ``hypergen:websocket:message`` event for it). Anyone may listen: the notifications are public.
"""
from __future__ import annotations

from typing import Any

from hypergen_ws import NO_PERM_REQUIRED, consumer


@consumer(perm=NO_PERM_REQUIRED, receive=False)
def listen(consumer: Any, request: Any) -> None:
    """Never called: ``receive=False`` makes a listen-only socket (a call from the browser gets ``bad_request``)."""
