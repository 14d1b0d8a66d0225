"""Prometheus metrics (hypergen_ws.metrics) and the metrics/ endpoint (hypergen_ws.views)."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import AsyncClient
from prometheus_client import REGISTRY, CollectorRegistry

from hypergen_ws import agroup_send
from hypergen_ws.stats import metrics, counters as stats
from hypergen_ws.delivery.hub import get_hub
from hypergen_ws.testing import ConsumerCommunicator
from tests import feature_consumers as fc
from tests import recovery_consumers as rc
from tests import sample_consumers as sc
from tests.recutil import next_close, opened
from tests.support.servers import REPO_ROOT
from tests.wsutil import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.http_urls")]

KEY = "metrics-key-0123456789abcdef"
METRICS_URL = "/hypergen_ws/metrics/"


@pytest.fixture(autouse=True)
def _installed(settings):
    settings.HYPERGEN_WS = {"PUBLISH_KEYS": [KEY]}
    metrics.install()
    yield


def value(name: str, **labels: str) -> float:
    """The current value of a sample (0 when it does not exist yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_installed_from_settings_when_prometheus_client_is_there():
    assert metrics.available() and metrics.enabled()
    assert isinstance(metrics.installed(), metrics.LatencySink), "one process per scrape: counters read at scrape"


async def test_connections_frames_bytes_publishes_and_latency_per_consumer():
    label = "tests.raw_json"
    before = {name: value(name, consumer=label) for name in (
        "hypergen_ws_connects_total", "hypergen_ws_frames_out_total", "hypergen_ws_bytes_out_total",
        "hypergen_ws_frames_in_total", "hypergen_ws_bytes_in_total", "hypergen_ws_publishes_total",
        "hypergen_ws_publish_latency_seconds_count")}
    open_before = value("hypergen_ws_connections", consumer=label)
    sockets = [await opened(fc.raw_json, application=fc.application, room="metrics") for _ in range(3)]
    assert value("hypergen_ws_connections", consumer=label) == open_before + 3
    await agroup_send(fc.raw_json.group_name(room="metrics"), "ü")
    text = '{"type":"message","data":"ü"}'  # as sent
    for comm in sockets:
        assert await comm.receive() == {"type": "message", "data": "ü"}
    await sockets[0].send('"hé"')  # a frame in: 5 UTF-8 bytes; its command goes to all three
    for comm in sockets:
        await comm.receive()
    size = len(text.encode())
    delta = {name: value(name, consumer=label) - was for name, was in before.items()}
    assert delta["hypergen_ws_connects_total"] == 3
    assert delta["hypergen_ws_frames_in_total"] == 1 and delta["hypergen_ws_bytes_in_total"] == 5
    assert delta["hypergen_ws_frames_out_total"] == 6, "two group frames, three sockets each"
    assert delta["hypergen_ws_bytes_out_total"] >= 3 * size
    assert delta["hypergen_ws_publishes_total"] == 2, "agroup_send and the command the frame caused"
    assert delta["hypergen_ws_publish_latency_seconds_count"] == 2, "one observation per frame, not per socket"
    assert value("hypergen_ws_publish_latency_seconds_bucket", consumer=label, le="+Inf") >= 2
    for comm in sockets:
        await comm.disconnect()
    await asyncio.sleep(0.05)
    assert value("hypergen_ws_connections", consumer=label) == open_before


async def test_refusals_and_errors_by_code():
    refused = value("hypergen_ws_refusals_total", consumer="tests.guarded", code="4401")
    bad = value("hypergen_ws_errors_total", consumer="tests.echo", code="bad_request")
    crashed = value("hypergen_ws_errors_total", consumer="tests.boom", code="server_error")
    too_big = value("hypergen_ws_errors_total", consumer="tests.raw_text", code="1009")
    async with ConsumerCommunicator(sc.guarded, application=application) as denied:  # accepted, then closed
        assert denied.close_code == 4401
    async with ConsumerCommunicator(sc.echo, application=application, room="errors") as echo:
        await echo.send("{not json")
        assert (await echo.receive())["code"] == "bad_request"
    async with ConsumerCommunicator(sc.boom, application=application) as boom:
        error = (await boom.call()).error
        assert error is not None and error["code"] == "server_error"
    async with ConsumerCommunicator(fc.raw_text, application=fc.application) as raw:
        await raw.send("x" * (1024 * 1024 + 1))
        assert await next_close(raw) == (1009, "")
    assert value("hypergen_ws_refusals_total", consumer="tests.guarded", code="4401") == refused + 1
    assert value("hypergen_ws_errors_total", consumer="tests.echo", code="bad_request") == bad + 1
    assert value("hypergen_ws_errors_total", consumer="tests.boom", code="server_error") == crashed + 1
    assert value("hypergen_ws_errors_total", consumer="tests.raw_text", code="1009") == too_big + 1


async def test_slow_client_close_and_outbox_depth(settings):
    settings.HYPERGEN_WS = {"SEND_QUEUE_LIMIT": 5, "PUBLISH_KEYS": [KEY]}
    label = "tests.echo"
    closes = value("hypergen_ws_slow_client_closes_total", consumer=label)
    group = sc.echo.group_name(room="outbox")
    fast = ConsumerCommunicator(sc.echo, application=application, room="outbox")
    assert await fast.connect()
    first = set(get_hub().members[group])
    slow = ConsumerCommunicator(sc.echo, application=application, room="outbox")
    assert await slow.connect()
    (victim,) = set(get_hub().members[group]) - first
    blocked = asyncio.Event()

    async def stuck_send(message):  # this socket stops reading: its writer never finishes
        await blocked.wait()

    victim.outbox._send = stuck_send
    await agroup_send(group, 0)
    await fast.receive()
    for i in range(1, 4):
        await agroup_send(group, i)
        await fast.receive()
    assert value("hypergen_ws_outbox_frames", consumer=label) == 3, "three frames wait behind the stuck send"
    assert value("hypergen_ws_outbox_max_frames", consumer=label) == 3
    for i in range(4, 10):
        await agroup_send(group, i)
        await fast.receive()
    assert await slow.wait_closed(2) == 1013
    assert value("hypergen_ws_slow_client_closes_total", consumer=label) == closes + 1
    assert value("hypergen_ws_outbox_frames", consumer=label) == 0
    await fast.disconnect()


async def test_recovery_outcomes(settings):
    from hypergen_ws.backends.memory import memory_store

    memory_store().flush_sync()
    label = "tests.rec_feed"
    replayed = value("hypergen_ws_recoveries_total", consumer=label, outcome="replayed", reason="")
    resynced = value("hypergen_ws_recoveries_total", consumer=label, outcome="resynced", reason="epoch_changed")
    first = await opened(rc.rec_feed, room="mrec")
    sync = await first.receive()
    await agroup_send("hgws.tests.rec_feed.room.mrec", "one")
    await first.receive()
    back = await opened(rc.rec_feed, room="mrec", query=f"hgws_seq={sync['seq']}&hgws_epoch={sync['epoch']}")
    assert (await back.receive())["type"] == "sync"
    lost = await opened(rc.rec_feed, room="mrec", query="hgws_seq=1&hgws_epoch=12345")
    assert (await lost.receive())["type"] == "resync"
    assert value("hypergen_ws_recoveries_total", consumer=label, outcome="replayed", reason="") == replayed + 1
    assert value("hypergen_ws_recoveries_total", consumer=label, outcome="resynced",
                 reason="epoch_changed") == resynced + 1
    for comm in (first, back, lost):
        await comm.disconnect()


async def test_channel_layer_errors_by_operation(settings, redis_server):
    url = redis_server.url
    from tests.recutil import use_layer

    use_layer("redis", settings, url)
    redis_server.stop()  # a layer whose Redis is gone: publishing fails for real
    before = value("hypergen_ws_channel_layer_errors_total", operation="send")
    with pytest.raises(Exception):
        await agroup_send("plain.group", 1)
    assert value("hypergen_ws_channel_layer_errors_total", operation="send") == before + 1
    assert stats.snapshot()["events"]["layer_errors"][""]["send"] >= 1


def test_the_sink_gets_one_call_per_group_frame_however_many_members():
    calls: list[tuple[dict[str, int], int, float | None]] = []

    class Recorder:
        def opened(self, label: str) -> None: ...
        def closed(self, label: str) -> None: ...
        def received(self, label: str, size: int) -> None: ...
        def sent(self, label: str, size: int) -> None: ...
        def event(self, kind: str, label: str, code: str) -> None: ...

        def group_frame(self, labels, size, published):
            calls.append((dict(labels), size, published))

    stats.set_sink(Recorder())
    try:
        for _ in range(500):
            stats.joined("hgws.x.many", "x.many")
        stats.group_frame("hgws.x.many", "abc", 500, 12.5)
        stats.group_frame("hgws.x.many", "abc", 500, "not a time")  # type: ignore[arg-type]
    finally:
        metrics.install()
        for _ in range(500):
            stats.left("hgws.x.many", "x.many")
    assert calls == [({"x.many": 500}, 3, 12.5), ({"x.many": 500}, 3, None)]


async def test_the_multiprocess_sink_counts_every_event_into_prometheus_client_metrics():
    registry = CollectorRegistry()
    sink = metrics.PrometheusSink(registry)
    stats.set_sink(sink)
    try:
        sockets = [await opened(fc.raw_json, application=fc.application, room="mp") for _ in range(2)]
        await agroup_send(fc.raw_json.group_name(room="mp"), 1)
        for comm in sockets:
            await comm.receive()
        async with ConsumerCommunicator(fc.raw_guarded, application=fc.application) as denied:
            await denied.wait_closed()
        stats.event(stats.RECOVERY, "tests.raw_json", "resynced.too_far_behind")
        stats.event(stats.LAYER_ERROR, "", "receive")
        sink.sample_outboxes()
        sample = registry.get_sample_value
        one = {"consumer": "tests.raw_json"}
        assert sample("hypergen_ws_connections", one) == 2 and sample("hypergen_ws_connects_total", one) == 2
        assert sample("hypergen_ws_frames_out_total", one) == 2
        assert sample("hypergen_ws_publish_latency_seconds_count", one) == 1
        assert sample("hypergen_ws_publishes_total", one) == 1
        assert sample("hypergen_ws_refusals_total", {"consumer": "tests.raw_guarded", "code": "4401"}) == 1
        assert sample("hypergen_ws_recoveries_total",
                      {**one, "outcome": "resynced", "reason": "too_far_behind"}) == 1
        assert sample("hypergen_ws_channel_layer_errors_total", {"operation": "receive"}) == 1
        assert sample("hypergen_ws_outbox_frames", one) == 0
        for comm in sockets:
            await comm.disconnect()
        await asyncio.sleep(0.05)
        assert sample("hypergen_ws_connections", one) == 0
    finally:
        metrics.install()
        for task in sink._samplers.values():
            task.cancel()


def test_latency_buckets_are_cumulative_and_clamped():
    latency = metrics.LatencySink()
    collector = metrics.CountersCollector(latency)
    now = time.time()
    latency.group_frame({"l.a": 3}, 10, now - 0.003)  # in the 0.005 bucket
    latency.group_frame({"l.a": 3}, 10, now + 60)  # a publisher whose clock is ahead: 0 s
    latency.group_frame({"l.a": 3}, 10, None)  # no publish time: not observed
    (family,) = [m for m in collector.collect() if m.name == "hypergen_ws_publish_latency_seconds"]
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    assert buckets["0.0005"] == 1 and buckets["0.0025"] == 1 and buckets["0.005"] == 2 and buckets["+Inf"] == 2
    count = [s.value for s in family.samples if s.name.endswith("_count")]
    assert count == [2]


# ---- the endpoint -------------------------------------------------------------------------------------------
async def test_endpoint_needs_a_key_or_a_staff_session():
    client = AsyncClient()
    no_key = await client.get(METRICS_URL)
    assert no_key.status_code == 401 and "Authorization: Bearer" in no_key.json()["error"]
    assert (await client.get(METRICS_URL, headers={"Authorization": "Bearer wrong"})).status_code == 403
    answer = await client.get(METRICS_URL, headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain; version=0.0.4")
    openmetrics = await client.get(METRICS_URL, headers={"Authorization": f"Bearer {KEY}",
                                                         "Accept": "application/openmetrics-text; version=1.0.0"})
    assert openmetrics["Content-Type"].startswith("application/openmetrics-text")
    assert openmetrics.content.decode().rstrip().endswith("# EOF")
    body = answer.content.decode()
    assert "# TYPE hypergen_ws_connections gauge" in body
    assert "# TYPE hypergen_ws_publish_latency_seconds histogram" in body
    assert "process_cpu_seconds_total" in body or "python_info" in body
    posted = await client.post(METRICS_URL, headers={"Authorization": f"Bearer {KEY}"})
    assert posted.status_code == 405

    staff = await sync_to_async(User.objects.create_user)("m_staff", password="x", is_staff=True)
    plain = await sync_to_async(User.objects.create_user)("m_plain", password="x")
    await client.aforce_login(plain)
    refused = await client.get(METRICS_URL)
    assert refused.status_code == 403, "a session without is_staff is told so"
    assert refused.json()["error"].startswith("You are logged in as 'm_plain', who is not an active staff user: the "
                                              "metrics are for staff users (is_staff) and for scrapers with an access")
    assert "No access key" not in refused.json()["error"]
    keyed = await client.get(METRICS_URL, headers={"Authorization": f"Bearer {KEY}"})
    assert keyed.status_code == 200, "with a key, whoever is logged in"
    await client.aforce_login(staff)
    assert (await client.get(METRICS_URL)).status_code == 200


async def test_endpoint_when_metrics_are_off(settings):
    settings.HYPERGEN_WS = {"PUBLISH_KEYS": [KEY], "METRICS": False}
    answer = await AsyncClient().get(METRICS_URL, headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 404
    assert "HYPERGEN_WS['METRICS'] is False" in answer.json()["error"]


def test_without_prometheus_client_the_endpoint_and_the_check_say_how_to_install_it():
    script = """
import sys
sys.modules["prometheus_client"] = None  # as if it were not installed
import django
from django.conf import settings
django.setup()
settings.ROOT_URLCONF = "tests.http_urls"
settings.HYPERGEN_WS = {"PUBLISH_KEYS": ["k" * 24], "METRICS": True}
from django.core.checks import run_checks
from django.test import Client
from django.test.utils import setup_test_environment
from hypergen_ws.stats import metrics
setup_test_environment()
answer = Client().get("/hypergen_ws/metrics/", HTTP_AUTHORIZATION="Bearer " + "k" * 24)
print(json.dumps({"available": metrics.available(), "status": answer.status_code,
                  "error": answer.json()["error"], "checks": [m.id for m in run_checks()]}))
"""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="testproject.settings", PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run([sys.executable, "-c", "import json\n" + script], capture_output=True, text=True,
                            cwd=REPO_ROOT, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["available"] is False
    assert answer["status"] == 501 and 'pip install "hypergen-ws[metrics]"' in answer["error"]
    assert "hypergen_ws.E050" in answer["checks"]


def test_metrics_setting_check(settings):
    from hypergen_ws.checks import check_metrics

    settings.HYPERGEN_WS = {"METRICS": "yes"}
    assert [m.id for m in check_metrics()] == ["hypergen_ws.E051"]
    for ok in (None, True, False):
        settings.HYPERGEN_WS = {"METRICS": ok}
        assert check_metrics() == []
