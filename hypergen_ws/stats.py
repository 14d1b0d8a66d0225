"""Traffic counters of this process: :func:`snapshot`, :func:`reset`, and a plain-text table of them.

The counting itself happens in :mod:`hypergen_ws.delivery.stats`; this module is what users and the commands read.
"""
from __future__ import annotations

from typing import Any

from .delivery.stats import FIELDS, Counters, reset, snapshot

__all__ = ["Counters", "format_table", "reset", "snapshot"]


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
