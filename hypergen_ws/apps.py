"""Django app configuration of hypergen_ws."""
from __future__ import annotations

from django.apps import AppConfig


class HypergenWsConfig(AppConfig):
    """Registers the system checks, gives hypergen_ws's layer channels their capacity and, under daphne, refuses
    request bodies over their view's limit before reading them (docs/security.rst)."""

    name = "hypergen_ws"
    verbose_name = "hypergen_ws"

    def ready(self) -> None:
        # Imported once the app registry is ready: the checks read settings and the registry of consumers.
        from . import checks  # noqa: F401  (registers the checks)
        from .backends.layers import install_layer_hook
        from .backends.daphne import install_body_limit
        from .core.bodies import limit_for, too_large_body

        install_layer_hook()
        install_body_limit(limit_for, too_large_body)
