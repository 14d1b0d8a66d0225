"""End-to-end tests of generated consumers through Channels' WebsocketCommunicator."""
from __future__ import annotations

import asyncio
import logging

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import Permission, User

from hypergen_ws.core.protocol import CLOSE_NOT_AUTHENTICATED, CLOSE_PERMISSION_DENIED, CLOSE_TOO_BIG
from tests import sample_consumers as sc
from tests.wsutil import call, connect, receive

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def make_user(name: str, *perms: str) -> User:
    user = User.objects.create_user(name, password=name)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return User.objects.get(pk=user.pk)


async def test_two_clients_in_one_group_see_each_other_and_other_group_sees_nothing():
    a = await connect("/ws/tests/echo/lobby/")
    b = await connect("/ws/tests/echo/lobby/")
    other = await connect("/ws/tests/echo/vip/")
    await call(a, "<hi>", id=1)
    expected = {"type": "commands", "commands": [["hypergen.append", "messages", "<li>&lt;hi&gt;</li>"]]}
    assert await receive(a) == expected
    assert await receive(a) == {"type": "reply", "id": 1}
    assert await receive(b) == expected
    assert await other.receive_nothing(0.2)
    for c in (a, b, other):
        await c.disconnect()


async def test_async_function_with_default_argument_and_url_kwarg():
    a = await connect("/ws/tests/aecho/r1/")
    await call(a, "x", 2)
    frame = await receive(a)
    assert frame["commands"] == [["hypergen.append", "messages", "r1:x"]] * 2
    await call(a, "y")
    assert (await receive(a))["commands"] == [["hypergen.append", "messages", "r1:y"]]
    await a.disconnect()


async def test_url_kwarg_bound_by_name_wherever_it_stands():
    a = await connect("/ws/tests/positional_kwarg/lobby/")
    await call(a, "hello")
    assert (await receive(a))["commands"] == [["pos", "lobby", "hello"]]
    await a.disconnect()


async def test_re_path_consumer_gets_named_groups():
    a = await connect("/ws/tests/archive/2024/news/")
    await call(a)
    assert (await receive(a))["commands"] == [["archive", "2024", "news"]]
    await a.disconnect()


async def test_anonymous_user_is_closed_with_4401_and_never_gets_group_messages():
    comm = await connect("/ws/tests/guarded/")
    assert await comm.receive_output(1) == {"type": "websocket.close", "code": CLOSE_NOT_AUTHENTICATED}
    await sc.guarded.__wrapped__ if False else None  # the function object stays importable
    # Nobody joined: a publish to the group reaches no one and raises nothing.
    from hypergen_ws import aconsumer_command
    await aconsumer_command(sc.guarded.group_name(), [["leak"]])
    assert await comm.receive_nothing(0.1)


async def test_user_without_permission_is_closed_with_4403():
    eve = await make_user("t_eve")
    comm = await connect("/ws/tests/guarded/", eve)
    assert await comm.receive_output(1) == {"type": "websocket.close", "code": CLOSE_PERMISSION_DENIED}


def warnings_of(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "hypergen_ws" and r.levelno == logging.WARNING and text in r.getMessage()]


async def test_refused_sockets_are_logged_at_warning_with_consumer_reason_and_user(caplog):
    eve = await make_user("t_eve_logged")
    with caplog.at_level(logging.WARNING, logger="hypergen_ws"):
        anonymous = await connect("/ws/tests/guarded/")
        assert (await anonymous.receive_output(1))["code"] == CLOSE_NOT_AUTHENTICATED
        refused = await connect("/ws/tests/guarded/", eve)
        assert (await refused.receive_output(1))["code"] == CLOSE_PERMISSION_DENIED
    [not_logged_in] = warnings_of(caplog, "close 4401")
    assert not_logged_in.startswith("Refused a websocket to tests.guarded (close 4401, not logged in) for an "
                                    "anonymous user: it requires auth.view_user.")
    assert "AuthMiddlewareStack" in not_logged_in
    [denied] = warnings_of(caplog, "close 4403")
    assert denied == (f"Refused a websocket to tests.guarded (close 4403, permission denied) for user "
                      f"'t_eve_logged' (id {eve.pk}): it requires auth.view_user.")


