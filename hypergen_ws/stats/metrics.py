"""Prometheus metrics, fed by the traffic counters (``pip install "hypergen-ws[metrics]"``; docs/operations.rst).

Every metric is labelled by consumer label, and by close, error or operation code where it applies; never by
group or user. Two ways to feed them, chosen when :func:`install` first runs:

* **One process per scrape** (the default): :class:`CountersCollector` reads the counters of
  :mod:`hypergen_ws.stats` when Prometheus scrapes, so counting costs nothing more. The only per-frame work is
  the publish-to-write latency, which :class:`LatencySink` adds to plain bucket counts, once per group frame.
* **prometheus_client's multiprocess mode** (``PROMETHEUS_MULTIPROC_DIR`` set in the environment of every
  process before it starts): :class:`PrometheusSink` adds every count to ``prometheus_client`` metrics, whose
  values live in files in that directory, so the ``metrics/`` endpoint of any process answers for all of them.
  Gauges of processes that exited are dropped; counters keep their totals.

``HYPERGEN_WS["METRICS"]``: ``None`` (default) turns the metrics on when ``prometheus_client`` is installed,
``True`` requires it (check ``hypergen_ws.E050``), ``False`` turns them off. ``AppConfig.ready`` calls
:func:`install_from_settings`.
"""
from __future__ import annotations

import atexit
import os

from ..core import conf
from . import counters
from .metric_sinks import INSTALL_HINT, LATENCY_BUCKETS, CountersCollector, LatencySink, PrometheusSink, require

try:
    import prometheus_client
    from prometheus_client import CollectorRegistry, multiprocess
    from prometheus_client.exposition import choose_encoder
except ImportError:  # the optional extra is not installed
    prometheus_client = None  # type: ignore[assignment]

__all__ = ["INSTALL_HINT", "LATENCY_BUCKETS", "CountersCollector", "LatencySink", "PrometheusSink", "available",
           "enabled", "exposition", "install", "sample_outboxes", "uninstall"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


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


# ---- installing and serving ---------------------------------------------------------------------------------
_installed: LatencySink | PrometheusSink | None = None


def install() -> LatencySink | PrometheusSink:
    """Create the metrics (once per process) and feed them: a :class:`PrometheusSink` in multiprocess mode, else a
    :class:`CountersCollector` in ``prometheus_client``'s default registry with its :class:`LatencySink`."""
    global _installed
    require()
    if _installed is None:
        if multiprocess_mode():
            _installed = PrometheusSink()
            atexit.register(multiprocess.mark_process_dead, os.getpid())
        else:
            _installed = LatencySink()
            prometheus_client.REGISTRY.register(CountersCollector(_installed))
    counters.set_sink(_installed)
    return _installed


def uninstall() -> None:
    """Stop feeding the metrics (what they counted stays)."""
    counters.set_sink(None)


def install_from_settings() -> None:
    """:func:`install` when ``HYPERGEN_WS["METRICS"]`` asks for metrics and ``prometheus_client`` is there."""
    if enabled() and available():
        install()


def installed() -> LatencySink | PrometheusSink | None:
    """What :func:`install` created in this process, if it ran."""
    return _installed


def sample_outboxes() -> None:
    """Update the outbox gauges of this process (multiprocess mode; otherwise they are read at each scrape)."""
    if isinstance(_installed, PrometheusSink):
        _installed.sample_outboxes()


def exposition(accept: str = "") -> tuple[bytes, str]:
    """The metrics and their content type, in the format the ``Accept`` header asks for (OpenMetrics, or the
    Prometheus text format): of every process in multiprocess mode, else of this one (with
    ``prometheus_client``'s process and platform metrics)."""
    require()
    sample_outboxes()
    if multiprocess_mode():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = prometheus_client.REGISTRY
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type
