"""Fan-out benchmark: one publisher, N subscribed websocket clients, four servers compared in the same run.

    python benchmarks/fanout.py --clients 100 1000 5000 --messages 200 --server uvicorn --layer memory
    python benchmarks/fanout.py --quick

Variants (each on a fresh server process, on a free 127.0.0.1 port):

* ``channels``   (a) a hand-written Channels ``AsyncJsonWebsocketConsumer``: ``group_add`` on connect,
  ``receive_json`` -> ``channel_layer.group_send``, handler -> ``send_json``; same server and layer as (c).
* ``websockets`` (b) a plain ``websockets`` server that fans out with ``websockets.broadcast()``.
* ``hypergen``   (c) a hypergen_ws ``@consumer`` whose function calls ``agroup_send(fanout.group_name(), payload)``,
  with the Prometheus metrics off.
* ``channelbox`` (d) ChannelBox (``channel-box`` on Starlette, ``channelbox_app.py``) on uvicorn, whatever
  ``--server`` says: ``ChannelBox.group_send`` to every connection.
* ``hypergen-metrics`` (only when named in ``--variants``) the same with the Prometheus metrics on; the ratios
  then include hypergen-metrics/hypergen (the cost of the metrics, docs/operations.rst).

The publisher is one more websocket client (a group member too) that sends ``{"args": [payload]}`` frames; the
payload carries ``time.time_ns()`` of the publish and every client records publish-to-arrival latency. Figures:
p50/p99 latency, deliveries per second (subscriber deliveries / time from the first publish to the last arrival),
loss (expected minus received), server CPU microseconds per delivery (psutil CPU time of the server process
during the publish and drain phase / deliveries), and the ratios of hypergen to each baseline (channels, websockets, channelbox), and how CPU per delivery grows from
the smallest N to the largest for each variant.
Results go to ``benchmarks/results/<name>.json``; ``benchmarks/plot.py`` draws them.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib.common import (ALL_VARIANTS, FIXED_SERVER, HOST, VARIANTS, machine_info,  # noqa: E402
                             raise_nofile_limit, ratio, start_redis, start_server)
from benchlib.fanoutrun import (FanoutParams, fanout_table, loss_notes, ratio_table, ratios,  # noqa: E402
                                run_fanout)
from benchlib.harness import available_variants, cli, run_matrix  # noqa: E402
from benchlib.publisher import Publisher  # noqa: E402

QUICK = {"clients": [50], "messages": 50, "max_seconds": 15.0, "drain_seconds": 10.0, "warmup": 2}
DEFAULTS = {"clients": [100, 1000], "messages": 200, "max_seconds": 60.0, "drain_seconds": 60.0, "warmup": 2}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--clients", type=int, nargs="+", help="numbers of subscribed clients (default 100 1000)")
    ap.add_argument("--messages", type=int, help="messages to publish per run (default 200)")
    ap.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    ap.add_argument("--layer", choices=["memory", "redis", "pubsub"], default="memory",
                    help="channel layer of (a) and (c): InMemory, RedisChannelLayer or RedisPubSubChannelLayer")
    ap.add_argument("--variants", nargs="+", choices=list(ALL_VARIANTS), default=list(VARIANTS))
    ap.add_argument("--repeat", type=int, default=1,
                    help="run the whole size x variant matrix this many times, alternating (default 1)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 50 clients, 50 messages, short time limits")
    ap.add_argument("--client-procs", type=int, default=0,
                    help="client processes (default: 1 up to 2000 clients, else 2)")
    ap.add_argument("--rate", type=float, default=0.0,
                    help="publish at this many messages/s (default 0: as fast as acknowledged, see --window)")
    ap.add_argument("--window", type=int, default=1, help="unacknowledged messages allowed in flight (default 1)")
    ap.add_argument("--payload-bytes", type=int, default=64, help="padding in every message (default 64)")
    ap.add_argument("--warmup", type=int, help="warm-up messages before measuring (default 2)")
    ap.add_argument("--max-seconds", type=float, help="stop publishing after this long (default 60)")
    ap.add_argument("--drain-seconds", type=float,
                    help="wait at most this long for deliveries after publishing (default 60)")
    ap.add_argument("--idle-seconds", type=float, default=3.0, help="stop waiting after this long without progress")
    ap.add_argument("--capacity", type=int, help="channel layer capacity (default: the layer's default, 100)")
    ap.add_argument("--baseline-loop", choices=["uvloop", "asyncio"], default="uvloop",
                    help="event loop of the websockets baseline (default uvloop, like uvicorn)")
    ap.add_argument("--uvicorn-ws", choices=["auto", "websockets", "websockets-sansio", "wsproto"], default="auto",
                    help="uvicorn's websocket implementation (default auto: websockets-sansio)")
    ap.add_argument("--name", help="results file name (default fanout-<server>-<layer>[-quick])")
    ap.add_argument("--no-save", action="store_true", help="print only, write no JSON")
    args = ap.parse_args(argv)
    base = QUICK if args.quick else DEFAULTS
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.name = args.name or f"fanout-{args.server}-{args.layer}" + ("-quick" if args.quick else "")
    return args


async def one_run(variant: str, n: int, args: argparse.Namespace) -> dict:
    redis = start_redis() if args.layer != "memory" else None
    server = None
    try:
        url = f"redis://{HOST}:{redis.port}/0" if redis else ""
        server = start_server(variant, args.server, args.layer, url, args.capacity, args.baseline_loop,
                              args.uvicorn_ws)
        target = (HOST, server.port, ALL_VARIANTS[variant])
        publisher = Publisher([target], args.payload_bytes)
        params = FanoutParams(
            clients=n, messages=args.messages, client_procs=args.client_procs or (1 if n <= 2000 else 2),
            warmup=args.warmup, rate=args.rate, window=args.window, pad_bytes=args.payload_bytes,
            max_seconds=args.max_seconds, idle_seconds=args.idle_seconds, drain_seconds=args.drain_seconds)

        async def publish(kind: str, **kw):
            return await getattr(publisher, kind)(**kw)

        async def close() -> None:
            publisher.close()

        return await run_fanout(variant, [target], [server], params, publisher.open, publish, close,
                                {"redis": redis} if redis else None)
    except Exception as exc:
        tail = server.log_tail() if server else ""
        raise RuntimeError(f"{type(exc).__name__}: {exc}" + (f"\n--- server log ---\n{tail}" if tail else "")) from exc
    finally:
        if server:
            server.stop()
        if redis:
            redis.stop()


async def main(args: argparse.Namespace) -> dict:
    raise_nofile_limit()
    machine = machine_info()  # before the runs: the load average at start means something
    variants, skipped = available_variants(args.variants)
    server_label = FIXED_SERVER
    runs = []
    for round_ in range(args.repeat):
        runs += await run_matrix(
            args.clients, variants, one_run, args,
            lambda n, v: f"{n} clients, {v} ({server_label.get(v, args.server + '/' + args.layer)})"
                         + (f", round {round_ + 1} of {args.repeat}" if args.repeat > 1 else ""))
    result = {
        "benchmark": "fanout" if args.repeat == 1 else "fanout-repeated",  # plot.py draws one run per point
        "name": args.name,
        "command": " ".join(["python", "benchmarks/fanout.py", *sys.argv[1:]]),
        "params": {k: v for k, v in vars(args).items() if k not in ("no_save",)},
        "skipped": skipped,
        "machine": machine,
        "runs": runs,
        "ratios": ratios(runs, "hypergen", ["channels", "websockets", "channelbox"]) if args.repeat == 1 else [],
        "cpu_growth": cpu_growth(runs) if args.repeat == 1 else {},
    }
    if "hypergen-metrics" in variants and "hypergen" in variants:
        result["metrics_cost"] = metrics_cost(runs)
    return result


def cpu_growth(runs: list[dict]) -> dict:
    """Per variant, CPU per delivery at the largest N over the smallest N (flat cost is 1)."""
    out = {}
    for variant in dict.fromkeys(r["variant"] for r in runs):
        ok = sorted((r["clients"], r["cpu_us_per_delivery"]) for r in runs
                    if r["variant"] == variant and "error" not in r and r.get("cpu_us_per_delivery"))
        if len(ok) > 1:
            out[variant] = {"from": ok[0][0], "to": ok[-1][0], "growth": ratio(ok[-1][1], ok[0][1])}
    return out


def metrics_cost(runs: list[dict]) -> list[dict]:
    """Per size: server CPU per delivery with and without metrics over the rounds (mean, median), and the
    median of the per-round differences (each round runs both, one after the other)."""
    out = []
    for n in sorted({r["clients"] for r in runs}):
        cpu = {v: [r["cpu_us_per_delivery"] for r in runs if r["clients"] == n and r["variant"] == v
                   and "error" not in r and r.get("cpu_us_per_delivery")] for v in ("hypergen", "hypergen-metrics")}
        off_runs, on_runs = cpu["hypergen"], cpu["hypergen-metrics"]
        if not off_runs or not on_runs:
            continue
        pairs = [100 * (on - off) / off for off, on in zip(off_runs, on_runs)]
        off, on = statistics.mean(off_runs), statistics.mean(on_runs)
        out.append({"clients": n, "runs": min(len(off_runs), len(on_runs)),
                    "off_us": round(off, 2), "on_us": round(on, 2), "difference_pct": round(100 * (on - off) / off, 2),
                    "off_median_us": round(statistics.median(off_runs), 2),
                    "on_median_us": round(statistics.median(on_runs), 2),
                    "median_paired_difference_pct": round(statistics.median(pairs), 2),
                    "off_runs_us": [round(v, 2) for v in off_runs], "on_runs_us": [round(v, 2) for v in on_runs]})
    return out


def report(result: dict) -> str:
    p = result["params"]
    pace = f"rate {p['rate']}/s" if p["rate"] else f"window {p['window']}"
    lines = [f"fan-out: server={p['server']} (uvicorn --ws {p['uvicorn_ws']}) layer={p['layer']} "
             f"messages={p['messages']} payload={p['payload_bytes']}B publish={pace}",
             "", fanout_table(result["runs"])]
    notes = loss_notes(result["runs"])
    if notes:
        lines += ["", "not received (dropped by a layer, or still queued when the wait ended):", *notes]
    if result["ratios"]:
        lines += ["", "ratios (hypergen / baseline; > 1 means hypergen is higher):", ratio_table(result["ratios"])]
    growth = result.get("cpu_growth") or {}
    if growth:
        lines += ["", "CPU per delivery, largest N / smallest N (1 is flat):"]
        lines += [f"  {v}: {g['growth']:.2f} ({g['from']:,} -> {g['to']:,} clients)" for v, g in growth.items()]
        if "hypergen" in growth and "websockets" in growth:
            lines.append(f"  hypergen growth / websockets growth: "
                         f"{growth['hypergen']['growth'] / growth['websockets']['growth']:.2f}")
    for row in result.get("metrics_cost", []):
        lines.append(f"\nmetrics cost at {row['clients']} clients, server CPU us per delivery over {row['runs']} rounds: "
                     f"mean {row['off_us']} without metrics, {row['on_us']} with ({row['difference_pct']:+.2f}%); "
                     f"median {row['off_median_us']} / {row['on_median_us']}; median of the per-round differences "
                     f"{row['median_paired_difference_pct']:+.2f}% (off {row['off_runs_us']}, on {row['on_runs_us']})")
    for name, why in result["skipped"].items():
        lines.append(f"\n{name}: skipped ({why})")
    bound = [f"{r['variant']}@{r['clients']}" for r in result["runs"] if r.get("client_bound")]
    if bound:
        lines.append("\nclient-bound runs (a client process above 90% CPU; deliveries/s is then a lower bound): "
                     + ", ".join(bound))
    return "\n".join(lines)


if __name__ == "__main__":
    cli(parse_args, main, report)
