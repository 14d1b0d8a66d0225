"""Settings of the recovery end-to-end servers: the test project's, with short heartbeats and timeouts."""
from testproject.settings import *  # noqa: F403

ROOT_URLCONF = "tests.e2e.recovery_app"
HYPERGEN_WS = {"PROCESS_HEARTBEAT_INTERVAL": 0.5, "PROCESS_TTL": 2.0, "PUBLISH_TIMEOUT": 3.0}