async def test_refused_calls_and_bad_frames_are_logged_at_warning_with_the_user(caplog):
    ann = await make_user("t_ann_logged", "auth.view_user")
    comm = await connect("/ws/tests/guarded/", ann)
    await database_sync_to_async(ann.user_permissions.clear)()
    with caplog.at_level(logging.WARNING, logger="hypergen_ws"):
        await call(comm, "hi", id=1)
        assert (await receive(comm))["code"] == "permission_denied"
    assert warnings_of(caplog, "Refused a call") == [
        f"Refused a call to tests.guarded (permission denied) for user 't_ann_logged' (id {ann.pk}): it requires "
        "auth.view_user."]
    await comm.disconnect()
    other = await connect("/ws/tests/echo/lobby/", ann)
    with caplog.at_level(logging.WARNING, logger="hypergen_ws"):
        await other.send_to(text_data="not json")
        assert (await receive(other))["code"] == "bad_request"
    [bad] = warnings_of(caplog, "Bad frame")
    assert bad.startswith(f"Bad frame from user 't_ann_logged' (id {ann.pk}) to tests.echo: ")
    await other.disconnect()


async def test_permission_is_checked_again_on_every_message():
    ann = await make_user("t_ann", "auth.view_user")
    a = await connect("/ws/tests/guarded/", ann)
    listener = await connect("/ws/tests/guarded/", await make_user("t_bob", "auth.view_user"))
    await call(a, "first", id=1)
    assert (await receive(a))["commands"] == [["said", "t_ann", "first"]]
    assert await receive(a) == {"type": "reply", "id": 1}
    assert (await receive(listener))["commands"] == [["said", "t_ann", "first"]]
    await database_sync_to_async(ann.user_permissions.clear)()
    await call(a, "second", id=2)
    error = await receive(a)
    assert error["type"] == "error" and error["code"] == "permission_denied" and error["id"] == 2
    assert await listener.receive_nothing(0.2), "a denied call must not reach the group"
    await a.disconnect()
    await listener.disconnect()


async def test_any_perm_allows_one_of_several():
    user = await make_user("adder", "auth.add_user")
    comm = await connect("/ws/tests/guarded_any/", user)
    await call(comm)
    assert (await receive(comm))["commands"] == [["ok"]]
    await comm.disconnect()


async def test_callable_permission_gets_url_kwargs():
    owner = await make_user("olga")
    ok = await connect("/ws/tests/private/olga/", owner)
    await call(ok)
    assert (await receive(ok))["commands"] == [["private", "olga"]]
    denied = await connect("/ws/tests/private/someone/", owner)
    assert (await denied.receive_output(1))["code"] == CLOSE_PERMISSION_DENIED
    anon = await connect("/ws/tests/private/olga/")
    assert (await anon.receive_output(1))["code"] == CLOSE_NOT_AUTHENTICATED
    await ok.disconnect()


async def test_async_callable_permission():
    even = await connect("/ws/tests/even_only/2/")
    await call(even)
    assert (await receive(even))["commands"] == [["even", 2]]
    odd = await connect("/ws/tests/even_only/3/")
    assert (await odd.receive_output(1))["code"] == CLOSE_NOT_AUTHENTICATED
    await even.disconnect()


async def test_returned_string_morphs_target_id_for_the_group():
    a = await connect("/ws/tests/counter/")
    b = await connect("/ws/tests/counter/")
    await call(a, 5)
    expected = {"type": "commands", "commands": [["hypergen.morph", "counter", "<b>5</b>"]]}
    assert await receive(a) == expected
    assert await receive(b) == expected
    await a.disconnect()
    await b.disconnect()


