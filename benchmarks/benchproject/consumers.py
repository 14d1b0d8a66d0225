"""Variant (c): the same fan-out written with hypergen_ws (route ``/ws/benchproject/fanout/``)."""
from __future__ import annotations

from hypergen_ws import NO_PERM_REQUIRED, agroup_send, consumer


@consumer(perm=NO_PERM_REQUIRED, path="")
async def fanout(consumer, request, payload):
    """A frame ``{"args": [payload]}`` publishes ``payload`` to every connection of this consumer."""
    await agroup_send(fanout.group_name(), payload)
