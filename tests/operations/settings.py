"""Monitoring settings of a hypergen_ws site (docs/operations.rst includes this file)."""
import os

HYPERGEN_WS = {
    # Prometheus (and `hypergen_ws_stats --url`) authenticates with one of these: "Authorization: Bearer <key>".
    "PUBLISH_KEYS": [os.environ["HYPERGEN_WS_PUBLISH_KEY"]],
    # True: the system check fails when prometheus_client is missing (None, the default: metrics when installed).
    "METRICS": True,
    # Groups each process reports to the cluster-wide stats (most connections first), and dashboard updates.
    "STATS_TOP_GROUPS": 100,
    "DASHBOARD_INTERVAL": 1.0,
}
