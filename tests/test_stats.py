"""Traffic counters (hypergen_ws.stats), their tables and ``manage.py hypergen_ws_stats``."""
from __future__ import annotations

import asyncio
import io
import json
import os
from functools import partial

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from hypergen_ws import agroup_send, stats
from hypergen_ws.cli import format_table
from hypergen_ws.stats import counters as counting
from hypergen_ws.delivery.hub import get_hub
from hypergen_ws.testing import ConsumerCommunicator
from tests import feature_consumers as fc
from tests.recutil import next_close, opened

pytestmark = pytest.mark.django_db(transaction=True)

sock = partial(opened, application=fc.application)
LOBBY = fc.raw_json.group_name(room="lobby")
VIP = fc.raw_json.group_name(room="vip")


@pytest.fixture(autouse=True)
def _zero():
    stats.reset()
    yield


def consumer_row(label: str) -> dict[str, int]:
    return stats.snapshot()["consumers"].get(label, {})


def group_row(group: str) -> dict[str, int] | None:
    return stats.snapshot()["groups"].get(group)


async def settle() -> None:
    await asyncio.sleep(0.05)


async def test_connections_open_and_total_per_consumer_and_group():
    a = await sock(fc.raw_json, room="lobby")
    b = await sock(fc.raw_json, room="lobby")
    c = await sock(fc.raw_json, room="vip")
    row = consumer_row("tests.raw_json")
    assert (row["connections"], row["connections_total"]) == (3, 3)
    assert group_row(LOBBY)["connections"] == 2 and group_row(VIP)["connections"] == 1
    await c.disconnect()
    await settle()
    assert consumer_row("tests.raw_json")["connections"] == 2
    assert consumer_row("tests.raw_json")["connections_total"] == 3
    assert group_row(VIP) is None, "a group's counters go with its last local member"
    await a.disconnect()
    await b.disconnect()
    await settle()
    assert consumer_row("tests.raw_json")["connections"] == 0
    assert group_row(LOBBY) is None


async def test_messages_and_bytes_in_count_utf8_bytes():
    a = await sock(fc.raw_json, room="lobby")
    b = await sock(fc.raw_json, room="lobby")
    text = json.dumps("héllo", ensure_ascii=False)  # 7 characters, 8 bytes
    await a.send(text)
    await a.receive()
    await b.receive()
    assert consumer_row("tests.raw_json")["messages_in"] == 1
    assert consumer_row("tests.raw_json")["bytes_in"] == 8
    assert group_row(LOBBY)["messages_in"] == 1 and group_row(LOBBY)["bytes_in"] == 8
    await a.disconnect()
    await b.disconnect()


async def test_binary_frames_count_their_bytes():
    a = await sock(fc.raw_bytes)
    await a.send(b"\x00" * 10)
    await a.receive()
    row = consumer_row("tests.raw_bytes")
    assert (row["messages_in"], row["bytes_in"]) == (1, 10)
    await a.disconnect()


async def test_a_group_frame_counts_once_per_local_member():
    a = await sock(fc.raw_json, room="lobby")
    b = await sock(fc.raw_json, room="lobby")
    c = await sock(fc.raw_json, room="lobby")
    other = await sock(fc.raw_json, room="vip")
    await agroup_send(LOBBY, "ü")
    frame = '{"type":"message","data":"ü"}'
    for comm in (a, b, c):
        assert await comm.receive() == {"type": "message", "data": "ü"}
    size = len(frame.encode())
    assert group_row(LOBBY)["messages_out"] == 3 and group_row(LOBBY)["bytes_out"] == 3 * size
    assert group_row(VIP)["messages_out"] == 0
    row = consumer_row("tests.raw_json")
    assert (row["messages_out"], row["bytes_out"]) == (3, 3 * size)
    totals = stats.snapshot()["totals"]
    assert totals["messages_out"] == 3 and totals["connections"] == 4
    for comm in (a, b, c, other):
        await comm.disconnect()


async def test_frames_to_one_socket_count_for_the_consumer_only():
    a = await sock(fc.raw_text)  # send_to="caller"
    await a.send("hi")
    assert await a.receive() == {"type": "commands", "commands": [["text", "HI"]]}
    frame = '{"type":"commands","commands":[["text","HI"]]}'  # as sent
    row = consumer_row("tests.raw_text")
    assert (row["messages_out"], row["bytes_out"]) == (1, len(frame))
    assert group_row(fc.raw_text.group_name())["messages_out"] == 0
    await a.disconnect()


async def test_a_group_with_members_of_two_consumers_splits_the_per_consumer_share():
    a = await sock(fc.raw_json, room="lobby")
    b = await sock(fc.raw_text)
    hub = get_hub()
    b_instance = next(iter(hub.members[fc.raw_text.group_name()]))
    await b_instance.join(LOBBY)
    await agroup_send(LOBBY, 1)
    await a.receive()
    await b.receive()
    assert group_row(LOBBY)["messages_out"] == 2
    assert consumer_row("tests.raw_json")["messages_out"] == 1
    assert consumer_row("tests.raw_text")["messages_out"] == 1
    await a.disconnect()
    await b.disconnect()


async def test_initial_state_and_denied_sockets():
    fc.EVENTS.clear()
    a = await sock(fc.hooked, room="s1")
    assert await a.receive() == {"type": "commands", "commands": [["state", "s1", "guest-1"]]}
    frame = '{"type":"commands","commands":[["state","s1","guest-1"]]}'  # as sent
    assert consumer_row("tests.hooked")["messages_out"] == 1
    assert consumer_row("tests.hooked")["bytes_out"] == len(frame.encode())
    async with ConsumerCommunicator(fc.raw_guarded, application=fc.application) as denied:
        await denied.wait_closed()
        assert consumer_row("tests.raw_guarded").get("connections", 0) == 0
    await a.disconnect()


