"""Prometheus metrics, fed by the traffic counters (``pip install "hypergen-ws[metrics]"``; docs/operations.rst).

:class:`PrometheusSink` receives every count :mod:`hypergen_ws.stats` makes (:func:`hypergen_ws.stats.set_sink`)
and adds it to ``prometheus_client`` metrics, labelled by consumer label and by close, error or operation code,
never by group or user. The counts arrive once per frame or per event: a group frame to 1,000 local sockets is one
call that adds 1,000 to the frame counter of each consumer in the group.

``HYPERGEN_WS["METRICS"]``: ``None`` (default) turns the metrics on when ``prometheus_client`` is installed,
``True`` requires it (check ``hypergen_ws.E040``), ``False`` turns them off. ``AppConfig.ready`` calls
:func:`install`.

Several server processes: with ``PROMETHEUS_MULTIPROC_DIR`` set in the environment of every process before it
starts, ``prometheus_client`` keeps the values in files there and the ``metrics/`` endpoint of any process answers
for all of them (gauges of processes that exited are dropped; counters keep their totals). Without it each process
answers for itself, and each is scraped on its own address.
"""
from __future__ import annotations

import asyncio
import atexit
import os
import time
from collections.abc import Mapping, Sized
from typing import Protocol, cast
from weakref import WeakKeyDictionary

from . import conf, stats
from .fanout import local_hubs

try:
    import prometheus_client
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
    from prometheus_client.exposition import choose_encoder
except ImportError:  # the optional extra is not installed
    prometheus_client = None  # type: ignore[assignment]

__all__ = ["LATENCY_BUCKETS", "PrometheusSink", "available", "enabled", "exposition", "install", "sample_outboxes",
           "uninstall"]

#: Upper bounds (seconds) of the publish-to-write latency histogram.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
INSTALL_HINT = 'pip install "hypergen-ws[metrics]"'


def available() -> bool:
    """Whether ``prometheus_client`` can be imported."""
    return prometheus_client is not None


def enabled() -> bool:
    """Whether ``HYPERGEN_WS["METRICS"]`` asks for metrics (None: when ``prometheus_client`` is installed)."""
    setting = conf.get("METRICS")
    return available() if setting is None else bool(setting)


def multiprocess_mode() -> bool:
    """Whether ``prometheus_client`` keeps its values in ``PROMETHEUS_MULTIPROC_DIR`` (several processes)."""
    return bool(os.environ.get(MULTIPROC_ENV))


