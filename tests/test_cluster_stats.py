"""Traffic counters of every server process (hypergen_ws.stats.cluster): reports, sums, rows, failures."""
from __future__ import annotations

import io
import json
import os

import pytest
from django.core.management import call_command

from hypergen_ws import aget_stats, get_stats
from hypergen_ws.stats import counters as stats
from hypergen_ws.stats.cluster import _add, combine, heartbeat_report, local_report
from hypergen_ws.dashboard import current
from tests import feature_consumers as fc
from tests.recutil import OtherProcess, opened

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _zero():
    stats.reset()


def test_add_sums_nested_numbers_and_ignores_the_rest():
    into: dict = {"a": 1, "b": {"x": 2}}
    _add(into, {"a": 2, "b": {"x": 3, "y": 1}, "c": 1.5, "d": "text", "e": True, "f": None})
    assert into == {"a": 3, "b": {"x": 5, "y": 1}, "c": 1.5}
    _add(into, ["not", "a", "dict"])
    assert into["a"] == 3


def test_combine_sums_processes_and_orders_groups_by_connections():
    one = {"host": "h1", "pid": 1, "uptime": 5, "totals": {"connections": 2, "messages_out": 10},
           "rates": {"messages_out": 1.5}, "consumers": {"a.b": {"connections": 2}},
           "groups": {"g1": {"connections": 1}, "g2": {"connections": 1}},
           "events": {"errors": {"a.b": {"bad_request": 1}}}}
    two = {"host": "h2", "pid": 2, "uptime": 7, "totals": {"connections": 3, "messages_out": 5},
           "rates": {"messages_out": 2.0}, "consumers": {"a.b": {"connections": 3}},
           "groups": {"g2": {"connections": 3}}, "events": {"errors": {"a.b": {"bad_request": 2, "4400": 1}}}}
    result = combine([("h1:1:aa", 0.0, one), ("h2:2:bb", 1.2, two), ("h3:3:cc", 0.5, {})], "cluster")
    assert result["totals"]["connections"] == 5 and result["totals"]["messages_out"] == 15
    assert result["rates"]["messages_out"] == 3.5
    assert result["consumers"] == {"a.b": {"connections": 5}}
    assert list(result["groups"]) == ["g2", "g1"] and result["groups"]["g2"]["connections"] == 4
    assert result["events"]["errors"] == {"a.b": {"bad_request": 3, "4400": 1}}
    assert [row["id"] for row in result["processes"]] == ["h1:1:aa", "h2:2:bb", "h3:3:cc"]
    assert result["processes"][1]["beat"] == 1.2 and "consumers" not in result["processes"][1]
    rows = combine([("h1:1:aa", 0.0, one)], "cluster", per_process=True)["processes"]
    assert rows[0]["groups"] == one["groups"]


def test_heartbeat_report_keeps_the_groups_with_the_most_connections(settings):
    settings.HYPERGEN_WS = {"STATS_TOP_GROUPS": 2}
    mine = {"hgws.a.b.n.1": 30, "hgws.a.b.n.2": 50, "hgws.a.b.n.3": 40}
    for group, members in mine.items():
        for _ in range(members):
            stats.joined(group, "a.b")
    try:
        report = json.loads(heartbeat_report())
        every = local_report()["groups"]
        ranked = sorted(every, key=lambda name: (-every[name]["connections"], name))
        assert list(report["groups"]) == ranked[:2], "the two with the most connections, most first"
        assert "hgws.a.b.n.2" in report["groups"] and "hgws.a.b.n.1" not in report["groups"]
        assert report["pid"] == os.getpid() and report["host"]
        assert set(mine) <= set(every), "in the process itself, every group"
    finally:
        for group, members in mine.items():
            for _ in range(members):
                stats.left(group, "a.b")


async def test_on_memory_the_process_itself():
    comm = await opened(fc.raw_json, application=fc.application, room="cs")
    result = await aget_stats()
    assert result["scope"] == "process" and [row["pid"] for row in result["processes"]] == [os.getpid()]
    assert result["consumers"]["tests.raw_json"]["connections"] == 1
    with pytest.raises(RuntimeError, match="await aget_stats"):
        get_stats()
    await comm.disconnect()


async def test_on_redis_one_row_per_process_and_the_own_one_fresh(redis_layer, settings):
    settings.HYPERGEN_WS = {"PROCESS_HEARTBEAT_INTERVAL": 0.2, "PROCESS_TTL": 1.0}
    other = OtherProcess()  # another event loop of this process: a second heartbeat, the same counters
    try:
        async def connect_there():
            return await opened(fc.raw_json, application=fc.application, room="there")

        there = await other.arun(connect_there())
        here = await opened(fc.raw_json, application=fc.application, room="here")
        result = await aget_stats()
        assert result["scope"] == "cluster"
        assert len(result["processes"]) == 1, "one process, however many heartbeats it runs"
        assert result["processes"][0]["beat"] == 0.0
        assert result["consumers"]["tests.raw_json"]["connections"] == 2, "its counters as of now, once"
        await here.disconnect()
        await other.arun(there.disconnect())
    finally:
        other.stop()


def test_the_command_on_redis_without_servers_says_so(redis_layer):
    out, err = io.StringIO(), io.StringIO()
    call_command("hypergen_ws_stats", stdout=out, stderr=err)
    assert "cluster: 0 live processes" in out.getvalue()
    assert "no server process reports to this Redis" in err.getvalue()


async def test_the_dashboard_shows_this_process_and_why_when_redis_is_down(redis_layer, redis_server):
    redis_server.stop()
    result = await current()
    assert result["scope"] == "process" and len(result["processes"]) == 1
    assert "Is Redis reachable?" in result["error"]
    with pytest.raises(Exception):
        await aget_stats()
