"""``@<consumer>.on_connect`` / ``.on_disconnect`` hooks (hypergen_ws.features.hooks)."""
from __future__ import annotations

import asyncio
import logging
from functools import partial

import pytest
from channels.layers import get_channel_layer
from django.core.exceptions import ImproperlyConfigured

from hypergen_ws import NO_PERM_REQUIRED, consumer
from hypergen_ws.core.protocol import CLOSE_NOT_AUTHENTICATED, CLOSE_PERMISSION_DENIED
from hypergen_ws.testing import ConsumerCommunicator
from tests import feature_consumers as fc
from tests.feature_consumers import EVENTS
from tests.recutil import next_close

pytestmark = pytest.mark.django_db(transaction=True)

ws = partial(ConsumerCommunicator, application=fc.application)


@pytest.fixture(autouse=True)
def _clear_events():
    EVENTS.clear()
    yield
    EVENTS.clear()


async def wait_for(predicate, timeout: float = 2) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out; events: {EVENTS}")


async def test_on_connect_commands_go_to_the_new_client_only():
    async with ws(fc.hooked, room="lobby") as a:
        assert await a.receive() == {"type": "commands", "commands": [["state", "lobby", "guest-1"]]}
        async with ws(fc.hooked, room="lobby") as b:
            assert await b.receive() == {"type": "commands", "commands": [["state", "lobby", "guest-2"]]}
            await a.assert_nothing()  # another client's initial state must not reach a
            await a.send({"args": ["hi"]})
            assert (await a.receive())["commands"] == [["said", "lobby", "hi"]]
            assert (await b.receive())["commands"] == [["said", "lobby", "hi"]]


async def test_initial_state_comes_before_group_frames_published_meanwhile():
    async with ws(fc.ordered) as listener:
        assert await listener.receive() == {"type": "commands", "commands": [["state", "initial"]]}
        assert (await listener.receive())["type"] == "message"  # its own on_connect published once
        async with ws(fc.ordered) as newcomer:
            assert await newcomer.receive() == {"type": "commands", "commands": [["state", "initial"]]}
            assert await newcomer.receive() == {"type": "message", "data": "published during on_connect"}
            assert await listener.receive() == {"type": "message", "data": "published during on_connect"}


async def test_on_disconnect_runs_after_leaving_and_its_commands_reach_the_group():
    async with ws(fc.hooked, room="r2") as a, ws(fc.hooked, room="r2") as b:
        await a.receive()
        await b.receive()
        await a.disconnect(code=1001)
        assert await b.receive() == {"type": "commands", "commands": [["left", "r2", "guest-1"]]}
        assert EVENTS[-1] == ("disconnect", "hooked", "r2", 1001)
        await b.disconnect()
    await wait_for(lambda: len(EVENTS) == 4)
    assert [e[0] for e in EVENTS] == ["connect", "connect", "disconnect", "disconnect"]


async def test_on_disconnect_runs_after_an_exception_in_the_consumer_function(caplog):
    async with ws(fc.hooked, room="r3") as a:
        await a.receive()
        with caplog.at_level(logging.ERROR, logger="hypergen_ws"):
            assert (await a.call("boom")).error["code"] == "server_error"
    await wait_for(lambda: EVENTS[-1][0] == "disconnect")
    assert EVENTS[-1][:3] == ("disconnect", "hooked", "r3")


async def test_on_disconnect_runs_when_the_client_vanishes():
    async with ws(fc.hooked, room="r4") as a:
        await a.receive()
        await a.disconnect(1006)  # no close handshake: the TCP link died
    assert EVENTS[-1] == ("disconnect", "hooked", "r4", 1006)


async def test_on_disconnect_runs_when_the_server_cancels_the_consumer():
    async with ws(fc.hooked, room="r5") as a:
        await a.receive()
        a.comm.future.cancel()  # below the protocol: the server cancels the consumer's task
        with pytest.raises(asyncio.CancelledError):
            await a.comm.future
    assert EVENTS[-1] == ("disconnect", "hooked", "r5", None)


async def test_on_disconnect_runs_when_an_exception_escapes_the_consumer_and_hook_errors_are_logged(caplog):
    with caplog.at_level(logging.ERROR, logger="hypergen_ws"):
        with pytest.raises(RuntimeError, match="a layer handler crashed"):
            async with ws(fc.crashing) as a:
                await get_channel_layer().group_send(fc.crashing.group_name(), {"type": "crash.now"})
                await a.wait_closed()
    assert ("disconnect", "crashing", None, None) in EVENTS
    assert ("disconnect-after", "crashing", None, None) in EVENTS, "a failing hook must not stop the next one"
    record = next(r for r in caplog.records if "Error in on_disconnect" in r.getMessage())
    assert record.exc_info and record.exc_info[0] is KeyError


async def test_hooks_do_not_run_for_denied_sockets():
    async with ws(fc.hooked_guarded) as comm:
        assert comm.accepted
        assert await next_close(comm) == (CLOSE_NOT_AUTHENTICATED, "")
    assert EVENTS == []


async def test_failing_on_connect_sends_server_error_closes_1011_and_still_runs_on_disconnect(caplog, settings):
    settings.DEBUG = False
    with caplog.at_level(logging.ERROR, logger="hypergen_ws"):
        async with ws(fc.failing_connect, how="crash") as comm:
            assert await comm.receive() == {"type": "error", "code": "server_error",
                                            "message": "Internal server error."}
            assert await next_close(comm) == (1011, "")
            assert any("Error in on_connect" in r.getMessage() for r in caplog.records)
            await comm.disconnect(1011)
    assert EVENTS == [("disconnect", "failing_connect", "crash", 1011)]


async def test_permission_denied_in_on_connect_closes_with_4403(caplog):
    with caplog.at_level(logging.WARNING, logger="hypergen_ws"):
        async with ws(fc.failing_connect, how="denied") as comm:
            error = await comm.receive()
            assert await next_close(comm) == (CLOSE_PERMISSION_DENIED, "")
    assert error == {"type": "error", "code": "permission_denied", "message": "Room is full."}
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

    async with ws(fc.ticker) as a:
        assert await a.receive() == {"type": "commands", "commands": [["ticker.state", "open"]]}
        await a.send({"args": [], "id": 5})
        error = await a.receive()
        assert error == {"type": "error", "code": "bad_request", "id": 5,
                         "message": "tests.ticker only sends; it does not take calls from the browser."}
        await a.send("not even json")
        assert (await a.receive())["code"] == "bad_request"
        # The socket stays open and subscribed: a misbehaving page does not lose its feed (and does not reconnect).
        await agroup_send(fc.ticker.group_name(), {"tick": 1})
        assert await a.receive() == {"type": "message", "data": {"tick": 1}}
