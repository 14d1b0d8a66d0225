"""Which server runs a connection, and what the faces may ask of the servers.

:func:`transport_for` chooses the transport port of one connection (:mod:`hypergen_ws.backends.transport`): the
consumer calls it once per connection and keeps the answer. :func:`install_body_limit` is what
:mod:`hypergen_ws.routing` and :mod:`hypergen_ws.security` ask of servers that read a whole request body before
the application sees it (daphne). Nothing above ``backends/`` names a server module; this one does.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import daphne, daphne_bodies, uvicorn
from .transport import ASGI, Transport

__all__ = ["install_body_limit", "transport_for"]


def transport_for(send: Any) -> Transport:
    """The transport of the connection behind an ASGI ``send``: uvicorn's, daphne's, or plain ASGI."""
    return uvicorn.transport(send) or daphne.transport(send) or ASGI


def install_body_limit(limit_for: Callable[[str, str], tuple[int, str] | None],
                       refusal: Callable[[tuple[int, str]], bytes]) -> bool:
    """Make the server refuse a request body over the limit ``limit_for(method, path)`` gives (``(bytes, the
    setting that raises it)``) with 413 while it arrives, before reading it (daphne); False when the server loaded
    in this process has no such hook (the ASGI middleware ``hypergen_ws.security.BodyLimit`` does it there)."""
    return daphne_bodies.install_body_limit(limit_for, refusal)
