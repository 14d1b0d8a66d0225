"""Django app configuration of hypergen_ws."""
from __future__ import annotations

from django.apps import AppConfig


class HypergenWsConfig(AppConfig):
    """Registers the system checks, gives hypergen_ws's layer channels their capacity, registers the dashboard's
    consumer, makes heartbeats carry the counters, feeds the Prometheus metrics (when enabled), and installs what
    ``hypergen_ws.security`` does on its own (the logout receiver, daphne's body limit)."""

    name = "hypergen_ws"
    verbose_name = "hypergen_ws"

    def ready(self) -> None:
        # Imported once the app registry is ready: the checks read settings and the registry of consumers, and
        # security's receivers reach the session store.
        from . import checks, code_checks, dashboard, security, setup_checks  # noqa: F401  (checks, a consumer)
        from .backends.layers import install_layer_hook
        from .stats import cluster, metrics  # wired together here, once

        install_layer_hook()
        cluster.install()
        metrics.install_from_settings()
        security.install()
