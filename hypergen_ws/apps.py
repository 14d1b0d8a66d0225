"""Django app configuration of hypergen_ws."""
from __future__ import annotations

from django.apps import AppConfig


class HypergenWsConfig(AppConfig):
    """Registers the system checks, gives hypergen_ws's layer channels their capacity, registers the dashboard's
    consumer, makes heartbeats carry the counters and feeds the Prometheus metrics (when enabled)."""

    name = "hypergen_ws"
    verbose_name = "hypergen_ws"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the checks)
        from . import dashboard  # noqa: F401  (registers the dashboard's consumer)
        from . import cluster, clusterstats, metrics
        from .fanout import install_layer_hook

        install_layer_hook()
        cluster.set_reporter(clusterstats.heartbeat_report)
        metrics.install_from_settings()
