"""Traffic counters of this process: :func:`snapshot`, :func:`reset`, and plain-text tables of them and of the
stats of every process (:func:`format_stats`, for ``hypergen_ws_stats`` and ``python -m hypergen_ws stats``).

The counting itself happens in :mod:`hypergen_ws.delivery.stats`; this module is what users and the commands read
(the tables need the standard library only: the command line runs without Django).
"""
from __future__ import annotations

from typing import Any

from .delivery.stats import FIELDS, Counters, reset, snapshot

__all__ = ["Counters", "format_stats", "format_table", "reset", "snapshot"]


def format_table(snapshot: dict[str, Any]) -> str:
    """A snapshot as a plain-text table, one row per consumer and per group, then the totals."""
    headers = ("open", "total", "msgs in", "bytes in", "msgs out", "bytes out")
    lines = [f"process {snapshot.get('pid')}, up {snapshot.get('uptime', 0):.0f} s"]

    def section(title: str, rows: dict[str, dict[str, int]]) -> None:
        lines.append("")
        if not rows:
            lines.append(f"{title}: none")
            return
        width = max(len(title), *(len(name) for name in rows))
        lines.append(f"{title:<{width}}  " + "  ".join(f"{h:>10}" for h in headers))
        for name, row in rows.items():
            lines.append(f"{name:<{width}}  " + "  ".join(f"{row.get(field, 0):>10}" for field in FIELDS))

    section("consumer", snapshot.get("consumers", {}))
    section("group", snapshot.get("groups", {}))
    section("", {"total": snapshot.get("totals", {})})
    return "\n".join(lines) + "\n"


def format_stats(result: dict[str, Any]) -> str:
    """A stats result as plain text: the processes, then the table of consumers, groups and totals, then the
    events; with per-process rows (``per_process=True``), one table per process as well."""
    processes = result.get("processes", [])
    if result.get("scope") == "cluster":
        head = f"cluster: {len(processes)} live process{'es' if len(processes) != 1 else ''}"
    else:
        only = processes[0] if processes else result  # a single process's snapshot has pid and uptime itself
        head = f"process {only.get('pid')} on {only.get('host')}, up {only.get('uptime') or 0:.0f} s"
    rates = result.get("rates", {})
    lines = [head + f"; {rates.get('messages_in', 0):g} msgs/s in, {rates.get('messages_out', 0):g} msgs/s out"]
    if result.get("scope") == "cluster":
        lines += ["", f"{'process':<40} {'pid':>8} {'up (s)':>9} {'beat (s)':>9} {'open':>7} {'msgs out':>10}"]
        for row in processes:
            totals = row.get("totals", {})
            lines.append(f"{row['id']:<40} {row.get('pid') or '-':>8} {row.get('uptime') or 0:>9.0f} "
                         f"{row.get('beat', 0):>9.1f} {totals.get('connections', 0):>7} "
                         f"{totals.get('messages_out', 0):>10}")
    table = format_table(result).split("\n", 1)[1]  # without its one-process heading
    lines.append(table.rstrip("\n"))
    events = result.get("events", {})
    counted = [(kind, label, code, n) for kind, by_label in events.items() for label, codes in by_label.items()
               for code, n in codes.items()]
    if counted:
        lines += ["", f"{'event':<14} {'consumer':<30} {'code':<24} {'count':>8}"]
        for kind, label, code, n in counted:
            lines.append(f"{kind:<14} {label or '-':<30} {code or '-':<24} {n:>8}")
    if any("consumers" in row for row in processes):
        for row in processes:
            lines += ["", f"---- {row['id']} ----", format_table(row).split("\n", 1)[1].rstrip("\n")]
    return "\n".join(lines) + "\n"
