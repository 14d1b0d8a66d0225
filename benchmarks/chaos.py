"""The chaos run, long: real servers on Redis with a replica and a Sentinel, faults at random times, a checker.

    python benchmarks/chaos.py --duration 600 --seed 7

Starts a daphne and a uvicorn server of ``tests.e2e.chaos_app`` on a Redis master with a replica and a Sentinel,
clients in three history groups (one with presence) behind blackhole proxies, and three kinds of publishers (the
HTTP endpoint, ``group_send`` in a worker process, consumer calls). Faults (``--faults``, all by default) are
injected at random times drawn from ``--seed``, printed so a failing run can be replayed: kill -9 of a server and
a restart, SIGSTOP/SIGCONT of the Redis master, a restart of the master with its data gone, a Sentinel failover,
a rolling SIGTERM restart of the servers, a blackholed client connection, a client that stops reading. Prints the
checker's table (docs/reliability.rst); exits 1 when the promise was broken (a silent gap, a duplicate, a frame out
of order, an acknowledged message that reached no one without a resync).
"""
from __future__ import annotations

import argparse
import asyncio
import faulthandler
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.chaos.checker import table  # noqa: E402
from tests.support.chaos.faults import KINDS  # noqa: E402
from tests.support.chaos.run import chaos_run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of faults and publishing")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    parser.add_argument("--clients", type=int, default=3, help="clients per group (three groups)")
    parser.add_argument("--faults", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--cycle", action="store_true", help="inject the faults in turn instead of at random")
    parser.add_argument("--log-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the report as JSON here")
    args = parser.parse_args()
    os.chdir(REPO)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="hypergen_ws-chaos-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    # The run bounds each of its phases; this bounds the whole, a blocked event loop included: past it, the stack
    # of every thread is printed (where it stalled) and the process exits.
    faulthandler.dump_traceback_later(args.duration + 900, exit=True)
    started = time.monotonic()
    report, faults = asyncio.run(chaos_run(seed=args.seed, duration=args.duration, log_dir=log_dir,
                                           clients_per_group=args.clients, faults=args.faults, cycle=args.cycle))
    faulthandler.cancel_dump_traceback_later()
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{args.duration:.0f} s, {args.clients * 3} JS-protocol clients and 3 Python clients, {len(faults)} faults; "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; {time.monotonic() - started:.0f} s in all")
    print(f"command: python benchmarks/chaos.py --duration {args.duration:.0f} --seed {args.seed}\n")
    print(table(report, args.seed))
    for problem in report.problems[:50]:
        print("  problem:", problem)
    if args.json:
        args.json.write_text(json.dumps({"seed": args.seed, "duration": args.duration, "report": {
            k: v for k, v in vars(report).items()}, "faults": [vars(f) for f in faults]}, default=str, indent=1))
    return 0 if report.kept_the_promise else 1


if __name__ == "__main__":
    sys.exit(main())
