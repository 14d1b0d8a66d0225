"""End-to-end tests of generated consumers, from the user's side: hypergen_ws.testing.ConsumerCommunicator."""
from __future__ import annotations

import asyncio
import logging
from typing import Any
from unittest.mock import ANY

import pytest
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from hypergen_ws import aconsumer_command, agroup_send
from hypergen_ws.core.protocol import CLOSE_NOT_AUTHENTICATED, CLOSE_PERMISSION_DENIED, CLOSE_TOO_BIG
from hypergen_ws.testing import ConsumerCommunicator
from hypergen_ws.testing.fixtures import CommunicatorFactory
from tests import sample_consumers as sc
from tests.users import make_user
from tests.wsutil import application

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hgws_application() -> Any:
    return application


async def test_two_clients_in_one_group_see_each_other_and_other_group_sees_nothing(
        hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.echo, room="lobby") as a, hgws_communicator(sc.echo, room="lobby") as b, \
            hgws_communicator(sc.echo, room="vip") as other:
        result = await a.call("<hi>")
        expected = [["hypergen.append", "messages", "<li>&lt;hi&gt;</li>"]]
        assert result.frames == [{"type": "commands", "commands": expected}, {"type": "reply", "id": 1}]
        assert await b.receive() == {"type": "commands", "commands": expected}
        await other.assert_nothing(0.2)


async def test_async_function_with_default_argument_and_url_kwarg(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.aecho, room="r1") as a:
        assert (await a.call("x", 2)).frames[0]["commands"] == [["hypergen.append", "messages", "r1:x"]] * 2
        assert (await a.call("y")).commands == [["hypergen.append", "messages", "r1:y"]]


async def test_url_kwarg_bound_by_name_wherever_it_stands(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.positional_kwarg, room="lobby") as a:
        assert (await a.call("hello")).commands == [["pos", "lobby", "hello"]]


async def test_re_path_consumer_gets_named_groups(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.archive, year="2024", slug="news") as a:
        assert a.path == "/ws/tests/archive/2024/news/"
        assert (await a.call()).commands == [["archive", "2024", "news"]]


async def test_anonymous_user_is_closed_with_4401_and_never_gets_group_messages(
        hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.guarded) as comm:
        assert comm.close_code == CLOSE_NOT_AUTHENTICATED
        # Nobody joined: a publish to the group reaches no one and raises nothing.
        await aconsumer_command(sc.guarded.group_name(), [["leak"]])
        await comm.assert_nothing()


async def test_user_without_permission_is_closed_with_4403(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.guarded, user=await make_user("t_eve")) as comm:
        assert comm.close_code == CLOSE_PERMISSION_DENIED


def warnings_of(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "hypergen_ws" and r.levelno == logging.WARNING and text in r.getMessage()]


async def test_refused_sockets_are_logged_at_warning_with_consumer_reason_and_user(
        hgws_communicator: CommunicatorFactory, caplog: pytest.LogCaptureFixture) -> None:
    eve = await make_user("t_eve_logged")
    with caplog.at_level(logging.WARNING, logger="hypergen_ws"):
        async with hgws_communicator(sc.guarded) as anonymous:
            assert anonymous.close_code == CLOSE_NOT_AUTHENTICATED
        async with hgws_communicator(sc.guarded, user=eve) as refused:
            assert refused.close_code == CLOSE_PERMISSION_DENIED
    [not_logged_in] = warnings_of(caplog, "close 4401")
    assert not_logged_in.startswith("Refused a websocket to tests.guarded (close 4401, not logged in) for an "
                                    "anonymous user: it requires auth.view_user.")
    assert "AuthMiddlewareStack" in not_logged_in
    [denied] = warnings_of(caplog, "close 4403")
    assert denied == (f"Refused a websocket to tests.guarded (close 4403, permission denied) for user "
                      f"'t_eve_logged' (id {eve.pk}): it requires auth.view_user.")


async def test_refused_calls_and_bad_frames_are_logged_at_warning_with_the_user(
        hgws_communicator: CommunicatorFactory, caplog: pytest.LogCaptureFixture) -> None:
    ann = await make_user("t_ann_logged", "auth.view_user")
    async with hgws_communicator(sc.guarded, user=ann) as comm:
        await database_sync_to_async(ann.user_permissions.clear)()
        with caplog.at_level(logging.WARNING, logger="hypergen_ws"):
            error = (await comm.call("hi")).error
        assert error is not None and error["code"] == "permission_denied"
    assert warnings_of(caplog, "Refused a call") == [
        f"Refused a call to tests.guarded (permission denied) for user 't_ann_logged' (id {ann.pk}): it requires "
        "auth.view_user."]
    async with hgws_communicator(sc.echo, user=ann, room="lobby") as other:
        with caplog.at_level(logging.WARNING, logger="hypergen_ws"):
            await other.send("not json")
            assert (await other.receive())["code"] == "bad_request"
    [bad] = warnings_of(caplog, "Bad frame")
    assert bad.startswith(f"Bad frame from user 't_ann_logged' (id {ann.pk}) to tests.echo: ")


