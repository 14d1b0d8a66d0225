"""A rolling restart under a publisher that never stops: two server processes (daphne and uvicorn) on a real
redis-server, restarted one after the other with SIGTERM (docs/scaling.rst, "Deploys").

Each process tells its clients when to reconnect and closes them with 1012; the clients wait that long, reconnect
to whichever process is up (the next one of their list, as behind a load balancer) and catch up from their last
seq. Every client must end with every message, in order, once, and no resync.
"""
from __future__ import annotations

import asyncio

import pytest

from hypergen_ws import agroup_send
from hypergen_ws.core import protocol
from tests import recovery_consumers as rc
from tests.e2e.recovering_client import RecoveringClient, wait_for
from tests.recutil import use_layer

pytestmark = [pytest.mark.timeout(240), pytest.mark.django_db(transaction=True)]

APP = "tests.e2e.recovery_app:application"
SETTINGS = "tests.e2e.liveness_settings"


async def test_a_rolling_restart_of_two_processes_on_redis_loses_nothing(redis_server, live_server_factory,
                                                                         settings):
    use_layer("redis", settings, redis_server.url)
    settings.HYPERGEN_WS = {"PUBLISH_TIMEOUT": 3.0}
    a, b = (live_server_factory(APP, server=kind, redis_url=redis_server.url, settings=SETTINGS, migrate=True)
            for kind in ("daphne", "uvicorn"))
    path = rc.rec_deploy.reverse(room="rolling")
    group = rc.rec_deploy.group_name(room="rolling")
    clients = ([RecoveringClient([a.ws_url, b.ws_url], path, liveness=5).start() for _ in range(6)]
               + [RecoveringClient([b.ws_url, a.ws_url], path, liveness=5).start() for _ in range(6)])
    published = 0
    stop = asyncio.Event()

    async def publish() -> None:
        nonlocal published
        while not stop.is_set():
            await agroup_send(group, published)
            published += 1
            await asyncio.sleep(0.02)

    publisher = None
    try:
        await wait_for(lambda: all(c.synced for c in clients), 20, "every client connected")
        publisher = asyncio.create_task(publish())
        await wait_for(lambda: published >= 50, 20, "the publisher runs")
        for server in (a, b):
            await asyncio.to_thread(server.restart)  # SIGTERM, the process ends, a new one on the same port
            mark = published
            await wait_for(lambda: published >= mark + 50, 20, "the publisher goes on")
        stop.set()
        await publisher
        total = published
        await wait_for(lambda: all(len(c.messages) >= total for c in clients), 60,
                       lambda: [len(c.messages) for c in clients])
        await asyncio.sleep(0.3)  # nothing more may arrive
        for n, client in enumerate(clients):
            assert client.messages == list(range(total)), f"client {n}: {client!r}"
            assert client.resyncs == [] and client.duplicates == 0, f"client {n}: {client!r}"
            assert protocol.CLOSE_SERVICE_RESTART in client.closes, f"client {n} was closed with 1012: {client.closes}"
            assert client.hints and all(0 <= h <= 2.0 for h in client.hints), f"client {n}: {client.hints}"
    finally:
        stop.set()
        if publisher is not None:
            await asyncio.gather(publisher, return_exceptions=True)
        await asyncio.gather(*(c.stop() for c in clients))
