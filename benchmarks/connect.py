"""Connect benchmark: connection rate and memory per idle connection, four servers compared in the same run.

    python benchmarks/connect.py --clients 1000 5000 --server uvicorn --layer memory
    python benchmarks/connect.py --quick

For each K and each variant (``channels``, ``websockets``, ``hypergen``, ``channelbox``, as in
``fanout.py``; and, when asked for, ``asgi``: a bare ASGI application on ``--server``, the server's own floor) a
fresh server is started and warmed up with 20 connections that are opened and closed again (so lazy imports and first-use caches
are not counted). Then K clients connect, at most ``--concurrency`` handshakes in flight; a connection counts when
the server's ``101`` answer arrived, i.e. after the consumer accepted it (and joined its group). Figures:

* connections/s = K / time from the first connect to the last ``101`` (measured in the client process);
* server CPU microseconds per connection over the same phase;
* memory per idle connection = (server RSS with K idle connections - RSS before) / K, read ``--settle``
  seconds after the last connection;
* with ``--idle SECONDS``, an idle phase after that: the K connections stay open and quiet for that long, and the
  server's CPU over it is reported as a percentage of one core (``idle CPU %``), with the protocol pings the
  clients received per second (they answer each with a pong). The server's own websocket pings (uvicorn every
  20 s, daphne every 20 s of silence) are part of that floor for every variant. ``--ping-interval`` sets
  hypergen_ws's ``PING_INTERVAL`` (``off``: ``None``) to tell the heartbeat's cost from the rest:

    python benchmarks/connect.py --clients 10000 --variants hypergen --idle 60 --client-procs 2 --ping-interval 25 off
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib.clients import ClientPool  # noqa: E402
from benchlib.common import (CONNECT_VARIANTS, HOST, VARIANTS, format_table, machine_info,  # noqa: E402
                             raise_nofile_limit, ratio, start_redis, start_server)
from benchlib.fanoutrun import log  # noqa: E402
from benchlib.harness import available_variants, cli, run_matrix  # noqa: E402
from benchlib.wsclient import connect  # noqa: E402

METRICS = [("connections_per_s", "conn/s"), ("kb_per_connection", "KB/conn"), ("cpu_us_per_connection", "CPU us/conn")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--clients", type=int, nargs="+", help="numbers of connections K (default 1000)")
    ap.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    ap.add_argument("--layer", choices=["memory", "redis", "pubsub"], default="memory")
    ap.add_argument("--variants", nargs="+", choices=list(CONNECT_VARIANTS), default=list(VARIANTS),
                    help="asgi: a bare ASGI application on --server, the server's own cost per connection")
    ap.add_argument("--quick", action="store_true", help="smoke run: 200 connections")
    ap.add_argument("--concurrency", type=int, default=100, help="handshakes in flight at most (default 100)")
    ap.add_argument("--client-procs", type=int, default=1, help="client processes (default 1)")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds between the last connection and the RSS read")
    ap.add_argument("--idle", type=float, default=0.0,
                    help="seconds of an idle phase with every connection open (server CPU %%; default 0: none)")
    ap.add_argument("--ping-interval", nargs="+", default=[],
                    help="hypergen_ws's PING_INTERVAL in seconds, or off (default 25); several values: the whole "
                         "matrix once per value, in the same run (e.g. 25 off)")
    ap.add_argument("--capacity", type=int, help="channel layer capacity (default: the layer's default)")
    ap.add_argument("--baseline-loop", choices=["uvloop", "asyncio"], default="uvloop")
    ap.add_argument("--uvicorn-ws", choices=["auto", "websockets", "websockets-sansio", "wsproto"], default="auto",
                    help="uvicorn's websocket implementation (default auto: websockets-sansio)")
    ap.add_argument("--stack", choices=["bare", "auth", "quickstart"], default="bare",
                    help="what wraps the Django variants' websocket router: nothing (bare), AuthMiddlewareStack "
                         "(auth), or the quickstart's asgi.py: SameOriginValidator(AuthMiddlewareStack(...)) and "
                         "BodyLimit for HTTP (quickstart)")
    ap.add_argument("--name", help="results file name (default connect-<server>-<layer>[-<stack>][-quick])")
    ap.add_argument("--no-save", action="store_true", help="print only, write no JSON")
    args = ap.parse_args(argv)
    args.clients = args.clients or ([200] if args.quick else [1000])
    args.name = args.name or (f"connect-{args.server}-{args.layer}" + ("" if args.stack == "bare" else f"-{args.stack}")
                              + ("-quick" if args.quick else ""))
    return args


async def warm_up(port: int, path: str, count: int = 20) -> None:
    conns = await asyncio.gather(*(connect(HOST, port, path, lambda _m: None) for _ in range(count)))
    for c in conns:
        c.close()
    await asyncio.sleep(0.5)


async def one_run(variant: str, k: int, args: argparse.Namespace) -> dict:
    redis = start_redis() if args.layer != "memory" else None
    server = pool = None
    try:
        url = f"redis://{HOST}:{redis.port}/0" if redis else ""
        server = start_server(variant, args.server, args.layer, url, args.capacity, args.baseline_loop,
                              args.uvicorn_ws)
        path = CONNECT_VARIANTS[variant]
        await warm_up(server.port, path)
        pool = await ClientPool.start(k, args.client_procs)
        await asyncio.sleep(args.settle)
        rss0, cpu0 = server.rss(), server.cpu_seconds()
        conn = await pool.connect([(HOST, server.port, path)], args.concurrency)
        cpu1 = server.cpu_seconds()
        await asyncio.sleep(args.settle)
        rss1 = server.rss()
        idle: dict = {}
        if args.idle > 0:
            before = await pool.status()
            cpu2, t2 = server.cpu_seconds(), asyncio.get_running_loop().time()
            await asyncio.sleep(args.idle)
            cpu3, t3 = server.cpu_seconds(), asyncio.get_running_loop().time()
            after = await pool.status()
            pings = after["other"].get("ping", 0) - before["other"].get("ping", 0)
            idle = {"idle_seconds": t3 - t2, "idle_cpu_percent": (cpu3 - cpu2) / (t3 - t2) * 100,
                    "idle_pings_per_s": pings / (t3 - t2), "idle_closed": after["closed"] - before["closed"]}
            log(f"  {variant}: idle {idle['idle_seconds']:.0f} s: server CPU {idle['idle_cpu_percent']:.2f} % of "
                f"one core, {idle['idle_pings_per_s']:.0f} pings/s")
        st = await pool.status()
        ok = conn["ok"]
        result = {
            "variant": variant, "clients": k, "connected": ok, "failed": conn["failed"], "retries": conn["retries"],
            "errors": conn["errors"], "seconds": conn["seconds"],
            "connections_per_s": ok / conn["seconds"] if conn["seconds"] else None,
            "cpu_us_per_connection": (cpu1 - cpu0) * 1e6 / ok if ok else None,
            "rss_before_mb": rss0 / 2**20, "rss_after_mb": rss1 / 2**20,
            "kb_per_connection": (rss1 - rss0) / 1024 / ok if ok else None,
            "open_after_settle": st["open"], "closed_after_settle": st["closed"], **idle,
        }
        log(f"  {variant}: {ok}/{k} in {conn['seconds']:.2f}s = {result['connections_per_s'] or 0:,.0f}/s, "
            f"{result['kb_per_connection'] or 0:.1f} KB/conn")
        return result
    except Exception as exc:
        tail = server.log_tail() if server else ""
        raise RuntimeError(f"{type(exc).__name__}: {exc}" + (f"\n--- server log ---\n{tail}" if tail else "")) from exc
    finally:
        if pool:
            await pool.stop()
        if server:
            server.stop()
        if redis:
            redis.stop()


async def main(args: argparse.Namespace) -> dict:
    raise_nofile_limit()
    os.environ["BENCH_AUTH"] = {"bare": "0", "auth": "1", "quickstart": "quickstart"}[args.stack]
    machine = machine_info()  # before the runs: the load average at start means something
    variants, skipped = available_variants(args.variants)
    runs: list[dict] = []
    pings = args.ping_interval or [None]
    for ping in pings:
        if ping is None:
            os.environ.pop("BENCH_PING_INTERVAL", None)
        else:
            os.environ["BENCH_PING_INTERVAL"] = ping  # read by benchproject.settings in the server
        label = "" if ping is None else f", PING_INTERVAL={ping}"
        for r in await run_matrix(args.clients, variants, one_run, args, lambda k, v: f"{k} connections, {v}{label}"):
            runs.append({**r, "ping_interval": ping})
    ratios = []
    for k in args.clients:
        by = {r["variant"]: r for r in runs
              if r["clients"] == k and "error" not in r and r["ping_interval"] == pings[0]}
        if "hypergen" not in by:
            continue
        row: dict = {"clients": k}
        for base in ("channels", "websockets", "channelbox", "asgi"):
            if base in by:
                row[f"hypergen/{base}"] = {m: ratio(by["hypergen"][m], by[base][m]) for m, _ in METRICS}
        if len(row) > 1:
            ratios.append(row)
    return {"benchmark": "connect", "name": args.name,
            "command": " ".join(["python", "benchmarks/connect.py", *sys.argv[1:]]),
            "params": {k: v for k, v in vars(args).items() if k != "no_save"}, "skipped": skipped,
            "machine": machine, "runs": runs, "ratios": ratios}


def report(result: dict) -> str:
    p = result["params"]
    rows = []
    for r in result["runs"]:
        if "error" in r:
            rows.append([r["clients"], r["variant"], r.get("ping_interval") or "default",
                         "error: " + r["error"][:60]] + [None] * 8)
        else:
            rows.append([r["clients"], r["variant"], r.get("ping_interval") or "default", r["connected"], r["failed"],
                         r["connections_per_s"],
                         r["cpu_us_per_connection"], r["rss_before_mb"], r["rss_after_mb"], r["kb_per_connection"],
                         r.get("idle_cpu_percent"), r.get("idle_pings_per_s")])
    lines = [f"connect: server={p['server']} layer={p['layer']} stack={p.get('stack', 'bare')} "
             f"concurrency={p['concurrency']} idle={p.get('idle', 0):g}s", "",
             format_table(["K", "variant", "PING_INTERVAL", "connected", "failed", "conn/s", "srv CPU us/conn", "RSS before MB",
                           "RSS after MB", "KB/conn", "idle CPU %", "pings/s"], rows)]
    if result["ratios"]:
        out = []
        for row in result["ratios"]:
            for name, vals in row.items():
                if name != "clients":
                    out.append([row["clients"], name] + [vals[m] for m, _ in METRICS])
        lines += ["", "ratios (hypergen / baseline):", format_table(["K", "ratio"] + [lbl for _, lbl in METRICS], out)]
    for name, why in result["skipped"].items():
        lines.append(f"\n{name}: skipped ({why})")
    return "\n".join(lines)


if __name__ == "__main__":
    cli(parse_args, main, report)
