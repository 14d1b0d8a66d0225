"""What a server process keeps for rooms nobody is in any more, on a real redis-server: nothing per room.

Hundreds of distinct rooms are opened and left through every path that makes per-room state (presence with a
capped user, history with recovery and publishes, groups joined at run time, publishes to rooms without members);
then every per-room table of the process is checked: the hub's, the features', the counters', the history-size
registry's, and what ``channels_redis`` keeps per channel. (``benchmarks/rooms.py`` measures the RSS of a real
server doing the same; docs/security.rst has its figures.)
"""
from __future__ import annotations

import asyncio

import pytest

from hypergen_ws import agroup_send
from hypergen_ws.backends.layers import get_layer, get_store
from hypergen_ws.core import registry
from hypergen_ws.delivery.hub import get_hub
from hypergen_ws.features import connlimit, presence
from hypergen_ws.stats import counters
from tests import recovery_consumers as rc
from tests.recutil import opened, use_layer
from tests.users import make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

ROOMS = 150


async def visit_rooms(tag: str, user) -> None:
    """Open and leave ``ROOMS`` distinct rooms of every kind."""
    for n in range(ROOMS):
        room = f"{tag}-{n}"
        feed = await opened(rc.rec_feed, room=room, query="hgws_seq=0&hgws_epoch=1")  # recovery: a resync
        await agroup_send(rc.rec_feed.group_name(room=room), {"n": n})  # a frame kept in the room's history
        here = await opened(rc.rec_room, room=room, user=user)  # presence, under MAX_CONNECTIONS_PER_USER
        joined = await opened(rc.rec_custom, query=f"t={room}")  # a group named by a callable
        await joined.call(room)  # joins "rec.topic.<room>" at run time
        await agroup_send(f"rec.nobody.{room}", {"n": n})  # a room without members
        for comm in (feed, here, joined):
            await comm.disconnect()


def room_state(tag: str) -> dict[str, list[str]]:
    """Every per-room entry of this process that names a room of ``tag``."""
    hub = get_hub()
    tables = {
        "hub.members": hub.members, "hub.subscriptions": hub.subscriptions, "hub.feeds": hub.feeds,
        "hub._joining": hub._joining, "hub._pushes": hub._pushes, "hub.listeners": hub.listeners,
        "presence": {group: 1 for table in presence.tables.by_hub.values() for group in table},
        "presence.leaving": {group: 1 for gone in presence.tables.leaving.values() for group in gone},
        "counters.groups": counters._groups,
    }
    found = {name: [key for key in table if tag in key] for name, table in tables.items()}
    found["registry"] = [group for group in registry._known if tag in group and not group.startswith("rec.custom.")]
    return {name: keys for name, keys in found.items() if keys} | {
        "connlimit": [key for table in connlimit.tables.by_hub.values() for key in table],
    }


async def test_rooms_nobody_is_in_any_more_leave_nothing_in_the_process_on_redis(settings, redis_url):
    use_layer("redis", settings, redis_url)
    settings.HYPERGEN_WS = {"MAX_CONNECTIONS_PER_USER": 5, "PROCESS_HEARTBEAT_INTERVAL": 0.2, "PROCESS_TTL": 30.0}
    ann = await make_user("r_ann", "auth.view_user")
    watcher = await opened(rc.rec_room, room="lobby")  # the process keeps serving a socket throughout
    layer = get_layer()
    await visit_rooms("warm", ann)
    queues = len(layer.receive_buffer)  # channels_redis: a queue per process-local channel received on
    await visit_rooms("zq", ann)
    await asyncio.sleep(0.5)  # a heartbeat after the last leave
    state = room_state("zq")
    assert {name: keys for name, keys in state.items() if keys} == {}, "per-room state left behind"
    assert len(layer.receive_buffer) <= queues, list(layer.receive_buffer)
    assert not layer.receive_cleaners and len(layer.receive_clean_locks.locks) <= 1
    assert len(get_store(layer).clients.made()) == 1, "one Redis client per event loop and host"
    await watcher.disconnect()
