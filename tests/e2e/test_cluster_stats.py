"""Cluster-wide stats over a real redis-server: two server processes report with their heartbeats, and
``aget_stats()``, the stats endpoint and ``hypergen_ws_stats`` sum them; a killed process drops out."""
from __future__ import annotations

import asyncio
import io
import json
import urllib.error
import urllib.request
from typing import Any

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


def stats_status(server) -> tuple[int, dict, Any]:
    """``(status, body, headers)`` of ``GET hypergen_ws/stats/``, error answers included."""
    request = urllib.request.Request(f"{server.url}/hypergen_ws/stats/",
                                     headers={"Authorization": f"Bearer {MONITORING_KEY}"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # a bound: a hung read fails the test
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers


async def test_with_redis_frozen_the_stats_and_the_dashboard_answer_within_publish_timeout(redis_server,
                                                                                          live_server_factory):
    import sqlite3

    from tests.e2e.hostile import Browser, frames_until

    env = {**SETTINGS, "HYPERGEN_WS_OVERRIDES": json.dumps({"PUBLISH_TIMEOUT": 1.0, "PROCESS_TTL": 30.0})}
    server = live_server_factory(server="uvicorn", redis_url=redis_server.url, env=env)
    with sqlite3.connect(server.env["HYPERGEN_WS_DB"]) as db:
        db.execute("UPDATE auth_user SET is_staff = 1 WHERE username = 'alice'")
    dashboard = await Browser(server).login("alice").socket("/ws/hypergen_ws/dashboard/")
    first = await frames_until(dashboard, lambda f: f.get("type") == "commands")
    assert "error" not in first[-1]["commands"][0][1]
    assert (await asyncio.to_thread(stats_status, server))[0] == 200
    redis_server.freeze()
    try:
        status, body, headers = await asyncio.to_thread(stats_status, server)
        assert status == 503 and headers.get("Retry-After") == "5", (status, body)
        assert "PUBLISH_TIMEOUT" in body["error"] and "is Redis reachable?" in body["error"], body
        # The open dashboard keeps getting updates: this process's counters, saying why.
        partial = await frames_until(dashboard, lambda f: f.get("type") == "commands"
                                     and "error" in f["commands"][0][1], timeout=15)
        update = partial[-1]["commands"][0][1]
        assert update["scope"] == "process" and "PUBLISH_TIMEOUT" in update["error"], update
    finally:
        redis_server.thaw()

    async def answers():
        return (await asyncio.to_thread(stats_status, server))[0] == 200

    await until(answers, "the stats answer again once Redis is back")
    await dashboard.close()
