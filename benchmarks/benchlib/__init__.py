"""Shared machinery of the hypergen_ws benchmarks (servers, clients, statistics, reports)."""
