"""Settings of the chaos run's servers and worker: the test project's, with short process heartbeats and
timeouts so that faults are noticed within a second or two, and a publish key for the HTTP publishers."""
from testproject.settings import *  # noqa: F403

ROOT_URLCONF = "tests.e2e.chaos_app"
CHAOS_PUBLISH_KEY = "chaos-publish-key-0123456789abcdef"
HYPERGEN_WS = {"HEARTBEAT_INTERVAL": 0.5, "PROCESS_TTL": 2.0, "PUBLISH_TIMEOUT": 3.0,
               "PUBLISH_KEYS": [CHAOS_PUBLISH_KEY],
               "RECONNECT_SPREAD": 2.0}  # a SIGTERM (the rolling restart) spreads its reconnects over 2 s