async def test_permission_is_checked_again_on_every_message(hgws_communicator: CommunicatorFactory) -> None:
    ann = await make_user("t_ann", "auth.view_user")
    async with hgws_communicator(sc.guarded, user=ann) as a, \
            hgws_communicator(sc.guarded, user=await make_user("t_bob", "auth.view_user")) as listener:
        assert (await a.call("first")).commands == [["said", "t_ann", "first"]]
        assert await listener.receive_commands() == [["said", "t_ann", "first"]]
        await database_sync_to_async(ann.user_permissions.clear)()
        result = await a.call("second")
        assert result.error is not None and result.error["code"] == "permission_denied"
        assert result.frames[-1]["id"] == 2
        await listener.assert_nothing(0.2)  # a denied call must not reach the group


async def test_any_perm_allows_one_of_several(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.guarded_any, user=await make_user("adder", "auth.add_user")) as comm:
        assert (await comm.call()).commands == [["ok"]]


async def test_callable_permission_gets_url_kwargs(hgws_communicator: CommunicatorFactory) -> None:
    owner = await make_user("olga")
    async with hgws_communicator(sc.private, user=owner, owner="olga") as ok:
        assert (await ok.call()).commands == [["private", "olga"]]
    async with hgws_communicator(sc.private, user=owner, owner="someone") as denied:
        assert denied.close_code == CLOSE_PERMISSION_DENIED
    async with hgws_communicator(sc.private, owner="olga") as anon:
        assert anon.close_code == CLOSE_NOT_AUTHENTICATED


async def test_async_callable_permission(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.even_only, n=2) as even:
        assert (await even.call()).commands == [["even", 2]]
    async with hgws_communicator(sc.even_only, n=3) as odd:
        assert odd.close_code == CLOSE_NOT_AUTHENTICATED


async def test_returned_string_morphs_target_id_for_the_group(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.counter) as a, hgws_communicator(sc.counter) as b:
        expected = [["hypergen.morph", "counter", "<b>5</b>"]]
        assert (await a.call(5)).commands == expected
        assert await b.receive_commands() == expected


async def test_send_to_caller_and_state_on_the_consumer_instance(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.whisper) as a, hgws_communicator(sc.whisper) as b:
        assert (await a.call("psst")).commands == [["whisper", "psst", 1]]
        assert (await a.call("again")).commands == [["whisper", "again", 2]]
        await b.assert_nothing(0.2)


@pytest.mark.parametrize("frame, fragment", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"args": "x"}', '"args" must be a list'),
    ('{"args": [], "meta": 3}', '"meta" must be an object'),
    ('{"args": [], "evil": 1}', "Unknown field"),
    ('{"args": [], "id": true}', '"id" must be'),
    ('{"args": []}', "takes 1 argument (text) from the browser, got 0"),
    ('{"args": [1, 2]}', "takes 1 argument (text) from the browser, got 2"),
    ('{"args": [5]}', "must be str, got int"),
    ('{"args": [' + "[" * 40 + "]" * 40 + "]}", "deeper than"),
    ("[" * 100000 + "]" * 100000, "deeper than"),
])
async def test_bad_input_gets_an_error_frame_and_the_connection_goes_on(
        hgws_communicator: CommunicatorFactory, frame: str, fragment: str, caplog: pytest.LogCaptureFixture) -> None:
    async with hgws_communicator(sc.echo, room="lobby") as a, hgws_communicator(sc.echo, room="lobby") as b:
        with caplog.at_level(logging.WARNING, logger="hypergen_ws"):
            await a.send(frame)
            error = await a.receive()
        assert error["type"] == "error" and error["code"] == "bad_request"
        assert fragment in error["message"]
        assert any("Bad frame" in r.getMessage() for r in caplog.records)
        await b.assert_nothing()
        assert (await a.call("still alive")).commands[0][2] == "<li>still alive</li>"
        assert (await b.receive_commands())[0][2] == "<li>still alive</li>"


async def test_error_frames_carry_the_call_id(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.echo, room="lobby") as a:
        result = await a.call()
        assert result.error is not None and result.error["code"] == "bad_request"
        assert result.frames == [{"type": "error", "id": 1, "code": "bad_request", "message": ANY}]


