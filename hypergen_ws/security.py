"""What protects a hypergen_ws project from hostile pages, clients and publishers (docs/security.rst).

``SameOriginValidator``
    websocket middleware: only the server's own origin (scheme, host and port) and trusted ones may open sockets.
``BodyLimit``, ``max_body_size``
    HTTP middleware, the outer wrapper of the HTTP application: a request body larger than its view allows
    (``max_body_size``; the publish endpoint: ``PUBLISH_MAX_BODY_SIZE``) or than ``MAX_BODY_SIZE`` (default:
    ``DATA_UPLOAD_MAX_MEMORY_SIZE``) is refused with 413 before it is read; under daphne while it arrives.
``disconnect_user``, ``recheck_permissions`` (and their async twins)
    close the sockets of a user, or those that no longer pass their consumer's ``perm``, in every process; a
    logout closes the sockets of its session on its own (:mod:`hypergen_ws.features.access`).
"""
from __future__ import annotations

from django.contrib.auth.signals import user_logged_out

from .backends.servers import install_body_limit
from .core.bodies import BodyLimit, daphne_rule_for, max_body_size, too_large_body
from .core.origins import SameOriginValidator
from .features.access import (adisconnect_user, arecheck_permissions, disconnect_user, on_logout,
                              recheck_permissions)

__all__ = ["BodyLimit", "SameOriginValidator", "adisconnect_user", "arecheck_permissions", "disconnect_user",
           "install", "max_body_size", "recheck_permissions"]


def install() -> None:
    """Connect the logout receiver and, under daphne, refuse oversized bodies as they arrive (idempotent;
    ``AppConfig.ready`` calls it)."""
    user_logged_out.connect(on_logout, dispatch_uid="hypergen_ws.logout")
    install_body_limit(daphne_rule_for, too_large_body)