async def test_send_to_caller_and_state_on_the_consumer_instance():
    a = await connect("/ws/tests/whisper/")
    b = await connect("/ws/tests/whisper/")
    await call(a, "psst")
    await call(a, "again")
    assert (await receive(a))["commands"] == [["whisper", "psst", 1]]
    assert (await receive(a))["commands"] == [["whisper", "again", 2]]
    assert await b.receive_nothing(0.2)
    await a.disconnect()
    await b.disconnect()


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
async def test_bad_input_gets_an_error_frame_and_the_connection_goes_on(frame, fragment, caplog):
    a = await connect("/ws/tests/echo/lobby/")
    b = await connect("/ws/tests/echo/lobby/")
    with caplog.at_level(logging.WARNING, logger="hypergen_ws"):
        await a.send_to(text_data=frame)
        error = await receive(a)
    assert error["type"] == "error" and error["code"] == "bad_request"
    assert fragment in error["message"]
    assert any("Bad frame" in r.getMessage() for r in caplog.records)
    assert await b.receive_nothing(0.1)
    await call(a, "still alive")
    assert (await receive(a))["commands"][0][2] == "<li>still alive</li>"
    assert (await receive(b))["commands"][0][2] == "<li>still alive</li>"
    await a.disconnect()
    await b.disconnect()


async def test_error_frames_carry_the_call_id():
    a = await connect("/ws/tests/echo/lobby/")
    await a.send_to(text_data='{"args": [], "id": 9}')
    error = await receive(a)
    assert error["id"] == 9 and error["code"] == "bad_request"
    await a.disconnect()


async def test_binary_frame_is_refused():
    a = await connect("/ws/tests/echo/lobby/")
    await a.send_to(bytes_data=b"\x00\x01")
    assert (await receive(a))["code"] == "bad_request"
    await a.disconnect()


async def test_frame_over_the_size_limit_closes_with_1009(settings):
    settings.HYPERGEN_WS = {"MAX_MESSAGE_SIZE": 1000}
    a = await connect("/ws/tests/echo/lobby/")
    b = await connect("/ws/tests/echo/lobby/")
    await call(a, "x" * 2000)
    assert await a.receive_output(1) == {"type": "websocket.close", "code": CLOSE_TOO_BIG}
    assert await b.receive_nothing(0.1)
    await call(b, "fine")
    assert (await receive(b))["type"] == "commands"
    await b.disconnect()


async def test_exception_in_function_is_logged_and_client_gets_server_error(caplog, settings):
    settings.DEBUG = False
    a = await connect("/ws/tests/boom/")
    with caplog.at_level(logging.ERROR, logger="hypergen_ws"):
        await call(a, id=3)
        error = await receive(a)
    assert error == {"type": "error", "code": "server_error", "message": "Internal server error.", "id": 3}
    record = next(r for r in caplog.records if "Error in consumer tests.boom" in r.getMessage())
    assert record.exc_info and record.exc_info[0] is ZeroDivisionError
    await call(a, id=4)
    assert (await receive(a))["code"] == "server_error"
    await a.disconnect()


async def test_exception_details_only_with_debug(settings):
    settings.DEBUG = True
    a = await connect("/ws/tests/boom/")
    await call(a)
    assert "ZeroDivisionError: division by zero in boom" in (await receive(a))["message"]
    await a.disconnect()


async def test_permission_denied_raised_by_function():
    a = await connect("/ws/tests/refuse/")
    await call(a, id=1)
    assert await receive(a) == {"type": "error", "code": "permission_denied", "message": "Only on Tuesdays.", "id": 1}
    await a.disconnect()


async def test_listen_only_consumer_refuses_calls():
    a = await connect("/ws/tests/listen_only/")
    await call(a)
    error = await receive(a)
    assert error["code"] == "bad_request" and "only sends" in error["message"]
    await a.disconnect()


