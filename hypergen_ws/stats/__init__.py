"""Observability: what hypergen_ws counts, and the ways to read it.

* :mod:`~hypergen_ws.stats.counters`: the traffic counters of this process; every layer above the backends
  counts into it. :func:`snapshot` and :func:`reset` are its face (docs/stats.rst).
* :mod:`~hypergen_ws.stats.metrics` and :mod:`~hypergen_ws.stats.metric_sinks`: the counters as Prometheus
  metrics (docs/operations.rst).
* :mod:`~hypergen_ws.stats.cluster`: the counters of every server process, summed (``get_stats()``).

The plain-text tables of the counters are the command line's (:func:`hypergen_ws.cli.format_stats`).
"""
from __future__ import annotations

from .counters import Counters, reset, snapshot

__all__ = ["Counters", "reset", "snapshot"]
