"""Reconnect storm benchmark: N clients of a group with history, a publisher that never stops, a server restart.

    python benchmarks/storm.py --clients 1000 10000 --server uvicorn --spread 5 0
    python benchmarks/storm.py --quick

For each N, variant and spread, a fresh server (one process) and a private redis-server are started; N clients
(``benchlib.stormclient``, in ``--client-procs`` processes) connect and a publisher (``benchlib.storm_publisher``)
sends ``{"i": n}`` at ``--rate`` messages/s from outside the server. Then the server is sent SIGTERM and, as soon
as it has exited, a new one is started on the same port. Figures, from the SIGTERM on:

* ``recovered s``: until every client is connected again and, for hypergen_ws, has its ``sync`` (it caught up
  from its last seq); for the baselines, which have no recovery, until every client is connected;
* ``peak accepts/s``: the most handshakes that succeeded within one second;
* ``peak RSS MB``: of the new server process, sampled every 100 ms until every client recovered;
* ``failed``: handshakes that failed (refused while no server listened, no ``101``, no answer within 10 s);
* ``lost``: messages published after a client's first one that it never received (summed over the clients),
  counted once the publisher stopped and the clients went quiet; ``resyncs``: frames telling a client it missed
  frames for good; ``gaps``: sockets a hypergen client closed because a seq was skipped (as hypergen-ws.js does,
  it reconnects at once from the last seq it handled and the server replays the rest, so a gap is not a loss);
  ``unavailable``: history reads of the new server that failed or ran out of ``CONNECT_TIMEOUT``
  (``--connect-timeout``), each answered with a resync (counted from its log).

Variants: ``hypergen`` (a ``@consumer(history=2000)`` on the Redis layer; its clients wait the delay of the
``reconnect`` frame, a random share of ``RECONNECT_SPREAD``, given with ``--spread``), ``channels`` (a hand-written
``AsyncJsonWebsocketConsumer`` on the Redis layer: the server closes with 1012 or drops the sockets, the clients
back off and reconnect, nothing is replayed) and ``channelbox`` (ChannelBox on uvicorn; everything in the server's
memory, so the publisher is a websocket client of the server and nothing survives the restart). The spread applies
to hypergen only; the baselines run once per N.

The new server is started as soon as the old one released the port (hypergen_ws stops listening at the SIGTERM,
before it tells its clients; uvicorn and daphne at the start of their own shutdown), as a supervisor that restarts
a process at once would, while the old one may still be closing its sockets; ``old exit s`` says when it ended.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib.clients import ClientPool, ClientProcess  # noqa: E402
from benchlib.common import (HOST, django_env, format_table, machine_info, raise_nofile_limit,  # noqa: E402
                             start_redis, start_server)
from benchlib.fanoutrun import log  # noqa: E402
from benchlib.harness import available_variants, cli  # noqa: E402

PATHS = {"hypergen": "/ws/benchproject/storm/", "channels": "/ws/bench/", "channelbox": "/ws/box/"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--clients", type=int, nargs="+", help="numbers of clients N (default 1000 10000)")
    ap.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    ap.add_argument("--variants", nargs="+", choices=list(PATHS), default=list(PATHS))
    ap.add_argument("--spread", type=float, nargs="+", default=[5.0, 0.0],
                    help="RECONNECT_SPREAD values for hypergen (default 5 0)")
    ap.add_argument("--rate", type=float, default=2.0, help="messages the publisher sends per second (default 2)")
    ap.add_argument("--client-procs", type=int, help="client processes (default: 1 up to 2000 clients, else 2)")
    ap.add_argument("--concurrency", type=int, default=200, help="handshakes in flight at the first connect")
    ap.add_argument("--before", type=float, default=3.0, help="seconds of publishing before the restart")
    ap.add_argument("--deadline", type=float, default=90.0, help="seconds after the SIGTERM to give up waiting")
    ap.add_argument("--connect-timeout", type=float,
                    help="hypergen_ws's CONNECT_TIMEOUT in seconds for the hypergen variant (default 2.5)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 200 clients")
    ap.add_argument("--name", help="results file name (default storm-<server>[-quick])")
    ap.add_argument("--no-save", action="store_true", help="print only, write no JSON")
    args = ap.parse_args(argv)
    args.clients = args.clients or ([200] if args.quick else [1000, 10000])
    args.name = args.name or f"storm-{args.server}" + ("-quick" if args.quick else "")
    return args


async def sample_rss(server, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], server.rss())
        except Exception:  # noqa: BLE001 - the process may be starting or gone
            pass
        await asyncio.sleep(0.1)


def peak_per_second(stamps: list[float]) -> int:
    """The most timestamps within any one-second window."""
    stamps = sorted(stamps)
    best, start = 0, 0
    for end, t in enumerate(stamps):
        while t - stamps[start] > 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def one_run(variant: str, n: int, spread: float | None, args: argparse.Namespace) -> dict:
    kind = "uvicorn" if variant == "channelbox" else args.server
    layer = "memory" if variant == "channelbox" else "redis"
    redis = start_redis() if layer == "redis" else None
    os.environ["BENCH_RECONNECT_SPREAD"] = str(spread if spread is not None else 5.0)
    if args.connect_timeout is not None:
        os.environ["BENCH_CONNECT_TIMEOUT"] = str(args.connect_timeout)
    url = f"redis://{HOST}:{redis.port}/0" if redis else ""
    server = start_server(variant, kind, layer, url)
    port = server.port
    procs = args.client_procs or (1 if n <= 2000 else 2)
    pool = publisher = new = None
    try:
        counts = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
        pool = ClientPool([await ClientProcess.start("benchlib.stormclient") for _ in counts], counts)
        per = max(1, args.concurrency // len(pool.procs))
        await asyncio.gather(*(p.call(60, cmd="connect", targets=[[HOST, port, PATHS[variant]]], count=c,
                                      concurrency=per, recovers=variant == "hypergen")
                               for p, c in zip(pool.procs, pool.counts)))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while (st := await status(pool))["open"] < n:
            if loop.time() > deadline:
                raise RuntimeError(f"only {st['open']} of {n} clients connected")
            await asyncio.sleep(0.2)
        publisher = await ClientProcess.start("benchlib.storm_publisher", [variant, str(args.rate), HOST, str(port)],
                                              env=django_env(variant, layer, url))
        await publisher.call(60, cmd="start")
        await asyncio.sleep(args.before)
        before = await status(pool)
        t0 = time.time()
        await asyncio.gather(*(p.call(30, cmd="mark", at=t0) for p in pool.procs))
        server.proc.send_signal(signal.SIGTERM)
        await wait_port_free(port, server, 60)
        released = time.time() - t0
        new = await asyncio.to_thread(start_server, variant, kind, layer, url, None, "uvloop", "auto", port)
        started = time.time() - t0
        old_exit = asyncio.create_task(asyncio.to_thread(server.proc.wait, 120))
        peak, stop = [new.rss()], asyncio.Event()
        sampler = asyncio.create_task(sample_rss(new, peak, stop))
        give_up = loop.time() + args.deadline - (time.time() - t0)
        while (st := await status(pool))["recovered"] < n and loop.time() < give_up:
            await asyncio.sleep(0.2)
        stop.set()
        await sampler
        await old_exit
        unavailable = new.log_text().count("Could not read the history")  # the client got a resync
        shutdown = server.exited_at - t0 if getattr(server, "exited_at", None) else None
        server.stop()
        recovered = st["recovered"]
        recovered_s = (st["last_recovered"] - t0) if recovered == n else None
        await asyncio.sleep(2)
        published = (await publisher.call(30, cmd="stop"))["published"]
        last, quiet_since = -1, loop.time()
        while loop.time() - quiet_since < 2 and loop.time() < give_up + 30:
            received = (await status(pool))["received"]
            if received != last:
                last, quiet_since = received, loop.time()
            await asyncio.sleep(0.2)
        final = await status(pool, published)
        accepts = [t for p in pool.procs for t in (await p.call(60, cmd="accepts"))["accepts"]]
        result = {"variant": variant, "clients": n, "spread": spread, "server": kind,
                  "connected_before": before["open"], "port_free_s": released, "old_server_exited_s": shutdown,
                  "new_server_listening_s": started,
                  "recovered": recovered, "recovered_s": recovered_s, "peak_accepts_per_s": peak_per_second(accepts),
                  "accepts": len(accepts), "peak_rss_mb": peak[0] / 2**20, "failed_handshakes": final["failures"],
                  "failure_kinds": final["failure_kinds"], "published": published, "lost": final["lost"],
                  "clients_with_loss": final["clients_with_loss"], "resyncs": final["resyncs"],
                  "gaps": final["gaps"], "history_unavailable": unavailable}
        log(f"  {variant} spread={spread}: {recovered}/{n} recovered in "
            f"{recovered_s if recovered_s is not None else float('nan'):.2f} s, peak {result['peak_accepts_per_s']}"
            f" accepts/s, {result['failed_handshakes']} failed, {final['lost']} lost of {published} published")
        return result
    finally:
        if publisher is not None:
            await publisher.stop()
        if pool is not None:
            await pool.stop()
        for proc in (server, new, redis):
            if proc is not None:
                proc.stop()


async def wait_port_free(port: int, server, bound: float) -> None:
    """Until ``port`` can be bound again (the stopping server closed its listening socket), at most ``bound`` s;
    notes on ``server.exited_at`` when its process ended."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound

    def watch() -> None:
        server.proc.wait(120)
        server.exited_at = time.time()

    asyncio.get_running_loop().run_in_executor(None, watch)
    while loop.time() < deadline:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, port))
                return
            except OSError:
                pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"port {port} was not released within {bound} s of the SIGTERM")


