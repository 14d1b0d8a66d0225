"""A short chaos run (tests/support/chaos): real servers on Redis with a replica and a Sentinel, three kinds of
publishers, faults cycled from a fixed seed; the run fails on any silent gap, duplicate or reordering, and on an
acknowledged message that reached no client and no resync. ``benchmarks/chaos.py`` runs it long."""
from __future__ import annotations

import json

import pytest

from tests.support.chaos.checker import table
from tests.support.chaos.faults import KINDS
from tests.support.chaos.run import chaos_run
from tests.support.fixtures import require_tool

pytestmark = pytest.mark.timeout(420)

#: The faults of the short run, in turn: every kind. Each also has its focused test (docs/reliability.rst):
#: tests/e2e/test_recovery.py (kill -9 of a server), test_layer_faults.py (Redis frozen, Redis restarted),
#: test_sentinel.py (a failover, planned or not), test_history_rollback.py (a history that goes back and forward),
#: test_slow_client.py (a client that stops reading), test_deploys.py (a rolling restart), and
#: test_a_blackholed_client_* below (a dead path).
SHORT_RUN = list(KINDS)


async def test_a_short_chaos_run_keeps_the_promise(tmp_path):
    require_tool("redis-server", "apt-get install redis-server")
    report, faults = await chaos_run(seed=20261207, duration=60, log_dir=tmp_path, faults=SHORT_RUN, cycle=True,
                                     say=lambda line: None)
    text = table(report, 20261207) + "\n" + "\n".join(report.problems[:40]) + f"\nlogs: {tmp_path}"
    assert {f.kind for f in faults} == set(SHORT_RUN), text
    assert report.acknowledged > 500 and report.deliveries > 1000, text
    assert report.kept_the_promise, text
    rolling = [f for f in report.faults if f["fault"] == "rolling_restart"]
    assert any(f["told_to_reconnect"] > 0 for f in rolling), f"the deploy path (hint + 1012): {text}"
    for name in ("p0.0", "p1.0", "p2.0"):  # the Python clients (hypergen_ws.client) took part, and were checked
        events = [json.loads(line) for line in (tmp_path / "clients" / f"{name}.jsonl").read_text().splitlines()]
        assert sum(1 for e in events if e["kind"] == "deliver") > 100, f"{name}: {events[-20:]}"
    assert report.silent_gaps == report.duplicates == report.out_of_order == 0, text


@pytest.mark.parametrize("server_kind", ["daphne", "uvicorn"])
async def test_a_blackholed_client_reconnects_and_gets_what_it_missed(server_kind, live_server_factory):
    """The path of one client dies without a close: it hears nothing, reconnects when the path is back, and
    the server replays what was published meanwhile, in order and once."""
    import asyncio
    import json
    import urllib.request

    from tests.e2e.recovering_client import wait_for
    from tests.support.chaos.checker import ClientLog, check
    from tests.support.chaos.clients import ChaosClient
    from tests.support.chaos.proxy import BlackholeProxy
    from tests.support.chaos.run import APPLICATION, PUBLISH_KEY, SETTINGS

    server = live_server_factory(APPLICATION, server=server_kind, settings=SETTINGS)
    proxy = await BlackholeProxy(server.port).start()
    client = ChaosClient("c", "feed/bh", "/ws/tests/chaos_feed/bh/", [server.port], proxy, silence=1.0).start()

    def publish(n: int) -> None:
        body = json.dumps({"consumer": "tests.chaos_feed", "kwargs": {"room": "bh"}, "data": {"id": f"p:{n}"}})
        request = urllib.request.Request(f"{server.url}/hypergen_ws/publish/", data=body.encode(), headers={
            "Authorization": f"Bearer {PUBLISH_KEY}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def delivered() -> list[str]:
        return [i for e in client.events if e.kind == "deliver" for i in e.ids]

    try:
        await wait_for(lambda: client.synced, 20, "the client connected")
        for n in range(5):
            await asyncio.to_thread(publish, n)
        await wait_for(lambda: len(delivered()) == 5, 10, lambda: client.events)
        proxy.blackhole()
        for n in range(5, 15):
            await asyncio.to_thread(publish, n)
        await wait_for(lambda: any(e.kind == "silence" for e in client.events), 10, "the client noticing")
        proxy.cut()  # the dead path's connections are gone; new ones go through
        await wait_for(lambda: len(delivered()) == 15, 20, lambda: client.events)
        assert delivered() == [f"p:{n}" for n in range(15)]
        assert sum(1 for e in client.events if e.kind == "connect") >= 2
        report = check([ClientLog("c", "feed/bh", client.events)], [])
        assert report.kept_the_promise and report.resyncs == {}, report.problems
    finally:
        await client.stop()
        await proxy.close()