class _Socket(Protocol):
    label: str
    outbox: Sized


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
    """The hypergen_ws metrics in ``registry`` (``prometheus_client``'s default registry when None), fed as a
    :class:`hypergen_ws.stats.Sink`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        if prometheus_client is None:
            raise RuntimeError(f"Prometheus metrics need prometheus_client: {INSTALL_HINT}")
        reg = prometheus_client.REGISTRY if registry is None else registry
        consumer = ["consumer"]
        self.connections = Gauge("hypergen_ws_connections", "Websocket connections open now (accepted).",
                                 consumer, registry=reg, multiprocess_mode="livesum")
        self.connects = Counter("hypergen_ws_connects", "Websocket connections accepted.", consumer, registry=reg)
        self.refusals = Counter("hypergen_ws_refusals", "Websocket connections refused, by close code.",
                                ["consumer", "code"], registry=reg)
        self.frames_in = Counter("hypergen_ws_frames_in", "Frames received from clients.", consumer, registry=reg)
        self.bytes_in = Counter("hypergen_ws_bytes_in", "Bytes received from clients (UTF-8 for text frames).",
                                consumer, registry=reg)
        self.frames_out = Counter("hypergen_ws_frames_out", "Frames written to clients.", consumer, registry=reg)
        self.bytes_out = Counter("hypergen_ws_bytes_out", "Bytes written to clients (UTF-8).", consumer,
                                 registry=reg)
        self.publishes = Counter("hypergen_ws_publishes", "Frames published to groups by this process, by the "
                                 "consumer whose group it is (empty: another group).", consumer, registry=reg)
        self.latency = Histogram("hypergen_ws_publish_latency_seconds", "Seconds from the publish of a group frame "
                                 "to its write to the local sockets (wall clock).", consumer, registry=reg,
                                 buckets=LATENCY_BUCKETS)
        self.outbox_frames = Gauge("hypergen_ws_outbox_frames", "Frames waiting in the send queues of sockets.",
                                   consumer, registry=reg, multiprocess_mode="livesum")
        self.outbox_max = Gauge("hypergen_ws_outbox_max_frames", "Frames waiting in the longest send queue of a "
                                "socket.", consumer, registry=reg, multiprocess_mode="livemax")
        self.slow_closes = Counter("hypergen_ws_slow_client_closes", "Clients closed (1013) because they fell "
                                   "SEND_QUEUE_LIMIT frames behind.", consumer, registry=reg)
        self.errors = Counter("hypergen_ws_errors", "Error frames sent (by error code) and protocol violations "
                              "closed (by close code).", ["consumer", "code"], registry=reg)
        self.layer_errors = Counter("hypergen_ws_channel_layer_errors", "Channel layer operations that failed.",
                                    ["operation"], registry=reg)
        self.recoveries = Counter("hypergen_ws_recoveries", "Reconnects of clients with a position that got the "
                                  "frames they missed (replayed), and resync frames sent (resynced, with the reason).",
                                  ["consumer", "outcome", "reason"], registry=reg)
        self._consumers: dict[str, _PerConsumer] = {}
        self._samplers: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = WeakKeyDictionary()

    def consumer(self, label: str) -> _PerConsumer:
        """The metric children of ``label`` (created on first use)."""
        children = self._consumers.get(label)
        if children is None:
            children = self._consumers[label] = _PerConsumer(self, label)
        return children

    # ---- stats.Sink ---------------------------------------------------------------------------------------
    def opened(self, label: str) -> None:
        children = self.consumer(label)
        children.connections.inc()
        children.connects.inc()
        if multiprocess_mode():
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
        if kind == stats.PUBLISHED:
            self.publishes.labels(label).inc()
        elif kind == stats.ERROR:
            self.errors.labels(label, code).inc()
        elif kind == stats.REFUSED:
            self.refusals.labels(label, code).inc()
        elif kind == stats.SLOW_CLOSE:
            self.slow_closes.labels(label).inc()
        elif kind == stats.RECOVERY:
            outcome, _, reason = code.partition(".")
            self.recoveries.labels(label, outcome, reason).inc()
        elif kind == stats.LAYER_ERROR:
            self.layer_errors.labels(code).inc()

    # ---- send queues --------------------------------------------------------------------------------------
    def sample_outboxes(self) -> None:
        """Set the outbox gauges from the send queues of this process's sockets."""
        waiting: dict[str, int] = dict.fromkeys(self._consumers, 0)
        deepest: dict[str, int] = dict.fromkeys(self._consumers, 0)
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
                    label = socket.label
                    waiting[label] = waiting.get(label, 0) + depth
                    deepest[label] = max(deepest.get(label, 0), depth)
        for label, depth in waiting.items():
            children = self.consumer(label)
            children.outbox_frames.set(depth)
            children.outbox_max.set(deepest[label])

    def _ensure_sampler(self) -> None:
        loop = asyncio.get_running_loop()
        if loop not in self._samplers:
            self._samplers[loop] = loop.create_task(self._sample_every())

    async def _sample_every(self) -> None:
        """In multiprocess mode the scraped process cannot see the others' queues: each writes its own."""
        while True:
            await asyncio.sleep(float(conf.get("HEARTBEAT_INTERVAL")))
            self.sample_outboxes()


_sink: PrometheusSink | None = None


def install() -> PrometheusSink:
    """Create the metrics (once per process) and feed them from the counters."""
    global _sink
    if _sink is None:
        _sink = PrometheusSink()
        if multiprocess_mode():
            atexit.register(multiprocess.mark_process_dead, os.getpid())
    stats.set_sink(_sink)
    return _sink


def uninstall() -> None:
    """Stop feeding the metrics (they keep their values)."""
    stats.set_sink(None)


def install_from_settings() -> None:
    """:func:`install` when ``HYPERGEN_WS["METRICS"]`` asks for metrics and ``prometheus_client`` is there."""
    if enabled() and available():
        install()


def sink() -> PrometheusSink | None:
    """The metrics of this process, if they were installed."""
    return _sink


def sample_outboxes() -> None:
    """Update the outbox gauges of this process (before a scrape)."""
    if _sink is not None:
        _sink.sample_outboxes()


def exposition(accept: str = "") -> tuple[bytes, str]:
    """The metrics and their content type, in the format the ``Accept`` header asks for (OpenMetrics, or the
    Prometheus text format): of every process in multiprocess mode, else of this one (with
    ``prometheus_client``'s process and platform metrics)."""
    if prometheus_client is None:
        raise RuntimeError(f"Prometheus metrics need prometheus_client: {INSTALL_HINT}")
    sample_outboxes()
    if multiprocess_mode():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = prometheus_client.REGISTRY
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type
