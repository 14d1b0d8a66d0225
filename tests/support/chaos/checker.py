"""The checker of the chaos run: reads what every client received and what every publisher was told.

The promise (docs/delivery.rst): a client gets what it missed, in order and once, or an explicit resync; never a
silent gap. Per client, the checker walks the frames the client handed to its application, in order (and the
frames it ``passed``: dropped as handed over once under the same (epoch, seq), which only move its position):

* a **silent gap** is a stamped frame whose seq is not the one after the last position (a frame, a ``sync`` or a
  ``resync``) in the same epoch, a frame of another epoch with no resync before it, or a ``sync`` that moves the
  position without replaying what lies between;
* a **duplicate** is a message id handed over twice;
* an **out-of-order** frame is an acknowledged message of one publisher handed over after a later acknowledged
  message of the same publisher (each publisher publishes one message at a time, so their order is the publish
  order; a message whose publisher got no answer may arrive at any time).

Across clients, an **acknowledged publish that reached no one** is one whose publisher was told it succeeded but
that no client of its group received, with no resync in that group after it was sent; ``missed_uncovered`` counts
the same per client (a message acknowledged while the client followed its group, neither received nor followed by
a resync of that client). Per fault, ``hint+1012`` counts the clients that got a ``reconnect`` frame and then the
close with 1012 (a server that shut down on SIGTERM: the deploy path).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .clients import Event, Publish


@dataclass
class Fault:
    kind: str
    start: float
    end: float
    detail: str = ""


@dataclass
class ClientLog:
    name: str
    group: str
    events: list[Event]


@dataclass
class Report:
    published: int = 0
    acknowledged: int = 0
    refused: int = 0
    unknown: int = 0
    deliveries: int = 0
    silent_gaps: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    resyncs: Counter[str] = field(default_factory=Counter)
    acked_reaching_no_one: int = 0
    missed_covered: int = 0
    missed_uncovered: int = 0
    longest_without_group: float = 0.0
    faults: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def kept_the_promise(self) -> bool:
        return not (self.silent_gaps or self.duplicates or self.out_of_order or self.acked_reaching_no_one
                    or self.missed_uncovered)


def _publisher_and_number(message_id: str) -> tuple[str, int] | None:
    publisher, _, number = message_id.rpartition(":")
    return (publisher, int(number)) if number.isdigit() else None


def check_client(log: ClientLog, report: Report, acked: set[str] | None = None) -> set[str]:
    """Walk one client's events; add its figures to ``report``; return the message ids it received.

    Order is checked among the messages in ``acked`` (all when None): a message whose publisher got no answer
    (a timeout) may be delivered at any time; that is what "the outcome is unknown" means."""
    position: tuple[int | None, int | None] | None = None  # (epoch, seq)
    seen: set[str] = set()
    latest: dict[str, int] = {}
    for event in log.events:
        if event.kind in ("sync", "resync"):
            if event.kind == "resync":
                report.resyncs[event.reason or "resync"] += 1
            elif position is not None and position[1] is not None and event.seq is not None and (
                    event.epoch != position[0] or event.seq > position[1]):
                report.silent_gaps += 1
                report.problems.append(f"{log.name}: a sync moved the position from {position} to "
                                       f"{(event.epoch, event.seq)} at {event.t:.3f}")
            position = (event.epoch, event.seq)
            continue
        if event.kind not in ("deliver", "passed"):  # (passed: the position moved past a frame handed over once)
            continue
        if event.seq is not None:
            if position is not None and position[1] is not None and (
                    event.epoch != position[0] or event.seq != position[1] + 1):
                report.silent_gaps += 1
                report.problems.append(f"{log.name}: seq {(event.epoch, event.seq)} after {position} "
                                       f"at {event.t:.3f}")
            position = (event.epoch, event.seq)
        for message_id in event.ids if event.kind == "deliver" else ():
            report.deliveries += 1
            if message_id in seen:
                report.duplicates += 1
                report.problems.append(f"{log.name}: {message_id} handed over twice")
                continue
            seen.add(message_id)
            parsed = _publisher_and_number(message_id)
            if parsed is not None and (acked is None or message_id in acked):
                publisher, number = parsed
                if number < latest.get(publisher, 0):
                    report.out_of_order += 1
                    report.problems.append(f"{log.name}: {message_id} after {publisher}:{latest[publisher]}")
                latest[publisher] = max(number, latest.get(publisher, 0))
    return seen


def _outages(events: list[Event]) -> list[tuple[float, float]]:
    """The intervals a client was without its group: from a lost connection to its next sync or resync."""
    spans, down = [], None
    for event in events:
        if event.kind in ("lost", "silence") and down is None:
            down = event.t
        elif event.kind in ("sync", "resync") and down is not None:
            spans.append((down, event.t))
            down = None
    return spans


def check(logs: Iterable[ClientLog], publishes: Iterable[Publish], faults: Iterable[Fault] = (),
          until: float | None = None) -> Report:
    """The report of one run; ``until`` is when publishing stopped (later messages are not expected)."""
    logs, publishes, faults = list(logs), list(publishes), sorted(faults, key=lambda f: f.start)
    report = Report(published=len(publishes))
    report.acknowledged = sum(1 for p in publishes if p.acked)
    report.refused = sum(1 for p in publishes if p.acked is False)
    report.unknown = sum(1 for p in publishes if p.acked is None)
    acked = {p.id for p in publishes if p.acked}
    received = {log.name: check_client(log, report, acked if publishes else None) for log in logs}
    by_group: dict[str, list[ClientLog]] = defaultdict(list)
    for log in logs:
        by_group[log.group].append(log)
    times = {log.name: _Times(log) for log in logs}
    for publish in publishes:
        if not publish.acked or (until is not None and publish.sent > until):
            continue
        members = by_group.get(publish.group, [])
        if not any(publish.id in received[m.name] for m in members) and not any(
                times[m.name].resync_after(publish.sent) for m in members):
            report.acked_reaching_no_one += 1
            report.problems.append(f"{publish.id} ({publish.kind}, acknowledged) reached no client of "
                                   f"{publish.group} and no resync followed")
        for member in members:
            _count_missed(member, times[member.name], publish, publish.id in received[member.name], report)
    for log in logs:
        for start, end in _outages(log.events):
            report.longest_without_group = max(report.longest_without_group, end - start)
    report.faults = [_survival(fault, faults, logs, publishes) for fault in faults]
    return report


class _Times:
    """When one client first followed its group, its last event, and its resyncs: what :func:`_count_missed` asks
    of every publish, read once (a long run has tens of thousands of publishes and of events per client)."""

    def __init__(self, log: ClientLog) -> None:
        self.first_sync = next((e.t for e in log.events if e.kind in ("sync", "resync")), None)
        self.last = log.events[-1].t if log.events else None
        self.last_resync = max((e.t for e in log.events if e.kind == "resync"), default=None)

    def resync_after(self, t: float) -> bool:
        return self.last_resync is not None and self.last_resync >= t


def _count_missed(member: ClientLog, times: _Times, publish: Publish, got_it: bool, report: Report) -> None:
    if got_it or times.first_sync is None or times.last is None or not times.first_sync <= publish.sent <= times.last:
        return  # received, or sent before the client followed its group or after it stopped
    if times.resync_after(publish.sent):
        report.missed_covered += 1
    else:
        report.missed_uncovered += 1
        report.problems.append(f"{member.name}: missed {publish.id} with no resync after it")


def _survival(fault: Fault, faults: list[Fault], logs: list[ClientLog], publishes: list[Publish]) -> dict[str, Any]:
    later = [f.start for f in faults if f.start > fault.start]
    window_end = min(later) if later else float("inf")
    lost, recovered_after, reasons, told = 0, 0.0, Counter[str](), 0
    for log in logs:
        window = [e for e in log.events if fault.start <= e.t < window_end]
        hints = [e.t for e in window if e.kind == "hint"]
        told += any(e.kind == "lost" and e.reason == "close 1012" and hints and e.t >= hints[0] for e in window)
        losses = [e for e in window if e.kind in ("lost", "silence")]
        if losses:
            lost += 1
            back = [e.t for e in window if e.kind in ("sync", "resync") and e.t >= losses[0].t]
            if back:
                recovered_after = max(recovered_after, back[0] - fault.start)
        reasons.update(e.reason for e in window if e.kind == "resync")
    failed = sum(1 for p in publishes if fault.start <= p.sent < window_end and p.acked is not True)
    return {"fault": fault.kind, "detail": fault.detail, "at": fault.start, "lasted": fault.end - fault.start,
            "clients_reconnected": lost, "all_back_after": round(recovered_after, 2),
            "resyncs": dict(reasons), "publishes_not_acknowledged": failed, "told_to_reconnect": told}


def table(report: Report, seed: int | None = None) -> str:
    """The report as a plain-text table (the one docs/reliability.rst shows)."""
    rows = [("seed", seed), ("messages published", report.published), ("acknowledged", report.acknowledged),
            ("refused (an error to the publisher)", report.refused), ("no answer", report.unknown),
            ("deliveries", report.deliveries), ("silent gaps", report.silent_gaps),
            ("duplicates", report.duplicates), ("out of order", report.out_of_order),
            ("acknowledged, reaching no one, no resync", report.acked_reaching_no_one),
            ("missed by a client, covered by a resync", report.missed_covered),
            ("missed by a client, no resync", report.missed_uncovered),
            ("resyncs", ", ".join(f"{k} {v}" for k, v in sorted(report.resyncs.items())) or "0"),
            ("longest time without the group (s)", f"{report.longest_without_group:.2f}")]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    if report.faults:
        lines += ["", f"{'fault':<22}{'lasted s':>9}{'clients back':>14}{'all back s':>12}{'not acked':>11}"
                      f"{'hint+1012':>11}  resyncs"]
        for f in report.faults:
            resyncs = ", ".join(f"{k} {v}" for k, v in sorted(f["resyncs"].items())) or "-"
            lines.append(f"{f['fault']:<22}{f['lasted']:>9.1f}{f['clients_reconnected']:>14}"
                         f"{f['all_back_after']:>12.2f}{f['publishes_not_acknowledged']:>11}"
                         f"{f.get('told_to_reconnect', 0):>11}  {resyncs}")
    return "\n".join(lines)
