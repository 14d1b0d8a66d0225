"""Cluster-wide stats over a real redis-server: two server processes report with their heartbeats, and
``aget_stats()``, the stats endpoint and ``hypergen_ws_stats`` sum them; a killed process drops out."""
from __future__ import annotations

import asyncio
import io
import json
import urllib.request

import pytest
from django.core.management import call_command

from hypergen_ws import aget_stats
from tests.e2e.monitoring_settings import MONITORING_KEY
from tests.e2e.wsclients import LISTEN_PATH, open_clients

pytestmark = pytest.mark.timeout(120)

SETTINGS = {"DJANGO_SETTINGS_MODULE": "tests.e2e.monitoring_settings"}
LABEL = "notifications.listen"


async def until(condition, what: str, timeout: float = 20.0):
    """Poll ``await condition()`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        last = await condition()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what} (last: {last!r})")


def fetch_stats(server, query: str = "") -> dict:
    request = urllib.request.Request(f"{server.url}/hypergen_ws/stats/{query}",
                                     headers={"Authorization": f"Bearer {MONITORING_KEY}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


async def test_two_processes_are_summed_and_a_dead_one_drops_out(redis_layer, settings, live_server_factory):
    settings.HYPERGEN_WS = {"PROCESS_TTL": 1.5}
    a = live_server_factory(server="daphne", redis_url=redis_layer, env=SETTINGS)
    b = live_server_factory(server="uvicorn", redis_url=redis_layer, env=SETTINGS)
    on_a = await open_clients([a.ws_url + LISTEN_PATH], 2)
    on_b = await open_clients([b.ws_url + LISTEN_PATH], 3)
    try:
        async def both_reported():
            result = await aget_stats(per_process=True)
            return result if result["totals"]["connections"] == 5 and len(result["processes"]) == 2 else None

        result = await until(both_reported, "both processes report their sockets")
        assert result["scope"] == "cluster"
        assert result["consumers"][LABEL]["connections"] == 5
        assert result["groups"]["hgws.notifications.listen"]["connections"] == 5
        assert sorted(row["totals"]["connections"] for row in result["processes"]) == [2, 3]
        assert sorted(row["consumers"][LABEL]["connections"] for row in result["processes"]) == [2, 3]
        assert {row["pid"] for row in result["processes"]} == {a.process.pid, b.process.pid}

        over_http = await asyncio.to_thread(fetch_stats, a)
        assert over_http["scope"] == "cluster" and over_http["totals"]["connections"] == 5
        assert "consumers" not in over_http["processes"][0]
        rows = await asyncio.to_thread(fetch_stats, b, "?per_process=1")
        assert sorted(row["totals"]["connections"] for row in rows["processes"]) == [2, 3]

        out = io.StringIO()
        await asyncio.to_thread(call_command, "hypergen_ws_stats", stdout=out, stderr=io.StringIO())
        assert "cluster: 2 live processes" in out.getvalue() and LABEL in out.getvalue()

        b.kill()  # no goodbye: its heartbeat just stops

        async def only_a():
            result = await aget_stats()
            return result if [row["pid"] for row in result["processes"]] == [a.process.pid] else None

        result = await until(only_a, "the killed process drops out after PROCESS_TTL")
        assert result["totals"]["connections"] == 2
    finally:
        await asyncio.gather(*(ws.close() for ws in on_a + on_b), return_exceptions=True)
