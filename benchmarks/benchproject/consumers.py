"""Variant (c): the same fan-out written with hypergen_ws (route ``/ws/benchproject/fanout/``)."""
from __future__ import annotations

from hypergen_ws import NO_PERM_REQUIRED, agroup_send, consumer


@consumer(perm=NO_PERM_REQUIRED, path="", rate=None)
async def fanout(consumer, request, payload):
    """A frame ``{"args": [payload]}`` publishes ``payload`` to every connection of this consumer.

    ``rate=None``: the benchmark's publisher sends its burst as fast as the server takes it, which the default
    per-connection rate limit (``RATE_LIMIT``, 20 calls/s) would refuse, as it should for a browser.
    """
    await agroup_send(fanout.group_name(), payload)


@consumer(perm=NO_PERM_REQUIRED, path="", rate=None, history=2000)
async def storm(consumer, request):
    """storm.py's group (route ``/ws/benchproject/storm/``): a publisher outside the server sends to it, and its
    last 2,000 frames are kept in Redis, so a client that reconnects catches up from its last seq."""