async def test_binary_frame_is_refused(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.echo, room="lobby") as a:
        await a.send(b"\x00\x01")
        assert (await a.receive())["code"] == "bad_request"


async def test_frame_over_the_size_limit_closes_with_1009(
        hgws_communicator: CommunicatorFactory, settings: Any) -> None:
    settings.HYPERGEN_WS = {"MAX_MESSAGE_SIZE": 1000}
    async with hgws_communicator(sc.echo, room="lobby") as a, hgws_communicator(sc.echo, room="lobby") as b:
        await a.send({"args": ["x" * 2000]})
        assert await a.wait_closed() == CLOSE_TOO_BIG
        await b.assert_nothing()
        assert (await b.call("fine")).commands != []


async def test_exception_in_function_is_logged_and_client_gets_server_error(
        hgws_communicator: CommunicatorFactory, caplog: pytest.LogCaptureFixture, settings: Any) -> None:
    settings.DEBUG = False
    async with hgws_communicator(sc.boom) as a:
        with caplog.at_level(logging.ERROR, logger="hypergen_ws"):
            result = await a.call()
        assert result.error == {"code": "server_error", "message": "Internal server error."}
        record = next(r for r in caplog.records if "Error in consumer tests.boom" in r.getMessage())
        assert record.exc_info and record.exc_info[0] is ZeroDivisionError
        assert (await a.call()).error == result.error


async def test_exception_details_only_with_debug(hgws_communicator: CommunicatorFactory, settings: Any) -> None:
    settings.DEBUG = True
    async with hgws_communicator(sc.boom) as a:
        result = await a.call()
    assert result.error is not None and "ZeroDivisionError: division by zero in boom" in result.error["message"]


async def test_permission_denied_raised_by_function(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.refuse) as a:
        result = await a.call()
    assert result.frames == [{"type": "error", "code": "permission_denied", "message": "Only on Tuesdays.", "id": 1}]


async def test_listen_only_consumer_refuses_calls(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.listen_only) as a:
        error = (await a.call()).error
    assert error is not None and error["code"] == "bad_request" and "only sends" in error["message"]


async def test_plain_layer_group_send_reaches_declared_handler_of_every_member(
        hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.with_handlers) as a, hgws_communicator(sc.with_handlers) as b:
        await get_channel_layer().group_send(sc.with_handlers.group_name(), {"type": "chat.note", "text": "hi"})
        assert await a.receive() == {"type": "note", "text": "hi"}
        assert await b.receive() == {"type": "note", "text": "hi"}


@pytest.mark.parametrize("kind", ["websocket.disconnect", "websocket.receive", "send", "close", "dispatch",
                                  "hypergen_ws.layer_event", "no.handler"])