def test_reset_keeps_open_connections():
    counting.opened("x.y")
    counting.received("x.y", [], 5)
    stats.reset()
    assert consumer_row("x.y") == {"connections": 1, "connections_total": 0, "messages_in": 0, "bytes_in": 0,
                                   "messages_out": 0, "bytes_out": 0}
    counting.closed("x.y")
    counting.closed("x.y")
    assert consumer_row("x.y")["connections"] == 0, "never negative"


def test_format_table():
    counting.opened("x.y")
    counting.joined("hgws.x.y", "x.y")
    table = format_table(stats.snapshot())
    assert "consumer" in table and "x.y" in table and "hgws.x.y" in table and "total" in table
    counting.left("hgws.x.y", "x.y")
    counting.closed("x.y")


def test_management_command_prints_local_counters_with_a_note():
    out, err = io.StringIO(), io.StringIO()
    call_command("hypergen_ws_stats", "--json", stdout=out, stderr=err)
    result = json.loads(out.getvalue())
    assert result["scope"] == "process" and [row["pid"] for row in result["processes"]] == [os.getpid()]
    assert {"totals", "consumers", "groups", "events", "rates"} <= set(result)
    assert "counters of this command's own process" in err.getvalue()
    assert "--url" in err.getvalue()


def test_management_command_fetches_from_a_server(stub):
    stub.answer(200, {"scope": "process", "processes": [{"id": "h:99", "host": "h", "pid": 99, "uptime": 1}],
                      "totals": {}, "consumers": {"a.b": {"connections": 4}}, "groups": {}, "events": {}})
    out = io.StringIO()
    call_command("hypergen_ws_stats", "--url", stub.url, "--key", "k", stdout=out)
    assert "process 99" in out.getvalue() and "a.b" in out.getvalue()
    assert stub.requests[-1][2]["Authorization"] == "Bearer k"
    call_command("hypergen_ws_stats", "--url", stub.url, "--key", "k", "--per-process", stdout=io.StringIO())
    assert stub.requests[-1][1] == "/hypergen_ws/stats/?per_process=1"
    stub.answer(403, {"error": "Wrong access key: ..."})
    with pytest.raises(CommandError, match="403: Wrong access key"):
        call_command("hypergen_ws_stats", "--url", stub.url, "--key", "bad", stdout=io.StringIO())


def test_management_command_needs_a_key_with_url(monkeypatch):
    monkeypatch.delenv("HYPERGEN_WS_PUBLISH_KEY", raising=False)
    with pytest.raises(CommandError, match="No access key"):
        call_command("hypergen_ws_stats", "--url", "http://127.0.0.1:9/")
    with pytest.raises(CommandError, match="--key goes with --url"):
        call_command("hypergen_ws_stats", "--key", "k")


# ---- events and rates ---------------------------------------------------------------------------------------
async def test_events_by_consumer_and_code():
    async with ConsumerCommunicator(fc.raw_guarded, application=fc.application) as denied:
        assert await next_close(denied) == (4401, "")
    a = await sock(fc.raw_json, room="lobby")
    await a.send("{broken")
    assert (await a.receive())["code"] == "bad_request"
    await agroup_send(LOBBY, 1)
    await a.receive()
    events = counting.snapshot()["events"]
    assert events["refusals"] == {"tests.raw_guarded": {"4401": 1}}
    assert events["errors"] == {"tests.raw_json": {"bad_request": 1}}
    assert events["publishes"] == {"tests.raw_json": {"": 1}}
    assert set(events) == set(counting.EVENT_KINDS)
    await a.disconnect()
    counting.reset()
    assert counting.snapshot()["events"] == {kind: {} for kind in counting.EVENT_KINDS}


def test_consumer_label_of_group_names():
    assert counting.consumer_label("hgws.chat.send_message.room_name.vip") == "chat.send_message"
    assert counting.consumer_label("hgws.counter.increment") == "counter.increment"
    long_name = fc.raw_json.group_name(room="x" * 200)
    assert long_name.startswith("hgwsh.") and counting.consumer_label(long_name) == "tests.raw_json"
    assert counting.consumer_label("custom.team-red") == ""
    assert counting.consumer_label("hgws.") == ""


def test_consumer_labels_are_bounded(monkeypatch):
    monkeypatch.setattr(counting, "_group_labels", set())
    labels = {counting.consumer_label(f"hgws.app{i}.fn") for i in range(counting._MAX_LABELS + 50)}
    assert len(labels - {""}) == counting._MAX_LABELS and "" in labels
    assert counting.consumer_label("hgws.app0.fn") == "app0.fn", "labels seen before stay"


def test_rates_are_messages_per_second_since_an_earlier_snapshot(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(counting, "_clock", lambda: clock[0])
    counting.reset()
    assert counting.snapshot()["rates"] == {"messages_in": 0.0, "messages_out": 0.0}
    counting.opened("r.s")
    for _ in range(10):
        counting.received("r.s", [], 1)
        counting.sent("r.s", "x")
    clock[0] += 2.0
    assert counting.snapshot()["rates"] == {"messages_in": 5.0, "messages_out": 5.0}
    counting.closed("r.s")
