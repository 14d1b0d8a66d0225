"""What traffic counting (hypergen_ws.stats) costs on the fan-out path.

    python benchmarks/stats_overhead.py

A group frame is counted once per process, in ``Hub.deliver_text``, by ``stats.group_frame`` (whatever the number
of local members). This script times that call, and ``Hub.deliver_text`` itself without counting for 1 to 1,000
local members whose sockets are idle (a real ``Outbox`` whose ASGI send completes at once), and prints the share
counting adds. Figures are the best of several repeats; no assertion is made.
"""
from __future__ import annotations

import asyncio
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypergen_ws.delivery import stats  # noqa: E402
from hypergen_ws.delivery.hub import Hub  # noqa: E402
from hypergen_ws.delivery.outbox import Outbox  # noqa: E402

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
    for _ in range(10):
        stats.left(GROUP, LABEL)
    print(f"stats.group_frame: {counting * 1e9:.0f} ns per group frame ({(counting - call) * 1e9:.0f} ns over an "
          "empty function call)\n")
    print(f"{'members':>8}  {'deliver_text without counting':>30}  {'counting adds':>13}")
    real = stats.group_frame
    stats.group_frame = _noop
    try:
        for n in (1, 10, 100, 1000):
            hub = Hub(asyncio.get_running_loop(), None)
            hub.members[GROUP] = {Member() for _ in range(n)}
            deliver = best(lambda: hub.deliver_text(GROUP, TEXT), max(100, 100_000 // n))
            print(f"{n:>8}  {deliver * 1e6:>27.2f} us  {counting / deliver:>13.2%}")
    finally:
        stats.group_frame = real


if __name__ == "__main__":
    asyncio.run(main())
