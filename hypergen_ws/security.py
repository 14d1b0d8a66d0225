"""What protects a hypergen_ws project from hostile pages and clients (docs/security.rst).

``SameOriginValidator``
    websocket middleware: only the server's own origin (scheme, host and port) and trusted ones may open sockets.
``BodyLimit``
    HTTP middleware: a request body larger than its view allows (the publish endpoint: ``PUBLISH_MAX_BODY_SIZE``)
    is refused with 413 before it is read. Under daphne the same limit is enforced without it.
"""
from __future__ import annotations

from .core.bodies import BodyLimit
from .core.origins import SameOriginValidator

__all__ = ["BodyLimit", "SameOriginValidator"]
