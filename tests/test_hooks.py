"""``@<consumer>.on_connect`` / ``.on_disconnect`` hooks (hypergen_ws.features.hooks)."""
from __future__ import annotations

import asyncio
import json
import logging

import pytest
from channels.layers import get_channel_layer
from django.core.exceptions import ImproperlyConfigured

from hypergen_ws import NO_PERM_REQUIRED, consumer
from hypergen_ws.core.protocol import CLOSE_NOT_AUTHENTICATED, CLOSE_PERMISSION_DENIED
from tests import feature_consumers as fc
from tests.feature_consumers import EVENTS, open_socket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _clear_events():
    EVENTS.clear()
    yield
    EVENTS.clear()


async def frame(comm, timeout: float = 2):
    return json.loads(await comm.receive_from(timeout))


async def wait_for(predicate, timeout: float = 2) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out; events: {EVENTS}")


async def test_on_connect_commands_go_to_the_new_client_only():
    a = await open_socket("/ws/tests/hooked/lobby/")
    assert await frame(a) == {"type": "commands", "commands": [["state", "lobby", "guest-1"]]}
    b = await open_socket("/ws/tests/hooked/lobby/")
    assert await frame(b) == {"type": "commands", "commands": [["state", "lobby", "guest-2"]]}
    assert await a.receive_nothing(0.1), "another client's initial state must not reach a"
    await a.send_to(text_data=json.dumps({"args": ["hi"]}))
    assert (await frame(a))["commands"] == [["said", "lobby", "hi"]]
    assert (await frame(b))["commands"] == [["said", "lobby", "hi"]]
    await a.disconnect()
    await b.disconnect()


async def test_initial_state_comes_before_group_frames_published_meanwhile():
    listener = await open_socket("/ws/tests/ordered/")
    assert await frame(listener) == {"type": "commands", "commands": [["state", "initial"]]}
    assert (await frame(listener))["type"] == "message"  # its own on_connect published once
    newcomer = await open_socket("/ws/tests/ordered/")
    assert await frame(newcomer) == {"type": "commands", "commands": [["state", "initial"]]}
    assert await frame(newcomer) == {"type": "message", "data": "published during on_connect"}
    assert await frame(listener) == {"type": "message", "data": "published during on_connect"}
    await listener.disconnect()
    await newcomer.disconnect()


async def test_on_disconnect_runs_after_leaving_and_its_commands_reach_the_group():
    a = await open_socket("/ws/tests/hooked/r2/")
    b = await open_socket("/ws/tests/hooked/r2/")
    await frame(a)
    await frame(b)
    await a.disconnect(code=1001)
    assert await frame(b) == {"type": "commands", "commands": [["left", "r2", "guest-1"]]}
    assert EVENTS[-1] == ("disconnect", "hooked", "r2", 1001)
    await b.disconnect()
    await wait_for(lambda: len(EVENTS) == 4)
    assert [e[0] for e in EVENTS] == ["connect", "connect", "disconnect", "disconnect"]


async def test_on_disconnect_runs_after_an_exception_in_the_consumer_function(caplog):
    a = await open_socket("/ws/tests/hooked/r3/")
    await frame(a)
    with caplog.at_level(logging.ERROR, logger="hypergen_ws"):
        await a.send_to(text_data=json.dumps({"args": ["boom"], "id": 1}))
        assert (await frame(a))["code"] == "server_error"
    await a.disconnect()
    await wait_for(lambda: EVENTS[-1][0] == "disconnect")
    assert EVENTS[-1][:3] == ("disconnect", "hooked", "r3")


async def test_on_disconnect_runs_when_the_client_vanishes():
    a = await open_socket("/ws/tests/hooked/r4/")
    await frame(a)
    await a.send_input({"type": "websocket.disconnect", "code": 1006})  # no close handshake: the TCP link died
    await a.wait(1)
    assert EVENTS[-1] == ("disconnect", "hooked", "r4", 1006)


async def test_on_disconnect_runs_when_the_server_cancels_the_consumer():
    a = await open_socket("/ws/tests/hooked/r5/")
    await frame(a)
    a.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await a.future
    assert EVENTS[-1] == ("disconnect", "hooked", "r5", None)


