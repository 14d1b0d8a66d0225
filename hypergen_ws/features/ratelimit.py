"""Rate limits: ``@consumer(rate="20/s", burst=40)`` bounds the frames one connection may send (docs/security.rst).

A token bucket per connection: it holds ``burst`` tokens, refills at ``rate``, and every frame the browser sends
(a call, a raw frame, a malformed one) takes a token **when it arrives** (``Feature.arrived``), not when its turn
comes to be handled, so a flood is counted while it waits. A frame that finds the bucket empty is never handled: it
gets ``{"type": "error", "code": "rate_limited", "id": <its id>, ...}`` at once (no ``id`` for raw frames). A
client that goes on sending and has ``burst`` more frames refused before a token was free again is closed with
1008 (policy violation). A client that waits between calls never notices the limit.

The default for every consumer comes from ``HYPERGEN_WS["RATE_LIMIT"]`` (``"20/s"``) and ``["RATE_BURST"]``
(None: twice the rate per second); ``rate=None`` switches the limit off for one consumer, and ``RATE_LIMIT:
None`` for all of those that name no rate.

Anonymous sockets (no user behind them) of a rate-limited consumer also share a bucket per client address and
server process, ``ANONYMOUS_RATE_LIMIT`` (``"100/s"``) with ``ANONYMOUS_RATE_BURST`` (None: twice the rate per
second): opening more sockets does not multiply what one address may send. ``None`` switches it off.
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
from ..delivery.hub import Hub
from .base import Connection, Feature, Option, Options, PerHub

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


def anonymous_limits() -> tuple[float, float] | None:
    """``ANONYMOUS_RATE_LIMIT`` and ``ANONYMOUS_RATE_BURST``: what the anonymous sockets of one client address may
    send together, in one server process; None for no such limit."""
    return limits(conf.get("ANONYMOUS_RATE_LIMIT"), conf.get("ANONYMOUS_RATE_BURST"),
                  "HYPERGEN_WS['ANONYMOUS_RATE_LIMIT']")


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
    """One connection's tokens (or those the anonymous sockets of an address share)."""

    __slots__ = ("rate", "size", "tokens", "stamp", "refused", "closing")
    #: The clock tokens refill by (seconds).
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, rate: float, size: float) -> None:
        self.rate, self.size, self.tokens = rate, size, size
        self.stamp = self.clock()
        #: Frames refused since the last one that was let through.
        self.refused = 0
        #: The connection closes once the frames let through were handled: nothing more gets in.
        self.closing = False

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.size, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def full(self) -> bool:
        """Whether the bucket has refilled to its size."""
        self._refill()
        return self.tokens >= self.size

    def take(self) -> bool:
        """Take a token; False when there is none."""
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Address:
    """The anonymous sockets of one client address in one event loop: their shared bucket and how many are open."""

    __slots__ = ("bucket", "sockets")

    def __init__(self, bucket: Bucket) -> None:
        self.bucket, self.sockets = bucket, 0


class Addresses(PerHub[dict[str, Address]]):
    """Per event loop, the shared buckets of the client addresses with anonymous sockets (or that had some until
    their bucket refills): an address that closes its sockets and reconnects does not get a fresh burst."""

    def __init__(self) -> None:
        super().__init__(dict)
        self.swept_at: dict[Hub, int] = {}

    def join(self, hub: Hub, address: str, chosen: tuple[float, float]) -> Address:
        table = self.of(hub)
        entry = table.get(address)
        if entry is None:
            if len(table) >= 2 * self.swept_at.get(hub, 64):
                self._sweep(hub, table)
            entry = table[address] = Address(Bucket(*chosen))
        entry.sockets += 1
        return entry

    def _sweep(self, hub: Hub, table: dict[str, Address]) -> None:
        for address in [a for a, e in table.items() if not e.sockets and e.bucket.full()]:
            del table[address]
        self.swept_at[hub] = max(64, len(table))

    def leave(self, hub: Hub, address: str, entry: Address) -> None:
        entry.sockets -= 1
        if not entry.sockets and entry.bucket.full() and self.of(hub).get(address) is entry:
            del self.of(hub)[address]

    def forget(self, hub: Hub) -> None:
        self.swept_at.pop(hub, None)