async def test_plain_layer_group_send_reaches_declared_handler_of_every_member():
    a = await connect("/ws/tests/with_handlers/")
    b = await connect("/ws/tests/with_handlers/")
    layer = get_channel_layer()
    await layer.group_send(sc.with_handlers.group_name(), {"type": "chat.note", "text": "hi"})
    assert await receive(a) == {"type": "note", "text": "hi"}
    assert await receive(b) == {"type": "note", "text": "hi"}
    await a.disconnect()
    await b.disconnect()


@pytest.mark.parametrize("kind", ["websocket.disconnect", "websocket.receive", "send", "close", "dispatch",
                                  "hypergen_ws.layer_event", "no.handler"])
async def test_layer_message_types_never_pick_undeclared_handlers(kind, caplog):
    a = await connect("/ws/tests/with_handlers/")
    layer = get_channel_layer()
    with caplog.at_level(logging.WARNING, logger="hypergen_ws"):
        await layer.group_send(sc.with_handlers.group_name(), {"type": kind, "text": '{"args": []}', "code": 1000})
        await layer.send(a.instance.channel_name if hasattr(a, "instance") else "x", {"type": kind})
        assert await a.receive_nothing(0.2)
    assert any("Ignored channel-layer message" in r.getMessage() for r in caplog.records)
    await layer.group_send(sc.with_handlers.group_name(), {"type": "chat.note", "text": "still here"})
    assert (await receive(a))["text"] == "still here"
    await a.disconnect()


async def test_custom_group_name_and_runtime_join():
    a = await connect("/ws/tests/custom_group/", query="team=red")
    b = await connect("/ws/tests/custom_group/", query="team=red")
    await call(a, "news")
    assert (await receive(a))["commands"] == [["joined", "news"]]
    assert (await receive(b))["commands"] == [["joined", "news"]]
    from hypergen_ws import agroup_send
    await agroup_send("topic.news", {"n": 1})
    assert await receive(a) == {"type": "message", "data": {"n": 1}}
    assert await b.receive_nothing(0.1)
    await agroup_send("custom.team-red", [1, 2])
    assert await receive(b) == {"type": "message", "data": [1, 2]}
    await a.disconnect()
    await b.disconnect()


async def test_disconnect_leaves_the_group():
    from hypergen_ws.delivery.hub import get_hub

    a = await connect("/ws/tests/echo/gone/")
    group = sc.echo.group_name(room="gone")
    assert len(get_hub().members[group]) == 1
    await a.disconnect()
    await asyncio.sleep(0.05)
    assert group not in get_hub().members


async def test_slow_client_is_closed_without_blocking_others(settings):
    settings.HYPERGEN_WS = {"SEND_QUEUE_LIMIT": 5}
    from hypergen_ws import agroup_send
    from hypergen_ws.delivery.hub import get_hub

    group = sc.echo.group_name(room="slow")
    fast = await connect("/ws/tests/echo/slow/")
    first = set(get_hub().members[group])
    slow = await connect("/ws/tests/echo/slow/")
    (victim,) = set(get_hub().members[group]) - first
    blocked = asyncio.Event()

    async def stuck_send(message):  # this socket stops reading: its writer never finishes
        await blocked.wait()

    victim.outbox._send = stuck_send
    await agroup_send(group, 0)
    await asyncio.sleep(0.05)  # the victim's writer is now stuck in a send
    for i in range(1, 20):
        await agroup_send(group, i)
    got = [(await receive(fast))["data"] for _ in range(20)]
    assert got == list(range(20))
    assert victim.outbox.overflowed
    assert len(victim.outbox._frames) == 0, "an overflowing outbox must not keep growing"
    assert await slow.receive_output(1) == {"type": "websocket.close", "code": 1013}
    await fast.disconnect()


