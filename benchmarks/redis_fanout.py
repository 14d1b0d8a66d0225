"""Scale-out fan-out benchmark: two server processes sharing one real redis-server.

    python benchmarks/redis_fanout.py --clients 1000 --messages 200 --server uvicorn
    python benchmarks/redis_fanout.py --quick

The script starts its own redis-server (free loopback port, no persistence) for every run, two server processes
of the variant on that redis, and spreads the clients over both servers (round robin). A third process publishes:
by default a Django process that calls the channel layer directly (as a view or a task worker would; ``--publish
ws`` sends call frames to the first server instead). Variants, each on both channels_redis layers:

* ``channels-redis`` / ``channels-pubsub``: the hand-written consumer of ``fanout.py`` on ``RedisChannelLayer`` /
  ``RedisPubSubChannelLayer``, published with ``channel_layer.group_send``;
* ``hypergen-redis`` / ``hypergen-pubsub``: the hypergen_ws ``@consumer``, published with ``agroup_send``.

Figures as in ``fanout.py``; server CPU is the sum of both servers, redis-server CPU is reported apart.
``RedisChannelLayer`` keeps at most ``capacity`` (default 100) messages per channel and DROPS group messages
beyond that without an error: the loss column shows it, nothing is retried or hidden. ``--capacity`` changes it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib.clients import ClientProcess  # noqa: E402
from benchlib.harness import available_variants, cli, run_matrix  # noqa: E402
from benchlib.common import (HOST, VARIANTS, django_env, machine_info,  # noqa: E402
                             raise_nofile_limit, start_redis, start_server)
from benchlib.fanoutrun import (FanoutParams, fanout_table, loss_notes, ratio_table, ratios,  # noqa: E402
                                run_fanout)
from benchlib.publisher import Publisher  # noqa: E402

LAYERS = ["redis", "pubsub"]
ALL = [f"{v}-{layer}" for layer in LAYERS for v in ("channels", "hypergen")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--clients", type=int, nargs="+", help="total clients over both servers (default 1000)")
    ap.add_argument("--messages", type=int, help="messages per run (default 200)")
    ap.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    ap.add_argument("--variants", nargs="+", choices=ALL, default=ALL)
    ap.add_argument("--publish", choices=["layer", "ws"], default="layer",
                    help="publish from a third process through the layer (default) or over a websocket")
    ap.add_argument("--quick", action="store_true", help="smoke run: 50 clients, 50 messages")
    ap.add_argument("--client-procs", type=int, default=0, help="client processes (default 1, 2 above 2000)")
    ap.add_argument("--rate", type=float, default=0.0, help="messages/s (default 0: as fast as acknowledged)")
    ap.add_argument("--window", type=int, default=1, help="unacknowledged messages in flight (default 1)")
    ap.add_argument("--payload-bytes", type=int, default=64)
    ap.add_argument("--warmup", type=int)
    ap.add_argument("--max-seconds", type=float)
    ap.add_argument("--drain-seconds", type=float)
    ap.add_argument("--idle-seconds", type=float, default=3.0)
    ap.add_argument("--capacity", type=int, help="channel layer capacity (default: channels_redis default, 100)")
    ap.add_argument("--uvicorn-ws", choices=["auto", "websockets", "websockets-sansio", "wsproto"], default="auto",
                    help="uvicorn's websocket implementation (default auto: websockets-sansio)")
    ap.add_argument("--name", help="results file name (default redis-fanout-<server>[-quick])")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args(argv)
    quick = {"clients": [50], "messages": 50, "warmup": 2, "max_seconds": 15.0, "drain_seconds": 10.0}
    full = {"clients": [1000], "messages": 200, "warmup": 2, "max_seconds": 60.0, "drain_seconds": 60.0}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.name = args.name or f"redis-fanout-{args.server}" + ("-quick" if args.quick else "")
    return args


async def one_run(name: str, n: int, args: argparse.Namespace) -> dict:
    variant, layer = name.split("-")
    redis = start_redis()
    servers = []
    publisher_proc = None
    try:
        url = f"redis://{HOST}:{redis.port}/0"
        for _ in range(2):
            servers.append(start_server(variant, args.server, layer, url, args.capacity,
                                        uvicorn_ws=args.uvicorn_ws))
        targets = [(HOST, s.port, VARIANTS[variant]) for s in servers]
        params = FanoutParams(
            clients=n, messages=args.messages, client_procs=args.client_procs or (1 if n <= 2000 else 2),
            warmup=args.warmup, rate=args.rate, window=args.window, pad_bytes=args.payload_bytes,
            max_seconds=args.max_seconds, idle_seconds=args.idle_seconds, drain_seconds=args.drain_seconds)
        others = {"redis": redis}
        if args.publish == "ws":
            publisher = Publisher(targets, args.payload_bytes)

            async def open_pub() -> None:
                await publisher.open()

            async def publish(kind: str, **kw):
                return await getattr(publisher, kind)(**kw)

            async def close_pub() -> None:
                publisher.close()
        else:
            env = django_env(variant, layer, url, args.capacity)
            publisher_proc = await ClientProcess.start(
                "benchlib.layer_publisher", [variant, json.dumps([list(t) for t in targets]),
                                             str(args.payload_bytes)], env)

            async def open_pub() -> None:
                await publisher_proc.call(60, cmd="open")

            async def publish(kind: str, **kw):
                return await publisher_proc.call(args.max_seconds + 120, cmd=kind, **kw)

            async def close_pub() -> None:
                await publisher_proc.call(30, cmd="close")

        result = await run_fanout(name, targets, servers, params, open_pub, publish, close_pub, others)
        result["layer"] = layer
        result["base_variant"] = variant
        result["servers"] = len(servers)
        result["publish_via"] = args.publish
        return result
    except Exception as exc:
        tail = "\n".join(f"--- server {i} log ---\n{s.log_tail()}" for i, s in enumerate(servers, 1))
        raise RuntimeError(f"{type(exc).__name__}: {exc}\n{tail}") from exc
    finally:
        if publisher_proc:
            await publisher_proc.stop()
        for s in servers:
            s.stop()
        redis.stop()


async def main(args: argparse.Namespace) -> dict:
    raise_nofile_limit()
    machine = machine_info()  # before the runs: the load average at start means something
    variants, skipped = available_variants(args.variants)
    runs = await run_matrix(args.clients, variants, one_run, args,
                            lambda n, v: f"{n} clients on 2 {args.server} servers, {v}")
    ratio_rows = []
    for layer in LAYERS:
        for row in ratios(runs, f"hypergen-{layer}", [f"channels-{layer}"]):
            ratio_rows.append(row)
    return {"benchmark": "redis_fanout", "name": args.name,
            "command": " ".join(["python", "benchmarks/redis_fanout.py", *sys.argv[1:]]),
            "params": {k: v for k, v in vars(args).items() if k != "no_save"}, "skipped": skipped,
            "machine": machine, "runs": runs, "ratios": ratio_rows}


def report(result: dict) -> str:
    p = result["params"]
    lines = [f"redis fan-out: 2 x {p['server']} + redis-server, publish via {p['publish']}, "
             f"messages={p['messages']} capacity={p['capacity'] or 'default (100)'}", "", fanout_table(result["runs"])]
    redis_rows = [f"  {r['variant']}@{r['clients']}: {r['redis_cpu_us_per_delivery']:.2f} us/delivery"
                  for r in result["runs"] if r.get("redis_cpu_us_per_delivery") is not None]
    if redis_rows:
        lines += ["", "redis-server CPU:", *redis_rows]
    if result["ratios"]:
        lines += ["", "ratios (hypergen / hand-written on the same layer):", ratio_table(result["ratios"])]
    lossy = loss_notes(result["runs"])
    if lossy:
        lines += ["", "LOSS (dropped by the layer, or still queued when the wait ended):", *lossy]
    for name, why in result["skipped"].items():
        lines.append(f"\n{name}: skipped ({why})")
    return "\n".join(lines)


if __name__ == "__main__":
    cli(parse_args, main, report)
