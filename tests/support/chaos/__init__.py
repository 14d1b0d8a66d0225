"""A chaos run with a checker: real servers on Redis (with a replica and a Sentinel), clients in history groups,
publishers of three kinds, faults injected at random times from a printed seed, and a checker that reads what
every client received and what every publisher was told (docs/reliability.rst).

``benchmarks/chaos.py`` runs it long and prints the table; ``tests/e2e/test_chaos.py`` runs it short with fixed
seeds and fails on any silent gap, duplicate or reordering.
"""
