"""One fan-out run: connect N clients, warm up, publish M messages, drain, and compute the figures."""
from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from benchlib.clients import ClientPool
from benchlib.common import ServerProcess, format_table, ratio


@dataclass
class FanoutParams:
    clients: int
    messages: int
    client_procs: int = 1
    warmup: int = 2
    rate: float = 0.0
    window: int = 1
    pad_bytes: int = 64
    max_seconds: float = 60.0
    idle_seconds: float = 3.0
    drain_seconds: float = 60.0
    connect_concurrency: int = 200
    ack_timeout: float = 2.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


async def run_fanout(variant: str, targets: list[tuple[str, int, str]], servers: list[ServerProcess],
                     p: FanoutParams, open_publisher: Callable[[], Awaitable], publish: Callable[..., Awaitable],
                     close_publisher: Callable[[], Awaitable], others: dict[str, ServerProcess] | None = None) -> dict:
    """Measure one variant at one N.

    ``servers`` are the processes whose CPU counts as the server cost; ``others`` (redis-server) are reported
    apart. ``open_publisher`` connects the publisher, ``publish(kind, **kw)`` runs ``warmup`` or ``publish``
    and returns its result, ``close_publisher`` disconnects it.
    """
    others = others or {}
    pool = await ClientPool.start(p.clients, p.client_procs)
    try:
        conn = await pool.connect(targets, p.connect_concurrency)
        ok = conn["ok"]
        log(f"  {variant}: {ok}/{p.clients} clients connected in {conn['seconds']:.2f}s"
            + (f" ({conn['failed']} failed: {conn['errors']})" if conn["failed"] else ""))
        await pool.all(30, cmd="arm", messages=p.messages)
        await open_publisher()
        warm_acked = await publish("warmup", count=p.warmup)
        loop = asyncio.get_running_loop()
        warm = await pool.wait_for("warm", ok * p.warmup, idle=5,
                                   deadline=loop.time() + max(30.0, p.max_seconds))
        if warm["warm"] < ok * p.warmup:
            log(f"  {variant}: warm-up reached {warm['warm']}/{ok * p.warmup} deliveries")
        srv0 = [s.cpu_seconds() for s in servers]
        oth0 = {k: s.cpu_seconds() for k, s in others.items()}
        cli0 = pool.cpu_seconds()
        pub = await publish("publish", messages=p.messages, rate=p.rate, window=p.window,
                            max_seconds=p.max_seconds, ack_timeout=p.ack_timeout)
        expected = ok * pub["sent"]
        st = await pool.wait_for("received", expected, p.idle_seconds, loop.time() + p.drain_seconds)
        srv1 = [s.cpu_seconds() for s in servers]
        oth1 = {k: s.cpu_seconds() for k, s in others.items()}
        cli1 = pool.cpu_seconds()
        rss = [s.rss() for s in servers]
        lat, final = await pool.latencies()
        await close_publisher()
    finally:
        await pool.stop()

    received = final["received"]
    # frames the server delivered to the clients while its CPU was measured: the measured messages plus warm-up
    # copies that were still on their way when publishing started (a slow server)
    late_warm = final["warm"] - warm["warm"]
    delivered_in_phase = received + late_warm
    window_s = (final["last_ns"] - pub["first_ns"]) / 1e9 if received and pub["first_ns"] else None
    server_cpu = sum(b - a for a, b in zip(srv0, srv1))
    client_cpu = [b - a for a, b in zip(cli0, cli1)]
    lat_ms = lat / 1e6
    pct = (lambda q: float(np.percentile(lat_ms, q))) if len(lat_ms) else (lambda q: None)
    result = {
        "variant": variant,
        "clients": p.clients,
        "connected": ok,
        "connect_failed": conn["failed"],
        "connect_seconds": conn["seconds"],
        "warmup_acked": warm_acked,
        "sent": pub["sent"],
        "publish_mode": pub["mode"],
        "publish_rate": pub["publish_rate"],
        "publish_stopped_by": pub["stopped_by"],
        "ack_timeouts": pub["ack_timeouts"],
        "publish_errors": pub.get("publish_errors", []),
        "expected": expected,
        "received": received,
        "lost": expected - received,
        "loss_pct": 100.0 * (expected - received) / expected if expected else None,
        "duplicates": final["dupes"],
        "drain": st["waited_until"],
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": float(lat_ms.max()) if len(lat_ms) else None,
        "window_seconds": window_s,
        "deliveries_per_s": received / window_s if window_s else None,
        "server_cpu_seconds": server_cpu,
        "server_cpu_util": server_cpu / window_s if window_s else None,
        "late_warmup_deliveries": late_warm,
        "cpu_us_per_delivery": server_cpu * 1e6 / delivered_in_phase if delivered_in_phase else None,
        "server_rss_mb": [round(r / 2**20, 1) for r in rss],
        "client_cpu_util_max": max(c / window_s for c in client_cpu) if window_s else None,
        "closed_during_run": final["closed"],
        "close_codes": final["close_codes"],
        "other_frames": final["other"],
    }
    for k in others:
        d = oth1[k] - oth0[k]
        result[f"{k}_cpu_seconds"] = d
        result[f"{k}_cpu_us_per_delivery"] = d * 1e6 / delivered_in_phase if delivered_in_phase else None
    result["client_bound"] = bool(result["client_cpu_util_max"] and result["client_cpu_util_max"] > 0.9)
    log(f"  {variant}: {received:,}/{expected:,} delivered, "
        + (f"{result['deliveries_per_s']:,.0f}/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
           f"{result['cpu_us_per_delivery']:.1f} server CPU us/delivery" if received else "nothing delivered"))
    if result["publish_errors"]:
        log(f"  {variant}: the server refused {len(result['publish_errors'])} publishing calls: "
            f"{sorted(set(result['publish_errors']))}")
    return result