async def status(pool: ClientPool, published: int | None = None) -> dict:
    replies = await pool.all(120, cmd="status", **({"published": published} if published is not None else {}))
    out: dict = {"open": 0, "recovered": 0, "failures": 0, "resyncs": 0, "received": 0, "lost": 0, "gaps": 0,
                 "clients_with_loss": 0, "last_recovered": 0.0, "failure_kinds": {}}
    for r in replies:
        for key in ("open", "recovered", "failures", "resyncs", "received", "lost", "clients_with_loss", "gaps"):
            out[key] += r.get(key, 0)
        out["last_recovered"] = max(out["last_recovered"], r["last_recovered"])
        for key, count in r["failure_kinds"].items():
            out["failure_kinds"][key] = out["failure_kinds"].get(key, 0) + count
    return out


async def main(args: argparse.Namespace) -> dict:
    raise_nofile_limit()
    machine = machine_info()
    variants, skipped = available_variants(args.variants)
    runs = []
    for n in args.clients:
        for variant in variants:
            for spread in (args.spread if variant == "hypergen" else [None]):
                log(f"{n} clients, {variant}" + (f", RECONNECT_SPREAD={spread}" if spread is not None else ""))
                try:
                    runs.append(await one_run(variant, n, spread, args))
                except Exception as exc:  # noqa: BLE001 - record it and go on
                    log(f"  FAILED: {exc}")
                    runs.append({"variant": variant, "clients": n, "spread": spread, "error": str(exc)[-2000:]})
    return {"benchmark": "storm", "name": args.name, "command": " ".join(["python", "benchmarks/storm.py",
                                                                          *sys.argv[1:]]),
            "params": {k: v for k, v in vars(args).items() if k != "no_save"}, "skipped": skipped,
            "machine": machine, "runs": runs}


def report(result: dict) -> str:
    rows = []
    for r in result["runs"]:
        name = r["variant"] + (f" spread {r['spread']:g}" if r.get("spread") is not None else "")
        if "error" in r:
            rows.append([r["clients"], name, "error: " + r["error"][:70]] + [None] * 11)
            continue
        rows.append([r["clients"], name, f"{r['recovered']}/{r['clients']}", r["recovered_s"],
                     r["peak_accepts_per_s"], r["peak_rss_mb"], r["failed_handshakes"], r["published"], r["lost"],
                     r["resyncs"], r.get("history_unavailable"), r.get("gaps"), r["new_server_listening_s"], r["old_server_exited_s"]])
    p = result["params"]
    return "\n".join([f"storm: server={p['server']} rate={p['rate']:g}/s", "", format_table(
        ["N", "variant", "recovered", "recovered s", "peak accepts/s", "peak RSS MB", "failed", "published", "lost",
         "resyncs", "unavailable", "gaps", "new server up s", "old exit s"], rows)])


if __name__ == "__main__":
    cli(parse_args, main, report)
