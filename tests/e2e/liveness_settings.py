"""Settings of the heartbeat and deploy end-to-end servers: the recovery servers', with a heartbeat of a second
(a ping after 1 s of quiet, 1 s to answer it) and reconnects spread over 2 s."""
from tests.e2e.recovery_settings import *  # noqa: F403
from tests.e2e.recovery_settings import HYPERGEN_WS as _RECOVERY

HYPERGEN_WS = {**_RECOVERY, "PING_INTERVAL": 1.0, "PING_TIMEOUT": 1.0, "RECONNECT_SPREAD": 2.0}
