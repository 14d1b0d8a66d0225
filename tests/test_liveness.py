"""The protocol heartbeat and the reconnect hint on sockets (hypergen_ws.consumers.liveness, .delivery.shutdown),
through ConsumerCommunicator; the wheel itself is tested in test_heartbeat.py, real servers in tests/e2e/."""
from __future__ import annotations

import asyncio

import pytest
from channels.testing import ApplicationCommunicator

from hypergen_ws import agroup_send
from hypergen_ws.core import protocol
from hypergen_ws.delivery.shutdown import drain_all
from hypergen_ws.routing import lifespan
from hypergen_ws.testing import ConsumerCommunicator
from tests import feature_consumers as fc
from tests import recovery_consumers as rc
from tests import sample_consumers as sc
from tests.recutil import next_close, opened

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def quick(settings):
    """A heartbeat fast enough for a test: a ping after 0.2 s of quiet, 0.4 s to answer it."""
    settings.HYPERGEN_WS = {**(getattr(settings, "HYPERGEN_WS", None) or {}), "PING_INTERVAL": 0.2,
                            "PING_TIMEOUT": 0.4, "RECONNECT_SPREAD": 3.0}


async def test_a_quiet_socket_is_pinged_again_after_each_answer(quick):
    async with ConsumerCommunicator(rc.rec_plain, application=rc.application, room="quiet", answer_pings=False) as comm:
        for _ in range(3):
            assert await comm.receive(2) == {"type": "ping"}
            await comm.send({"type": "pong"})
        result = await comm.call()
        assert result.reply is not None and result.error is None, "the pongs were never taken for calls"


async def test_the_communicator_answers_pings_unless_asked_not_to(quick):
    async with ConsumerCommunicator(rc.rec_plain, application=rc.application, room="answered") as comm:
        await comm.assert_nothing(1.5)  # pings came and went, answered: the socket stays open and shows nothing
        assert comm.connected
        assert (await comm.call()).reply is not None


async def test_an_unanswered_ping_closes_with_4410_and_runs_every_clean_up(quick):
    fc.EVENTS.clear()
    comm = await opened(fc.hooked, room="deaf", application=fc.application, answer_pings=False)
    await comm.receive_of("commands")  # on_connect's state
    assert await comm.receive(2) == {"type": "ping"}
    assert await next_close(comm, 3) == (protocol.CLOSE_PING_TIMEOUT, "")
    for _ in range(100):
        if any(e[0] == "disconnect" for e in fc.EVENTS):
            break
        await asyncio.sleep(0.02)
    assert ("disconnect", "hooked", "deaf", protocol.CLOSE_PING_TIMEOUT) in fc.EVENTS
    await comm.disconnect()


async def test_presence_drops_a_member_that_answers_no_ping(quick):
    watcher = await opened(rc.rec_room, room="truth")
    assert (await watcher.receive_of("presence"))["event"] == "list"
    assert (await watcher.receive_of("presence"))["event"] == "join", "the watcher itself"
    deaf = await opened(rc.rec_room, room="truth", answer_pings=False)
    assert len((await deaf.receive_of("presence"))["users"]) == 2
    joined = await watcher.receive_of("presence")
    assert joined["event"] == "join"
    left = await watcher.receive_of("presence", timeout=3)
    assert left["event"] == "leave" and left["id"] == joined["id"]
    assert [u["id"] for u in await rc.rec_room.apresence(room="truth")] != [joined["id"]]
    assert deaf.close_code is None or deaf.close_code == protocol.CLOSE_PING_TIMEOUT
    await deaf.disconnect()
    await watcher.disconnect()


async def test_a_busy_socket_is_not_pinged(quick):
    async with ConsumerCommunicator(rc.rec_plain, application=rc.application, room="busy", answer_pings=False) as comm:
        group = rc.rec_plain.group_name(room="busy")
        for n in range(30):  # 1.5 s of a frame every 50 ms: never quiet for PING_INTERVAL
            await agroup_send(group, n)
            frame = await comm.receive(2)
            assert frame == {"type": "message", "data": n}
            await asyncio.sleep(0.05)


