"""What feeds the Prometheus metrics of :mod:`hypergen_ws.stats.metrics`: a collector that reads the counters at
each scrape (with :class:`LatencySink` for the latency histogram), or :class:`PrometheusSink` in multiprocess mode.
"""
from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sized
from typing import Protocol, cast
from weakref import WeakKeyDictionary

from ..core import conf
from . import counters
from ..delivery.hub import local_hubs

try:
    import prometheus_client
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
except ImportError:  # the optional extra is not installed
    prometheus_client = None  # type: ignore[assignment]

__all__ = ["INSTALL_HINT", "LATENCY_BUCKETS", "CountersCollector", "LatencySink", "PrometheusSink", "outbox_depths",
           "require"]

INSTALL_HINT = 'pip install "hypergen-ws[metrics]"'

#: Upper bounds (seconds) of the publish-to-write latency histogram.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# The name and help of every metric.
CONNECTIONS = ("hypergen_ws_connections", "Websocket connections open now (accepted).")
CONNECTS = ("hypergen_ws_connects", "Websocket connections accepted.")
REFUSALS = ("hypergen_ws_refusals", "Websocket connections refused, by close code.")
FRAMES_IN = ("hypergen_ws_frames_in", "Frames received from clients.")
BYTES_IN = ("hypergen_ws_bytes_in", "Bytes received from clients (UTF-8 for text frames).")
FRAMES_OUT = ("hypergen_ws_frames_out", "Frames written to clients.")
BYTES_OUT = ("hypergen_ws_bytes_out", "Bytes written to clients (UTF-8).")
PUBLISHES = ("hypergen_ws_publishes", "Frames published to groups by this process, by the consumer whose group "
             "it is (empty: another group).")
LATENCY = ("hypergen_ws_publish_latency_seconds", "Seconds from the publish of a group frame to its write to the "
           "local sockets (wall clock).")
OUTBOX_FRAMES = ("hypergen_ws_outbox_frames", "Frames waiting in the send queues of sockets.")
OUTBOX_MAX = ("hypergen_ws_outbox_max_frames", "Frames waiting in the longest send queue of a socket.")
SLOW_CLOSES = ("hypergen_ws_slow_client_closes", "Clients closed (1013) because they fell SEND_QUEUE_LIMIT frames "
               "behind.")
ERRORS = ("hypergen_ws_errors", "Error frames sent (by error code) and protocol violations closed (by close code).")
LAYER_ERRORS = ("hypergen_ws_channel_layer_errors", "Channel layer operations that failed, by operation.")
RECOVERIES = ("hypergen_ws_recoveries", "Reconnected clients with a position that got what they missed "
              "(replayed), and resync frames sent (resynced, with the reason).")



def require() -> None:
    """Raise ``RuntimeError`` saying how to install ``prometheus_client`` when it is missing."""
    if prometheus_client is None:
        raise RuntimeError(f"Prometheus metrics need prometheus_client, which is not installed: {INSTALL_HINT}")


# ---- send queues --------------------------------------------------------------------------------------------
class _Socket(Protocol):
    label: str
    outbox: Sized


def outbox_depths() -> dict[str, tuple[int, int]]:
    """Per consumer label: frames waiting in the send queues of this process's sockets, and the longest queue."""
    depths: dict[str, tuple[int, int]] = {}
    seen: set[int] = set()
    for hub in local_hubs():
        for members in list(hub.members.values()):
            for member in tuple(members):
                # A membership of a group joined later stands for its consumer.
                socket = cast(_Socket, getattr(member, "consumer", member))
                if id(socket) in seen:
                    continue
                seen.add(id(socket))
                depth = len(socket.outbox)
                waiting, deepest = depths.get(socket.label, (0, 0))
                depths[socket.label] = (waiting + depth, max(deepest, depth))
    return depths


# ---- one process per scrape ---------------------------------------------------------------------------------
class _Latency:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one: above every bound
        self.total = 0.0


class LatencySink:
    """A :class:`hypergen_ws.stats.counters.Sink` that only keeps the publish-to-write latency, as bucket counts per
    consumer: one bisect and two additions per group frame and consumer in it."""

    def __init__(self) -> None:
        self.latency: dict[str, _Latency] = {}

    def opened(self, label: str) -> None:
        pass

    def closed(self, label: str) -> None:
        pass

    def received(self, label: str, size: int) -> None:
        pass

    def sent(self, label: str, size: int) -> None:
        pass

    def event(self, kind: str, label: str, code: str) -> None:
        pass

    def group_frame(self, labels: Mapping[str, int], size: int, published: float | None) -> None:
        if published is None:
            return
        elapsed = time.time() - published
        if elapsed < 0.0:  # the publisher's clock is ahead of this one
            elapsed = 0.0
        index = bisect_left(LATENCY_BUCKETS, elapsed)
        for label in labels:
            histogram = self.latency.get(label)
            if histogram is None:
                histogram = self.latency[label] = _Latency()
            histogram.counts[index] += 1
            histogram.total += elapsed


