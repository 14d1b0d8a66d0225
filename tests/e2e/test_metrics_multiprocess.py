"""Prometheus metrics of several server processes through prometheus_client's multiprocess mode: with
``PROMETHEUS_MULTIPROC_DIR`` shared, the metrics/ endpoint of any one process answers for all of them."""
from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.monitoring_settings import MONITORING_KEY
from tests.e2e.wsclients import LISTEN_PATH, open_clients

pytestmark = pytest.mark.timeout(120)

LABEL = "notifications.listen"


def scrape(server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    request = urllib.request.Request(f"{server.url}/hypergen_ws/metrics/",
                                     headers={"Authorization": f"Bearer {MONITORING_KEY}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def sample(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def until(server, test, what: str, timeout: float = 20.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        samples = await asyncio.to_thread(scrape, server)
        if test(samples):
            return samples
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.1)


async def test_any_process_answers_for_all(live_server_factory, tmp_path: Path):
    env = {"DJANGO_SETTINGS_MODULE": "tests.e2e.monitoring_settings", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    a = live_server_factory(server="uvicorn", env=env)
    b = live_server_factory(server="daphne", env=env)
    on_a = await open_clients([a.ws_url + LISTEN_PATH], 2)
    on_b = await open_clients([b.ws_url + LISTEN_PATH], 3)
    try:
        samples = await until(a, lambda s: sample(s, "hypergen_ws_connections", consumer=LABEL) == 5,
                              "the open connections of both processes, summed")
        assert sample(samples, "hypergen_ws_connects_total", consumer=LABEL) == 5
        from_b = await asyncio.to_thread(scrape, b)
        assert sample(from_b, "hypergen_ws_connections", consumer=LABEL) == 5, "either process answers for both"
        assert any(path.name.startswith("gauge_livesum_") for path in tmp_path.iterdir())
    finally:
        await asyncio.gather(*(ws.close() for ws in on_b), return_exceptions=True)
    b.stop()  # a clean exit: its sockets close, and its live gauges are dropped
    samples = await until(a, lambda s: sample(s, "hypergen_ws_connections", consumer=LABEL) == 2,
                          "only the remaining process's connections")
    assert sample(samples, "hypergen_ws_connects_total", consumer=LABEL) == 5, "counters keep the exited process's"
    await asyncio.gather(*(ws.close() for ws in on_a), return_exceptions=True)
