"""Settings of the monitoring end-to-end servers: the test project's, with fast heartbeats and dashboard updates."""
import json
import os

from testproject.settings import *  # noqa: F403

MONITORING_KEY = "monitoring-key-0123456789abcdef"
HYPERGEN_WS = {"PROCESS_HEARTBEAT_INTERVAL": 0.3, "PROCESS_TTL": 1.5, "DASHBOARD_INTERVAL": 0.25,
               "PUBLISH_KEYS": [MONITORING_KEY], **json.loads(os.environ.get("HYPERGEN_WS_OVERRIDES") or "{}")}