class CountersCollector:
    """A ``prometheus_client`` collector that reads the counters of :mod:`hypergen_ws.stats` at each scrape."""

    def __init__(self, latency: LatencySink) -> None:
        self.latency = latency

    def collect(self) -> Iterator[Metric]:
        require()
        consumers = counters.consumer_rows()
        events = counters.event_counts()
        depths = outbox_depths()
        for label in consumers:
            depths.setdefault(label, (0, 0))
        by_consumer = ["consumer"]
        gauges = {name: GaugeMetricFamily(name, doc, labels=by_consumer)
                  for name, doc in (CONNECTIONS, OUTBOX_FRAMES, OUTBOX_MAX)}
        fields = {CONNECTS: "connections_total", FRAMES_IN: "messages_in", BYTES_IN: "bytes_in",
                  FRAMES_OUT: "messages_out", BYTES_OUT: "bytes_out"}
        families = {meta: CounterMetricFamily(meta[0], meta[1], labels=by_consumer) for meta in fields}
        for label, row in consumers.items():
            gauges[CONNECTIONS[0]].add_metric([label], row["connections"])
            for meta, field in fields.items():
                families[meta].add_metric([label], row[field])
        for label, (waiting, deepest) in depths.items():
            gauges[OUTBOX_FRAMES[0]].add_metric([label], waiting)
            gauges[OUTBOX_MAX[0]].add_metric([label], deepest)
        yield from gauges.values()
        yield from families.values()
        yield _by_code(REFUSALS, events[counters.REFUSED], ["consumer", "code"])
        yield _by_code(ERRORS, events[counters.ERROR], ["consumer", "code"])
        yield _by_code(SLOW_CLOSES, events[counters.SLOW_CLOSE], ["consumer"])
        yield _by_code(PUBLISHES, events[counters.PUBLISHED], ["consumer"])
        yield _by_code(LAYER_ERRORS, events[counters.LAYER_ERROR], ["operation"])
        yield _by_code(RECOVERIES, events[counters.RECOVERY], ["consumer", "outcome", "reason"])
        histogram = HistogramMetricFamily(LATENCY[0], LATENCY[1], labels=by_consumer)
        for label, latency in list(self.latency.latency.items()):
            counts, running, buckets = list(latency.counts), 0, []
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), counts):
                running += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
            histogram.add_metric([label], buckets, latency.total)
        yield histogram


def _by_code(meta: tuple[str, str], counts: dict[str, dict[str, int]], labels: list[str]) -> Metric:
    """Event counts as a counter: label values are the consumer (or operation), then the parts of the code."""
    family = CounterMetricFamily(meta[0], meta[1], labels=labels)
    for label, codes in counts.items():
        for code, count in codes.items():
            if labels == ["operation"]:
                values = [code]
            elif len(labels) == 1:
                values = [label]
            elif len(labels) == 2:
                values = [label, code]
            else:
                outcome, _, reason = code.partition(".")
                values = [label, outcome, reason]
            family.add_metric(values, count)
    return family


# ---- multiprocess mode --------------------------------------------------------------------------------------
class _PerConsumer:
    """The metric children of one consumer label, looked up once."""

    __slots__ = ("connections", "connects", "frames_in", "bytes_in", "frames_out", "bytes_out", "latency",
                 "outbox_frames", "outbox_max")

    def __init__(self, sink: PrometheusSink, label: str) -> None:
        self.connections = sink.connections.labels(label)
        self.connects = sink.connects.labels(label)
        self.frames_in = sink.frames_in.labels(label)
        self.bytes_in = sink.bytes_in.labels(label)
        self.frames_out = sink.frames_out.labels(label)
        self.bytes_out = sink.bytes_out.labels(label)
        self.latency = sink.latency.labels(label)
        self.outbox_frames = sink.outbox_frames.labels(label)
        self.outbox_max = sink.outbox_max.labels(label)