async def test_layer_message_types_never_pick_undeclared_handlers(
        hgws_communicator: CommunicatorFactory, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    layer = get_channel_layer()
    async with hgws_communicator(sc.with_handlers) as a:
        with caplog.at_level(logging.WARNING, logger="hypergen_ws"):
            await layer.group_send(sc.with_handlers.group_name(), {"type": kind, "text": '{"args": []}', "code": 1000})
            await a.assert_nothing(0.2)
        assert any("Ignored channel-layer message" in r.getMessage() for r in caplog.records)
        await layer.group_send(sc.with_handlers.group_name(), {"type": "chat.note", "text": "still here"})
        assert (await a.receive())["text"] == "still here"


async def test_custom_group_name_and_runtime_join(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.custom_group, query="team=red") as a, \
            hgws_communicator(sc.custom_group, query="team=red") as b:
        assert (await a.call("news")).commands == [["joined", "news"]]
        assert await b.receive_commands() == [["joined", "news"]]
        await agroup_send("topic.news", {"n": 1})
        assert await a.receive() == {"type": "message", "data": {"n": 1}}
        await b.assert_nothing()
        await agroup_send("custom.team-red", [1, 2])
        assert await b.receive_message() == [1, 2]


async def test_disconnect_leaves_the_group(hgws_communicator: CommunicatorFactory) -> None:
    from hypergen_ws.delivery.hub import get_hub

    group = sc.echo.group_name(room="gone")
    async with hgws_communicator(sc.echo, room="gone"):
        assert len(get_hub().members[group]) == 1
    assert group not in get_hub().members


async def test_slow_client_is_closed_without_blocking_others(hgws_communicator: CommunicatorFactory,
                                                             settings: Any) -> None:
    settings.HYPERGEN_WS = {"SEND_QUEUE_LIMIT": 5}
    from hypergen_ws.delivery.hub import get_hub

    group = sc.echo.group_name(room="slow")
    async with hgws_communicator(sc.echo, room="slow") as fast:
        first = set(get_hub().members[group])
        async with hgws_communicator(sc.echo, room="slow") as slow:
            (victim,) = set(get_hub().members[group]) - first
            blocked = asyncio.Event()

            async def stuck_send(message: dict[str, Any]) -> None:  # this socket stops reading
                await blocked.wait()

            victim.outbox._send = stuck_send
            await agroup_send(group, 0)
            await asyncio.sleep(0.05)  # the victim's writer is now stuck in a send
            for i in range(1, 20):
                await agroup_send(group, i)
            assert [await fast.receive_message() for _ in range(20)] == list(range(20))
            assert victim.outbox.overflowed
            assert len(victim.outbox._frames) == 0, "an overflowing outbox must not keep growing"
            assert await slow.wait_closed() == 1013


async def test_logout_elsewhere_takes_effect_on_the_next_call(settings: Any) -> None:
    """Through Channels' session middleware, as in a project: the socket carries the session cookie."""
    from importlib import import_module

    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    user = await make_user("t_sam", "auth.view_user")
    engine = import_module(settings.SESSION_ENGINE)

    @database_sync_to_async
    def login_session() -> Any:
        store = engine.SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.save()
        return store

    store = await login_session()
    cookie = f"{settings.SESSION_COOKIE_NAME}={store.session_key}"
    async with ConsumerCommunicator(sc.guarded, application=AuthMiddlewareStack(application),
                                    headers={"Cookie": cookie}) as comm:
        assert (await comm.call("one")).commands == [["said", "t_sam", "one"]]
        await database_sync_to_async(engine.SessionStore(session_key=store.session_key).delete)()  # logout
        error = (await comm.call("two")).error
        assert error is not None and error["code"] == "permission_denied"


async def test_a_subclass_s_channel_layer_alias_chooses_the_layer_of_its_own_channel(settings: Any) -> None:
    from channels.routing import URLRouter

    from hypergen_ws import NO_PERM_REQUIRED, consumer
    from hypergen_ws.consumers import HypergenConsumer
    from hypergen_ws.delivery.hub import get_hub

    memory = {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    settings.CHANNEL_LAYERS = {"default": memory, "other": memory}

    class OnOtherLayer(HypergenConsumer):
        channel_layer_alias = "other"

    @consumer(perm=NO_PERM_REQUIRED, app_label="tests", consumer_class_base=OnOtherLayer)
    def on_other_layer(consumer: Any, request: Any) -> None:
        pass

    async with ConsumerCommunicator(on_other_layer, application=URLRouter([on_other_layer.urlpattern()])) as comm:
        assert comm.connected
        (instance,) = get_hub().members[on_other_layer.group_name()]
        assert instance.channel_layer is get_channel_layer("other") is not get_channel_layer()
        await get_channel_layer("other").send(instance.channel_name, {"type": "hypergen_ws.stop"})
        await comm.assert_nothing(0.2)  # a reserved type from outside reaches no handler and stops nothing


async def test_an_expiry_close_task_is_referenced_until_it_is_done(hgws_communicator: CommunicatorFactory) -> None:
    from hypergen_ws.core.protocol import CLOSE_EXPIRED
    from hypergen_ws.delivery.hub import get_hub
    from hypergen_ws.features import expiry
    from tests import recovery_consumers as rc

    async with hgws_communicator(rc.rec_feed, application=rc.application, room="keep") as comm:
        assert (await comm.receive())["type"] == "sync"
        (instance,) = get_hub().members[rc.rec_feed.group_name(room="keep")]
        expiry.expire(instance)
        assert len(expiry._closing) == 1, "the task is kept in a set: not garbage-collected mid-way"
        assert await comm.wait_closed(3) == CLOSE_EXPIRED
        await asyncio.sleep(0)  # done callbacks run in the next step of the loop
        assert not expiry._closing, "a done task is dropped again"


async def test_a_function_that_returns_nan_gets_a_server_error_frame_and_the_socket_stays_open(
        hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.nan_result) as a:
        result = await a.call()
        assert result.error is not None and result.error["code"] == "server_error"
        assert result.frames[-1]["id"] == 1
        assert (await a.call()).frames[-1]["id"] == 2, "still open"


@pytest.mark.parametrize("text", ['{"args": [NaN]}', '{"args": [Infinity]}', '{"args": [1e999]}',
                                  '{"args": [-Infinity], "id": 3}'])
async def test_json_that_is_not_standard_is_a_bad_request(hgws_communicator: CommunicatorFactory, text: str) -> None:
    async with hgws_communicator(sc.echo, room="nan") as a:
        await a.send(text)
        error = await a.receive()
    assert error["type"] == "error" and error["code"] == "bad_request", error
    assert "standard JSON" in error["message"] or "overflows" in error["message"], error
