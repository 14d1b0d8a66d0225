"""What traffic counting (hypergen_ws.stats) costs on the fan-out path.

    python benchmarks/stats_overhead.py

A group frame is counted once per process, in ``Hub.deliver_text``, by ``stats.group_frame`` (whatever the number
of local members). This script times that call, and ``Hub.deliver_text`` itself without counting for 1 to 1,000
local members whose sockets are idle (a real ``Outbox`` whose ASGI send completes at once), and prints the share
counting adds; then the same with the Prometheus metrics on (``hypergen_ws.metrics``: the default, which reads the
counters at each scrape and keeps only the latency histogram per frame, and multiprocess mode, which updates
``prometheus_client`` metrics on every count), and the per-socket calls (a frame in, a frame to one socket). Figures are the best of several
repeats; no assertion is made.
"""
from __future__ import annotations

import asyncio
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypergen_ws.stats import counters as stats  # noqa: E402
from hypergen_ws.delivery.hub import Hub  # noqa: E402
from hypergen_ws.stats.metrics import LatencySink, PrometheusSink  # noqa: E402
from hypergen_ws.delivery.outbox import Outbox  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

GROUP = "hgws.bench.fanout"
LABEL = "bench.fanout"
TEXT = '{"type":"message","data":{"n":1,"pad":"' + "x" * 64 + '"}}'


class Member:
    """A stand-in for a consumer: a real outbox whose ASGI send completes at once."""

    label = LABEL

    def __init__(self) -> None:
        async def send(message: dict) -> None:
            return None

        self.outbox = Outbox(send, 1000, lambda: None)
        self.outbox.start()


def best(func, number: int) -> float:
    """Seconds per call, best of 7 repeats."""
    return min(timeit.repeat(func, number=number, repeat=7)) / number


def _noop(*args: object) -> None:
    return None


async def main() -> None:
    for _ in range(10):
        stats.joined(GROUP, LABEL)
    stats.opened(LABEL)
    counting = best(lambda: stats.group_frame(GROUP, TEXT, 10), 200_000)
    call = best(lambda: _noop(GROUP, TEXT, 10), 200_000)
    published = time.time()
    received = best(lambda: stats.received(LABEL, [GROUP], 70), 200_000)
    sent = best(lambda: stats.sent(LABEL, TEXT), 200_000)
    stats.set_sink(LatencySink())
    metered = best(lambda: stats.group_frame(GROUP, TEXT, 10, published), 200_000)
    received_metered = best(lambda: stats.received(LABEL, [GROUP], 70), 200_000)
    sent_metered = best(lambda: stats.sent(LABEL, TEXT), 200_000)
    stats.set_sink(PrometheusSink(CollectorRegistry()))
    multi = best(lambda: stats.group_frame(GROUP, TEXT, 10, published), 200_000)
    received_multi = best(lambda: stats.received(LABEL, [GROUP], 70), 200_000)
    sent_multi = best(lambda: stats.sent(LABEL, TEXT), 200_000)
    stats.set_sink(None)
    for _ in range(10):
        stats.left(GROUP, LABEL)
    print(f"stats.group_frame: {counting * 1e9:.0f} ns per group frame ({(counting - call) * 1e9:.0f} ns over an "
          "empty function call)\n")
    for name, frame, got, put in (("with the Prometheus metrics", metered, received_metered, sent_metered),
                                  ("in multiprocess mode", multi, received_multi, sent_multi)):
        print(f"{name}: {frame * 1e9:.0f} ns per group frame; per socket: a frame in {received * 1e9:.0f} -> "
              f"{got * 1e9:.0f} ns, a frame to one socket {sent * 1e9:.0f} -> {put * 1e9:.0f} ns")
    print(f"\n{'members':>8}  {'deliver_text without counting':>30}  {'counting adds':>13}  {'with metrics':>12}  "
          f"{'multiprocess':>12}")
    real = stats.group_frame
    stats.group_frame = _noop
    try:
        for n in (1, 10, 100, 1000):
            hub = Hub(asyncio.get_running_loop(), None)
            hub.members[GROUP] = {Member() for _ in range(n)}
            deliver = best(lambda: hub.deliver_text(GROUP, TEXT), max(100, 100_000 // n))
            print(f"{n:>8}  {deliver * 1e6:>27.2f} us  {counting / deliver:>13.2%}  {metered / deliver:>12.2%}  "
                  f"{multi / deliver:>12.2%}")
    finally:
        stats.group_frame = real


if __name__ == "__main__":
    asyncio.run(main())