class PrometheusSink:
    """A :class:`hypergen_ws.stats.counters.Sink` that adds every count to ``prometheus_client`` metrics in ``registry``
    (its default registry when None): what multiprocess mode needs, at about 1 µs per metric updated."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        require()
        reg = prometheus_client.REGISTRY if registry is None else registry
        consumer = ["consumer"]
        self.connections = Gauge(*CONNECTIONS, consumer, registry=reg, multiprocess_mode="livesum")
        self.connects = Counter(*CONNECTS, consumer, registry=reg)
        self.refusals = Counter(*REFUSALS, ["consumer", "code"], registry=reg)
        self.frames_in = Counter(*FRAMES_IN, consumer, registry=reg)
        self.bytes_in = Counter(*BYTES_IN, consumer, registry=reg)
        self.frames_out = Counter(*FRAMES_OUT, consumer, registry=reg)
        self.bytes_out = Counter(*BYTES_OUT, consumer, registry=reg)
        self.publishes = Counter(*PUBLISHES, consumer, registry=reg)
        self.latency = Histogram(*LATENCY, consumer, registry=reg, buckets=LATENCY_BUCKETS)
        self.outbox_frames = Gauge(*OUTBOX_FRAMES, consumer, registry=reg, multiprocess_mode="livesum")
        self.outbox_max = Gauge(*OUTBOX_MAX, consumer, registry=reg, multiprocess_mode="livemax")
        self.slow_closes = Counter(*SLOW_CLOSES, consumer, registry=reg)
        self.errors = Counter(*ERRORS, ["consumer", "code"], registry=reg)
        self.layer_errors = Counter(*LAYER_ERRORS, ["operation"], registry=reg)
        self.recoveries = Counter(*RECOVERIES, ["consumer", "outcome", "reason"], registry=reg)
        self._consumers: dict[str, _PerConsumer] = {}
        self._samplers: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = WeakKeyDictionary()

    def consumer(self, label: str) -> _PerConsumer:
        """The metric children of ``label`` (created on first use)."""
        children = self._consumers.get(label)
        if children is None:
            children = self._consumers[label] = _PerConsumer(self, label)
        return children

    def opened(self, label: str) -> None:
        children = self.consumer(label)
        children.connections.inc()
        children.connects.inc()
        self._ensure_sampler()

    def closed(self, label: str) -> None:
        self.consumer(label).connections.dec()

    def received(self, label: str, size: int) -> None:
        children = self.consumer(label)
        children.frames_in.inc()
        children.bytes_in.inc(size)

    def sent(self, label: str, size: int) -> None:
        children = self.consumer(label)
        children.frames_out.inc()
        children.bytes_out.inc(size)

    def group_frame(self, labels: Mapping[str, int], size: int, published: float | None) -> None:
        elapsed = None if published is None else max(0.0, time.time() - published)
        for label, count in labels.items():
            children = self._consumers.get(label) or self.consumer(label)
            children.frames_out.inc(count)
            children.bytes_out.inc(size * count)
            if elapsed is not None:
                children.latency.observe(elapsed)

    def event(self, kind: str, label: str, code: str) -> None:
        if kind == counters.PUBLISHED:
            self.publishes.labels(label).inc()
        elif kind == counters.ERROR:
            self.errors.labels(label, code).inc()
        elif kind == counters.REFUSED:
            self.refusals.labels(label, code).inc()
        elif kind == counters.SLOW_CLOSE:
            self.slow_closes.labels(label).inc()
        elif kind == counters.RECOVERY:
            outcome, _, reason = code.partition(".")
            self.recoveries.labels(label, outcome, reason).inc()
        elif kind == counters.LAYER_ERROR:
            self.layer_errors.labels(code).inc()

    def sample_outboxes(self) -> None:
        """Set the outbox gauges from the send queues of this process's sockets."""
        depths = outbox_depths()
        for label in self._consumers:
            depths.setdefault(label, (0, 0))
        for label, (waiting, deepest) in depths.items():
            children = self.consumer(label)
            children.outbox_frames.set(waiting)
            children.outbox_max.set(deepest)

    def _ensure_sampler(self) -> None:
        loop = asyncio.get_running_loop()
        if loop not in self._samplers:
            self._samplers[loop] = loop.create_task(self._sample_every())

    async def _sample_every(self) -> None:
        """The process that is scraped cannot see the others' queues: each writes its own, every heartbeat."""
        while True:
            await asyncio.sleep(float(conf.get("PROCESS_HEARTBEAT_INTERVAL")))
            self.sample_outboxes()