RATIO_METRICS = [("deliveries_per_s", "deliveries/s"), ("cpu_us_per_delivery", "CPU us/delivery"),
                 ("p50_ms", "p50"), ("p99_ms", "p99")]


def ratios(runs: list[dict], subject: str, baselines: list[str], key: str = "clients") -> list[dict]:
    """For every ``key`` value, ``subject / baseline`` of each ratio metric, from runs of the same invocation."""
    out = []
    for value in sorted({r[key] for r in runs}):
        by_variant = {r["variant"]: r for r in runs if r[key] == value and "error" not in r}
        if subject not in by_variant:
            continue
        row: dict = {key: value}
        for base in baselines:
            if base in by_variant:
                row[f"{subject}/{base}"] = {m: ratio(by_variant[subject].get(m), by_variant[base].get(m))
                                            for m, _ in RATIO_METRICS}
        if len(row) > 1:
            out.append(row)
    return out


def fanout_table(runs: list[dict], label: str = "clients") -> str:
    headers = [label, "variant", "sent", "expected", "received", "loss %", "p50 ms", "p99 ms", "deliveries/s",
               "srv CPU us/deliv", "srv CPU %", "cli CPU %", "closed"]
    rows = []
    for r in runs:
        if "error" in r:
            rows.append([r.get(label, r.get("clients")), r["variant"], "error: " + r["error"][:60]] + [None] * 10)
            continue
        rows.append([r.get(label, r["clients"]), r["variant"], r["sent"], r["expected"], r["received"], r["loss_pct"],
                     r["p50_ms"], r["p99_ms"], r["deliveries_per_s"], r["cpu_us_per_delivery"],
                     100 * r["server_cpu_util"] if r["server_cpu_util"] is not None else None,
                     100 * r["client_cpu_util_max"] if r["client_cpu_util_max"] is not None else None,
                     r["closed_during_run"]])
    return format_table(headers, rows)


def loss_notes(runs: list[dict]) -> list[str]:
    """One line per run where not every expected frame arrived, with how the wait for them ended."""
    why = {"idle": "no frame arrived for --idle-seconds", "deadline": "--drain-seconds ran out",
           "complete": "complete"}
    return [f"  {r['variant']}@{r['clients']:,}: {r['lost']:,} of {r['expected']:,} not received "
            f"({r['loss_pct']:.2f}%); stopped waiting: {why.get(r['drain'], r['drain'])}"
            + (f"; {r['closed_during_run']:,} connections closed {r['close_codes']}" if r["closed_during_run"] else "")
            for r in runs if "error" not in r and r["lost"]]


def ratio_table(rows: list[dict], key: str = "clients") -> str:
    headers = [key, "ratio"] + [label for _, label in RATIO_METRICS]
    out = []
    for row in rows:
        for name, vals in row.items():
            if name == key:
                continue
            out.append([row[key], name] + [vals[m] for m, _ in RATIO_METRICS])
    return format_table(headers, out)