async def test_a_presence_socket_is_pinged_when_its_client_is_silent_however_busy_its_group(quick):
    async with ConsumerCommunicator(rc.rec_room, application=rc.application, room="chatty", answer_pings=False) as comm:
        group = rc.rec_room.group_name(room="chatty")
        seen = []
        for n in range(40):
            await agroup_send(group, n)
            seen.extend(await comm.receive_all(quiet=0.05))
            if {"type": "ping"} in seen:
                break
        assert {"type": "ping"} in seen, "a silent client of a presence group must be asked whether it is there"


async def test_a_client_ping_is_answered_with_a_pong_in_any_spelling(settings):
    settings.HYPERGEN_WS = {"PING_INTERVAL": None}
    async with ConsumerCommunicator(rc.rec_plain, application=rc.application, room="probe") as comm:
        await comm.send({"type": "ping"})  # json.dumps: with spaces
        assert await comm.receive() == {"type": "pong"}
        await comm.send(protocol.PING)
        assert await comm.receive() == {"type": "pong"}
        await comm.assert_nothing(0.5)  # and no pings of the server's: PING_INTERVAL=None
        await comm.send('{"type": "ping", "id": 1}')  # not a ping: a call frame with an unknown field
        assert (await comm.receive())["code"] == protocol.BAD_REQUEST


@pytest.mark.parametrize("kind", ["frames=json", "protocol=hypergen"])
async def test_consumers_whose_clients_cannot_answer_get_no_pings(quick, kind):
    from tests import hypergen_consumers as hc

    consumer, application = (fc.raw_json, fc.application) if kind == "frames=json" else (hc.hg_note, hc.application)
    assert consumer.pings is False and sc.echo.pings is True
    async with ConsumerCommunicator(consumer, room="raw", application=application, answer_pings=False) as comm:
        await comm.assert_nothing(1.2)
        assert comm.connected


async def test_a_pong_is_a_payload_for_a_raw_json_consumer(quick):
    async with ConsumerCommunicator(fc.raw_json, room="pong", application=fc.application) as comm:
        await comm.send({"type": "pong"})
        frames = await comm.receive_all()
        assert any("pong" in str(f) for f in frames), frames


async def test_a_drain_tells_each_socket_when_to_reconnect_and_closes_it_with_1012(quick):
    sockets = [await opened(rc.rec_plain, room=f"d{n}") for n in range(4)]
    raw = await opened(fc.raw_json, room="d", application=fc.application)
    drained = asyncio.create_task(drain_all(timeout=5))
    delays = []
    for comm in sockets:
        hint = await comm.receive_of("reconnect")
        assert set(hint) == {"type", "delay"} and 0 <= hint["delay"] <= 3.0
        delays.append(hint["delay"])
        assert await next_close(comm) == (protocol.CLOSE_SERVICE_RESTART, "")
    assert await next_close(raw) == (protocol.CLOSE_SERVICE_RESTART, ""), "no hint for a raw client: only the code"
    assert len(set(delays)) > 1, "the delays are spread"
    for comm in [*sockets, raw]:
        await comm.disconnect()
    assert await drained == 5
    late = ConsumerCommunicator(rc.rec_plain, application=rc.application, room="late")
    await late.connect()  # the process is still shutting down: told to go elsewhere at once
    assert late.accepted and (await late.receive_of("reconnect"))["delay"] <= 3.0
    assert await next_close(late) == (protocol.CLOSE_SERVICE_RESTART, "")
    await late.disconnect()


async def test_the_lifespan_shutdown_drains_the_process(quick):
    comm = await opened(rc.rec_plain, room="lifespan")
    app = ApplicationCommunicator(lifespan, {"type": "lifespan"})
    await app.send_input({"type": "lifespan.startup"})
    assert await app.receive_output(1) == {"type": "lifespan.startup.complete"}
    await app.send_input({"type": "lifespan.shutdown"})
    assert (await comm.receive_of("reconnect"))["type"] == "reconnect"
    assert await next_close(comm) == (protocol.CLOSE_SERVICE_RESTART, "")
    await comm.disconnect()
    assert await app.receive_output(5) == {"type": "lifespan.shutdown.complete"}