async def test_logout_elsewhere_takes_effect_on_the_next_call():
    from importlib import import_module

    from django.conf import settings as django_settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    user = await make_user("t_sam", "auth.view_user")
    engine = import_module(django_settings.SESSION_ENGINE)

    @database_sync_to_async
    def login_session():
        store = engine.SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.save()
        return store

    store = await login_session()
    comm = await connect("/ws/tests/guarded/", user, session=store)
    await call(comm, "one")
    assert (await receive(comm))["commands"] == [["said", "t_sam", "one"]]
    await database_sync_to_async(engine.SessionStore(session_key=store.session_key).delete)()  # logout
    await call(comm, "two", id=2)
    assert (await receive(comm))["code"] == "permission_denied"
    await comm.disconnect()


async def test_a_subclass_s_channel_layer_alias_chooses_the_layer_of_its_own_channel(settings):
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator
    from django.contrib.auth.models import AnonymousUser

    from hypergen_ws import NO_PERM_REQUIRED, consumer
    from hypergen_ws.consumers import HypergenConsumer
    from hypergen_ws.delivery.hub import get_hub

    memory = {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    settings.CHANNEL_LAYERS = {"default": memory, "other": memory}

    class OnOtherLayer(HypergenConsumer):
        channel_layer_alias = "other"

    @consumer(perm=NO_PERM_REQUIRED, app_label="tests", consumer_class_base=OnOtherLayer)
    def on_other_layer(consumer, request):
        pass

    comm = WebsocketCommunicator(URLRouter([on_other_layer.urlpattern()]), on_other_layer.reverse())
    comm.scope["user"] = AnonymousUser()
    assert (await comm.connect())[0]
    (instance,) = get_hub().members[on_other_layer.group_name()]
    assert instance.channel_layer is get_channel_layer("other") is not get_channel_layer()
    await get_channel_layer("other").send(instance.channel_name, {"type": "hypergen_ws.stop"})
    assert await comm.receive_nothing(0.2), "a reserved type from outside reaches no handler and stops nothing"
    await comm.disconnect()


async def test_an_expiry_close_task_is_referenced_until_it_is_done(settings):
    from hypergen_ws.core.protocol import CLOSE_EXPIRED
    from hypergen_ws.delivery.hub import get_hub
    from hypergen_ws.features import expiry
    from tests import recovery_consumers as rc
    from tests.recutil import frame, open_ws

    comm = await open_ws("/ws/tests/rec_feed/keep/")
    assert (await frame(comm))["type"] == "sync"
    (instance,) = get_hub().members[rc.rec_feed.group_name(room="keep")]
    expiry.expire(instance)
    assert len(expiry._closing) == 1, "the task is kept in a set: not garbage-collected mid-way"
    assert await comm.receive_output(3) == {"type": "websocket.close", "code": CLOSE_EXPIRED}
    await asyncio.sleep(0)  # done callbacks run in the next step of the loop
    assert not expiry._closing, "a done task is dropped again"
    await comm.disconnect()


async def test_a_function_that_returns_nan_gets_a_server_error_frame_and_the_socket_stays_open():
    a = await connect("/ws/tests/nan_result/")
    await call(a, id=1)
    error = await receive(a)
    assert error["type"] == "error" and error["id"] == 1 and error["code"] == "server_error"
    await call(a, id=2)
    assert (await receive(a))["id"] == 2, "still open"
    await a.disconnect()


@pytest.mark.parametrize("text", ['{"args": [NaN]}', '{"args": [Infinity]}', '{"args": [1e999]}',
                                  '{"args": [-Infinity], "id": 3}'])
async def test_json_that_is_not_standard_is_a_bad_request(text):
    a = await connect("/ws/tests/echo/nan/")
    await a.send_to(text_data=text)
    error = await receive(a)
    assert error["type"] == "error" and error["code"] == "bad_request", error
    assert "standard JSON" in error["message"] or "overflows" in error["message"], error
    await a.disconnect()
