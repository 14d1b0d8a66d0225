"""Django app configuration of hypergen_ws."""
from __future__ import annotations

from django.apps import AppConfig


class HypergenWsConfig(AppConfig):
    """Registers the system checks and gives hypergen_ws's layer channels their capacity."""

    name = "hypergen_ws"
    verbose_name = "hypergen_ws"

    def ready(self) -> None:
        # Imported once the app registry is ready: the checks read settings and the registry of consumers.
        from . import checks, setup_checks  # noqa: F401  (registers the checks)
        from .backends.layers import install_layer_hook

        install_layer_hook()
