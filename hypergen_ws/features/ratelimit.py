"""Rate limits: ``@consumer(rate="20/s", burst=40)`` bounds the frames one connection may send (docs/security.rst).

A token bucket per connection: it holds ``burst`` tokens, refills at ``rate``, and every frame the browser sends
(a call, a raw frame, a malformed one) takes a token. A frame that finds the bucket empty is not handled: it gets
``{"type": "error", "code": "rate_limited", "id": <its id>, ...}``. A client that goes on sending and has ``burst``
more frames refused before a token was free again is closed with 1008 (policy violation). A client that waits
between calls never notices the limit.

The default for every consumer comes from ``HYPERGEN_WS["RATE_LIMIT"]`` (``"20/s"``) and ``["RATE_BURST"]``
(None: twice the rate per second); ``rate=None`` switches the limit off for one consumer, and ``RATE_LIMIT:
None`` for all of those that name no rate.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from ..core import conf, protocol
from ..core.logs import fields
from .base import Connection, Feature, Option, Options

logger = logging.getLogger("hypergen_ws")

#: What ``@consumer(rate=...)`` means when it is not given: ``RATE_LIMIT`` and ``RATE_BURST`` of the settings.
DEFAULT = "default"
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}


def parse_rate(rate: Any, where: str) -> float:
    """``"20/s"``, ``"100/min"``, ``"1000/h"``, ``"5/10s"`` as frames per second; ``ImproperlyConfigured`` else."""
    match = _RATE.match(rate) if isinstance(rate, str) else None
    if match is None or float(match[1]) <= 0:
        raise ImproperlyConfigured(f"{where}: rate={rate!r}; write a number of frames per period, e.g. '20/s', "
                                   "'100/min', '1000/h' (or rate=None for no limit).")
    return float(match[1]) / (_UNITS[match[3]] * (int(match[2]) if match[2] else 1))


def limits(rate: Any, burst: Any, where: str) -> tuple[float, float] | None:
    """``(tokens per second, bucket size)`` for ``rate`` and ``burst``, or None for no limit."""
    if rate == DEFAULT:
        rate = conf.get("RATE_LIMIT")
        if burst is None:
            burst = conf.get("RATE_BURST")
        where = f"{where} (HYPERGEN_WS['RATE_LIMIT'])"
    if rate is None:
        return None
    per_second = parse_rate(rate, where)
    if burst is None:
        burst = max(1.0, 2 * per_second)
    if isinstance(burst, bool) or not isinstance(burst, (int, float)) or burst < 1:
        raise ImproperlyConfigured(f"{where}: burst={burst!r}; pass how many frames may arrive at once, a number "
                                   ">= 1 (default: twice the rate per second).")
    return per_second, float(burst)


#: The ``@consumer`` options this feature reads, with their defaults (``hypergen_ws.features``).
OPTIONS: dict[str, Option] = {
    "rate": Option(DEFAULT, "``rate`` (``\"20/s\"``, ``\"100/min\"``) and ``burst`` limit the frames one connection "
                            "may send (default: ``HYPERGEN_WS['RATE_LIMIT']``; ``rate=None``: no limit); see "
                            ":mod:`hypergen_ws.features.ratelimit`."),
    "burst": Option(None, "``burst``: the frames a connection may send at once (default: "
                          "``HYPERGEN_WS['RATE_BURST']``, or twice the rate per second)."),
}
#: What ``@consumer`` exposes about this feature while it is off (``declares()`` says it while on).
EXPOSES: dict[str, Any] = {}


def configure(options: Options) -> RateLimitFeature | None:
    """``rate=`` and ``burst=`` of ``@consumer``; on for consumers that take frames."""
    if not options.receive:
        return None
    if options.rate == DEFAULT:
        limits(DEFAULT, options.burst, options.where)  # a bad setting fails now, not at the first frame
        return RateLimitFeature(None, options.burst)
    chosen = limits(options.rate, options.burst, options.where)
    return None if chosen is None else RateLimitFeature(chosen, None)


class Bucket:
    """One connection's tokens."""

    __slots__ = ("rate", "size", "tokens", "stamp", "refused")
    #: The clock tokens refill by (seconds).
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, rate: float, size: float) -> None:
        self.rate, self.size, self.tokens = rate, size, size
        self.stamp = self.clock()
        #: Frames refused since the last one that was let through.
        self.refused = 0

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.size, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            self.refused = 0
            return True
        self.refused += 1
        return False


class RateLimitFeature(Feature):
    """Takes a token for every frame; refuses frames without one, and closes a client that keeps on."""

    name = "ratelimit"

    def __init__(self, fixed: tuple[float, float] | None, burst: Any) -> None:
        self.fixed = fixed  # None: the settings' default, read when a socket connects
        self.burst = burst

    async def connected(self, conn: Connection) -> None:
        chosen = self.fixed or limits(DEFAULT, self.burst, conn.label)
        if chosen is not None:
            conn.state.extras[self.name] = Bucket(*chosen)

    async def receive(self, conn: Connection, message: Mapping[str, Any]) -> bool:
        bucket = conn.state.extras.get(self.name)
        if not isinstance(bucket, Bucket) or bucket.take():
            return False
        if bucket.refused > bucket.size:
            logger.warning("Closing a client of %s: it kept sending over its rate limit (close %s)", conn.label,
                           protocol.CLOSE_POLICY_VIOLATION,
                           extra=fields("rate_limit_exceeded", consumer=conn.label, state=conn.state,
                                        code=protocol.CLOSE_POLICY_VIOLATION))
            await conn.close(protocol.CLOSE_POLICY_VIOLATION, "Rate limit exceeded.")
            return True
        if bucket.refused == 1:
            logger.info("A client of %s goes over its rate limit of %.3g frames/s", conn.label, bucket.rate,
                        extra=fields("rate_limited", consumer=conn.label, state=conn.state, code=protocol.RATE_LIMITED))
        conn.send_text(protocol.error_frame(
            protocol.RATE_LIMITED, f"Too many calls: {conn.label} takes {bucket.rate:g} per second (bursts of "
            f"{bucket.size:g}); wait before calling again.", protocol.call_id_of(message.get("text"))))
        return True