async def test_on_disconnect_runs_when_an_exception_escapes_the_consumer_and_hook_errors_are_logged(caplog):
    a = await open_socket("/ws/tests/crashing/")
    with caplog.at_level(logging.ERROR, logger="hypergen_ws"):
        await get_channel_layer().group_send(fc.crashing.group_name(), {"type": "crash.now"})
        with pytest.raises(RuntimeError, match="a layer handler crashed"):
            await a.wait(2)
    assert ("disconnect", "crashing", None, None) in EVENTS
    assert ("disconnect-after", "crashing", None, None) in EVENTS, "a failing hook must not stop the next one"
    record = next(r for r in caplog.records if "Error in on_disconnect" in r.getMessage())
    assert record.exc_info and record.exc_info[0] is KeyError


async def test_hooks_do_not_run_for_denied_sockets():
    comm = await open_socket("/ws/tests/hooked_guarded/")
    assert await comm.receive_output(1) == {"type": "websocket.close", "code": CLOSE_NOT_AUTHENTICATED}
    await comm.wait(1)
    assert EVENTS == []


async def test_failing_on_connect_sends_server_error_closes_1011_and_still_runs_on_disconnect(caplog, settings):
    settings.DEBUG = False
    with caplog.at_level(logging.ERROR, logger="hypergen_ws"):
        comm = await open_socket("/ws/tests/failing_connect/crash/")
        assert await frame(comm) == {"type": "error", "code": "server_error", "message": "Internal server error."}
        assert await comm.receive_output(1) == {"type": "websocket.close", "code": 1011}
    assert any("Error in on_connect" in r.getMessage() for r in caplog.records)
    await comm.send_input({"type": "websocket.disconnect", "code": 1011})
    await comm.wait(1)
    assert EVENTS == [("disconnect", "failing_connect", "crash", 1011)]


async def test_permission_denied_in_on_connect_closes_with_4403(caplog):
    with caplog.at_level(logging.WARNING, logger="hypergen_ws"):
        comm = await open_socket("/ws/tests/failing_connect/denied/")
        error = await frame(comm)
    assert error == {"type": "error", "code": "permission_denied", "message": "Room is full."}
    assert await comm.receive_output(1) == {"type": "websocket.close", "code": CLOSE_PERMISSION_DENIED}
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "Refused a websocket to tests.failing_connect (close 4403, permission denied) for an anonymous user: "
        "on_connect raised PermissionDenied('Room is full.')."]


def test_hooks_return_the_function_and_are_recorded():
    assert fc.hooked_connect.__name__ == "hooked_connect"
    assert [h.func for h in fc.hooked.connect_hooks] == [fc.hooked_connect]
    assert [h.func for h in fc.crashing.disconnect_hooks] == [
        fc.crashing_gone, fc.crashing_gone_badly, fc.crashing_gone_after]


def test_hook_signature_is_checked_when_it_is_registered():
    @consumer(perm=NO_PERM_REQUIRED, path="<slug:room>/", app_label="tests_hook_sigs")
    def sig_target(consumer, request, *, room):
        pass

    with pytest.raises(ImproperlyConfigured, match="does not accept the URL kwarg 'room'"):
        @sig_target.on_connect
        def no_room(consumer, request):
            pass

    with pytest.raises(ImproperlyConfigured, match="takes no browser arguments, but 'extra' has no default"):
        @sig_target.on_disconnect
        def extra_arg(consumer, request, extra, *, room):
            pass

    with pytest.raises(ImproperlyConfigured, match=r"must accept \(consumer, request, \.\.\.\)"):
        sig_target.on_connect(lambda consumer: None)

    @sig_target.on_connect
    def with_default(consumer, request, extra=1, **url_kwargs):
        pass


# ---- one-way consumers (receive=False) ----------------------------------------------------------------------
async def test_one_way_consumer_sends_initial_state_and_group_frames_and_refuses_calls_with_an_error_frame(caplog):
    from hypergen_ws import agroup_send

    a = await open_socket("/ws/tests/ticker/")
    assert await frame(a) == {"type": "commands", "commands": [["ticker.state", "open"]]}
    await a.send_to(text_data=json.dumps({"args": [], "id": 5}))
    error = await frame(a)
    assert error == {"type": "error", "code": "bad_request", "id": 5,
                     "message": "tests.ticker only sends; it does not take calls from the browser."}
    await a.send_to(text_data="not even json")
    assert (await frame(a))["code"] == "bad_request"
    # The socket stays open and subscribed: a misbehaving page does not lose its feed (and does not reconnect).
    await agroup_send(fc.ticker.group_name(), {"tick": 1})
    assert await frame(a) == {"type": "message", "data": {"tick": 1}}
    await a.disconnect()
