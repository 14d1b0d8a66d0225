"""Test support: real servers (redis-server, daphne, uvicorn) and a headless browser, for the test suite.

``tests.support.fixtures`` is the pytest plugin; ``tests.support.servers`` and ``tests.support.browser`` hold
the classes, usable without pytest (benchmarks, scripts).
"""
