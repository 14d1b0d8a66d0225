"""``reset()``: start a test with nothing left over from the one before it.

Django resets the database between tests; hypergen_ws keeps state of its own in the process, outside it: the
channel layer objects (the in-memory layer's queues belong to the event loop of the test that made them), the
group memberships of every event loop, the in-memory history, presence entries, traffic counters and an outage
of the channel layer under way.
"""
from __future__ import annotations

from ..backends.channels_hooks import forget_channel_layers
from ..backends.layers import forget_local_state
from ..core import registry
from ..delivery import hub, outage
from ..stats import counters
from ..features import connlimit, presence

__all__ = ["reset"]


def reset() -> None:
    """Forget the groups, history, presence and counters kept in this process, and the channel layer objects.

    Call it between tests, with no socket open (the ``hgws_reset`` fixture and the plugin do). The next use
    makes a new channel layer from ``CHANNEL_LAYERS``, so a layer bound to the event loop of an earlier test is
    never reused. What lives outside the process (Redis) is not touched: a test on Redis flushes its own
    keys, or uses a new redis-server.
    """
    forget_channel_layers()
    hub.forget_hubs()
    forget_local_state()
    registry.forget_groups()
    presence.tables.clear()
    connlimit.tables.clear()
    counters.clear()
    outage.forget()
