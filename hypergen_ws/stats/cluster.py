"""Traffic counters of every server process: ``get_stats()`` / ``aget_stats()`` (docs/stats.rst).

On Redis, every server process stores its counters (:func:`hypergen_ws.stats.snapshot`, its groups cut to the
``STATS_TOP_GROUPS`` with the most connections) with each heartbeat, under a key that expires ``PROCESS_TTL``
after the beat (:mod:`hypergen_ws.delivery.heartbeats`). :func:`aget_stats` reads the reports of the processes whose heartbeat
is current and sums them; a process that stopped beating drops out within ``PROCESS_TTL``. The process that
answers puts in its own counters as of now rather than as of its last beat. On other layers (one process)
the result holds this process alone.

The result, JSON-ready::

    {"scope": "cluster",                       # or "process" (not on Redis)
     "time": 1700000000.0,
     "processes": [{"id": "web1:4711:9f2c01aa", "host": "web1", "pid": 4711, "uptime": 3600.2, "beat": 1.2,
                    "totals": {...}, "rates": {...}}, ...],
     "totals": {"connections": 3, "connections_total": 40, "messages_in": 120, ...},
     "rates": {"messages_in": 2.0, "messages_out": 150.0},          # per second
     "consumers": {"chat.send_message": {"connections": 3, ...}},
     "groups": {"hgws.chat.send_message.room_name.vip": {"connections": 2, ...}},   # most connections first
     "events": {"refusals": {"chat.send_message": {"4403": 2}}, "errors": {...}, "slow_closes": {...},
                "publishes": {...}, "recoveries": {...}, "layer_errors": {...}}}

``beat`` is the age in seconds of a process's report (0 for the answering process). ``per_process=True`` adds
the ``consumers``, ``groups`` and ``events`` of each process to its row.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from typing import Any

from ..backends.layers import get_engine, run_sync
from ..core import conf
from ..core.sync import refuse_in_loop
from ..delivery import heartbeats
from . import counters

__all__ = ["aget_stats", "combine", "get_stats", "heartbeat_report", "install", "local_report"]

#: A stats result (JSON-ready).
Stats = dict[str, Any]
HOST = socket.gethostname()


def local_report(top_groups: int | None = None) -> Stats:
    """This process's counters (:func:`hypergen_ws.stats.snapshot`) with its host; with ``top_groups``, only
    that many groups, those with the most connections."""
    snapshot = counters.snapshot()
    snapshot["host"] = HOST
    if top_groups is not None and len(snapshot["groups"]) > top_groups:
        snapshot["groups"] = dict(_by_connections(snapshot["groups"])[:max(0, top_groups)])
    return snapshot


def heartbeat_report() -> str:
    """What each heartbeat stores for the cluster-wide stats: :func:`local_report` as JSON."""
    return json.dumps(local_report(int(conf.get("STATS_TOP_GROUPS"))), separators=(",", ":"))


def install() -> None:
    """Make every process heartbeat carry :func:`heartbeat_report` (``AppConfig.ready`` calls it)."""
    heartbeats.set_reporter(heartbeat_report)


def _by_connections(groups: dict[str, dict[str, int]]) -> list[tuple[str, dict[str, int]]]:
    return sorted(groups.items(), key=lambda item: (-item[1].get("connections", 0), item[0]))


async def aget_stats(*, per_process: bool = False) -> Stats:
    """The counters of every live server process, summed (see the module docstring); async.

    Raises ``TimeoutError`` when Redis does not answer within ``PUBLISH_TIMEOUT``, and redis-py's
    ``ConnectionError`` when it cannot be reached.
    """
    processes = get_engine().processes
    if not processes.beats:  # one process: nobody else reports
        return _local_stats(per_process)
    own = heartbeats.local_node_ids()
    now = time.time()
    ttl = float(conf.get("PROCESS_TTL"))
    rows: list[tuple[str, float, Stats]] = []
    fresh: Stats | None = None
    timeout = float(conf.get("PUBLISH_TIMEOUT"))
    try:
        async with asyncio.timeout(timeout):  # a frozen Redis must not hold the answer (or the dashboard)
            reports = await processes.reports()
    except TimeoutError:
        raise TimeoutError(f"Redis did not answer within {timeout} s (HYPERGEN_WS['PUBLISH_TIMEOUT']) while the "
                           "stats of every process were read") from None
    for node_id, expires, report in reports:
        if node_id in own:
            fresh = fresh or local_report()
            rows.append((node_id, 0.0, fresh))
            continue
        try:
            data = json.loads(report) if report is not None else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = {}  # a process that beats without a report (yet): counted as a process, with no counters
        rows.append((node_id, max(0.0, round(now - (expires - ttl), 3)), data))
    if own and fresh is None:  # serving sockets, but its first heartbeat has not been written yet
        rows.append((min(own), 0.0, local_report()))
    return combine(_one_per_process(rows), "cluster", per_process)


def get_stats(*, per_process: bool = False) -> Stats:
    """Sync variant of :func:`aget_stats` (no running event loop in this thread)."""
    refuse_in_loop("get_stats", "aget_stats")
    if not get_engine().processes.beats:
        return _local_stats(per_process)
    return run_sync(aget_stats(per_process=per_process), "Reading the stats")


def _local_stats(per_process: bool) -> Stats:
    report = local_report()
    return combine([(f"{HOST}:{os.getpid()}", 0.0, report)], "process", per_process)


def _one_per_process(rows: list[tuple[str, float, Stats]]) -> list[tuple[str, float, Stats]]:
    """One row per (host, pid): a process with several heartbeats (event loops) reports its counters once."""
    chosen: dict[tuple[Any, Any], tuple[str, float, Stats]] = {}
    anonymous = []
    for row in sorted(rows, key=lambda r: r[1]):
        data = row[2]
        if "pid" not in data:
            anonymous.append(row)
        else:
            chosen.setdefault((data.get("host"), data["pid"]), row)
    return sorted([*chosen.values(), *anonymous], key=lambda r: r[0])


def combine(rows: list[tuple[str, float, Stats]], scope: str, per_process: bool = False) -> Stats:
    """Sum the reports ``(process id, age of the report, report)`` into one stats result."""
    totals = dict.fromkeys(counters.FIELDS, 0)
    rates = {"messages_in": 0.0, "messages_out": 0.0}
    consumers: dict[str, Any] = {}
    groups: dict[str, Any] = {}
    events: dict[str, Any] = {kind: {} for kind in counters.EVENT_KINDS}
    processes = []
    for node_id, age, data in rows:
        row: Stats = {"id": node_id, "host": data.get("host"), "pid": data.get("pid"), "uptime": data.get("uptime"),
                      "beat": age, "totals": data.get("totals", {}), "rates": data.get("rates", {})}
        if per_process:
            row.update(consumers=data.get("consumers", {}), groups=data.get("groups", {}),
                       events=data.get("events", {}))
        processes.append(row)
        _add(totals, data.get("totals", {}))
        _add(rates, data.get("rates", {}))
        _add(consumers, data.get("consumers", {}))
        _add(groups, data.get("groups", {}))
        _add(events, data.get("events", {}))
    return {"scope": scope, "time": round(time.time(), 3), "processes": processes, "totals": totals,
            "rates": {key: round(value, 3) for key, value in rates.items()},
            "consumers": dict(sorted(consumers.items())), "groups": dict(_by_connections(groups)), "events": events}


def _add(into: dict[str, Any], other: object) -> None:
    """Add the numbers of ``other`` (nested dicts of numbers) into ``into``; ignore what is not a number."""
    if not isinstance(other, dict):
        return
    for key, value in other.items():
        if isinstance(value, dict):
            target = into.get(key)
            if not isinstance(target, dict):
                target = into[key] = {}
            _add(target, value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            current = into.get(key, 0)
            into[key] = (current if isinstance(current, (int, float)) else 0) + value