_addresses = Addresses()


def client_address(scope: Mapping[str, Any]) -> str:
    """The client's address of a connection (``scope["client"]``; behind a proxy, the server fills it from the
    proxy's headers only when started with them, e.g. ``--proxy-headers``); ``""`` when the server gives none."""
    client = scope.get("client")
    return str(client[0]) if isinstance(client, (list, tuple)) and client else ""


class RateLimitFeature(Feature):
    """Takes a token for every frame as it arrives; refuses frames without one, and closes a client that keeps on.

    An anonymous socket also takes a token from the bucket its client address shares with its other anonymous
    sockets (``ANONYMOUS_RATE_LIMIT``), so that opening more sockets does not multiply the rate."""

    name = "ratelimit"
    _ADDRESS = "ratelimit.address"

    def __init__(self, fixed: tuple[float, float] | None, burst: Any) -> None:
        self.fixed = fixed  # None: the settings' default, read when a socket connects
        self.burst = burst

    async def connected(self, conn: Connection) -> None:
        chosen = self.fixed or limits(DEFAULT, self.burst, conn.label)
        if chosen is None:
            return
        conn.state.extras[self.name] = Bucket(*chosen)
        identity = conn.state.identity
        shared = anonymous_limits()
        if shared is not None and conn.hub is not None and not (identity is not None and identity.is_user):
            address = client_address(conn.scope)
            conn.state.extras[self._ADDRESS] = (address, _addresses.join(conn.hub, address, shared))

    async def disconnected(self, conn: Connection) -> None:
        joined = conn.state.extras.pop(self._ADDRESS, None)
        if joined is not None and conn.hub is not None:
            _addresses.leave(conn.hub, *joined)

    async def arrived(self, conn: Connection, message: Mapping[str, Any]) -> bool:
        bucket = conn.state.extras.get(self.name)
        if not isinstance(bucket, Bucket):
            return False
        if bucket.closing:  # what it sends from now on is dropped unanswered
            return True
        joined = conn.state.extras.get(self._ADDRESS)
        limiting = bucket
        if bucket.take():
            if joined is None or joined[1].bucket.take():
                bucket.refused = 0
                return False
            limiting = joined[1].bucket
        bucket.refused += 1
        if bucket.refused > bucket.size:
            bucket.closing = True
            logger.warning("Closing a client of %s: it kept sending over its rate limit (close %s)", conn.label,
                           protocol.CLOSE_POLICY_VIOLATION,
                           extra=fields("rate_limit_exceeded", consumer=conn.label, state=conn.state,
                                        code=protocol.CLOSE_POLICY_VIOLATION))
            conn.close_when_handled(protocol.CLOSE_POLICY_VIOLATION, "Rate limit exceeded.")
            return True
        if bucket.refused == 1:
            logger.info("A client of %s goes over its rate limit of %.3g frames/s%s", conn.label, limiting.rate,
                        "" if limiting is bucket else " (shared by the anonymous sockets of its address)",
                        extra=fields("rate_limited", consumer=conn.label, state=conn.state, code=protocol.RATE_LIMITED))
        if limiting is bucket:
            text = (f"Too many calls: {conn.label} takes {bucket.rate:g} per second (bursts of {bucket.size:g}); "
                    "wait before calling again.")
        else:
            text = (f"Too many calls from anonymous clients at your address: together they may make "
                    f"{limiting.rate:g} per second (bursts of {limiting.size:g}); wait before calling again, or log in.")
        call_id = protocol.call_id_of(message.get("text")) if conn.spec.frames == "protocol" else None
        conn.send_text(protocol.error_frame(protocol.RATE_LIMITED, text, call_id))
        return True
