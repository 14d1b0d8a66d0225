"""hypergen_ws.testing.ConsumerCommunicator: connecting, calling, receiving, and the failures a test sees."""
from __future__ import annotations

import asyncio
from typing import Any
from unittest.mock import ANY

import pytest
from channels.auth import AuthMiddlewareStack
from channels.layers import get_channel_layer
from asgiref.sync import sync_to_async
from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, Scope
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import NoReverseMatch
from pytest_django import Settings

from hypergen_ws import aconsumer_command, agroup_send
from hypergen_ws.testing import CallResult, ConsumerCommunicator, SocketClosed
from hypergen_ws.testing.connection import DB_HELP
from hypergen_ws.testing.fixtures import CommunicatorFactory
from testproject.chat.consumers import send_message
from testproject.chat.models import Room
from testproject.notifications.consumers import listen
from tests import sample_consumers as sc
from tests.wsutil import application

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hgws_application() -> Any:  # an ASGI application
    return application


async def make_user(name: str, *perms: str) -> User:
    def make() -> User:
        user = User.objects.create_user(name, password=name)
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        return User.objects.get(pk=user.pk)

    return await sync_to_async(make)()


# ---- calls ------------------------------------------------------------------------------------------------


async def test_call_returns_the_commands_and_the_reply_and_the_group_gets_them_too(
        hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.echo, room="lobby") as ann, hgws_communicator(sc.echo, room="lobby") as ben:
        result = await ann.call("<hi>")
        assert isinstance(result, CallResult)
        assert result.commands == [["hypergen.append", "messages", "<li>&lt;hi&gt;</li>"]]
        assert result.reply == {"type": "reply", "id": 1}
        assert result.error is None
        assert result.frames == [{"type": "commands", "commands": result.commands}, result.reply]
        assert await ben.receive_commands() == result.commands
        assert (await ann.call("again")).reply == {"type": "reply", "id": 2}


async def test_call_sends_meta_and_arguments(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.meta_echo) as comm:
        result = await comm.call(1, "two", page=3, tags=["x"])
    assert result.commands == [["meta", [1, "two"], {"page": 3, "tags": ["x"]}]]


async def test_call_to_the_caller_only_reaches_nobody_else(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.whisper) as ann, hgws_communicator(sc.whisper) as ben:
        assert (await ann.call("psst")).commands == [["whisper", "psst", 1]]
        await ben.assert_nothing()


@pytest.mark.parametrize(("consumer", "error"), [
    (sc.boom, {"code": "server_error", "message": "Internal server error."}),
    (sc.refuse, {"code": "permission_denied", "message": "Only on Tuesdays."}),
    (sc.listen_only, {"code": "bad_request", "message": ANY}),
])
async def test_call_errors_come_back_as_the_result_error(
        hgws_communicator: CommunicatorFactory, settings: Settings, consumer: Any, error: dict[str, str]) -> None:
    settings.DEBUG = False
    async with hgws_communicator(consumer) as comm:
        result = await comm.call()
    assert result.error == error
    assert result.reply is None
    assert result.frames[-1]["type"] == "error"


async def test_call_on_a_socket_the_server_closes_raises_socket_closed(
        hgws_communicator: CommunicatorFactory, settings: Settings) -> None:
    settings.HYPERGEN_WS = {"MAX_MESSAGE_SIZE": 100}
    async with hgws_communicator(sc.echo, room="big") as comm:
        with pytest.raises(SocketClosed) as closed:
            await comm.call("x" * 200)
        assert closed.value.code == 1009
        assert str(closed.value) == ("tests.echo closed the socket with code 1009 (message too big) while the test "
                                     "waited for the reply to call 1 ('" + "x" * 200 + "',).")
        assert comm.close_code == 1009 and not comm.connected
        with pytest.raises(SocketClosed, match="the test sent a frame after the close"):
            await comm.send({"args": ["late"]})


# ---- receiving ----------------------------------------------------------------------------------------------


async def test_receive_message_and_receive_commands_skip_other_frames(hgws_communicator: CommunicatorFactory) -> None:
    group = sc.echo.group_name(room="mix")
    async with hgws_communicator(sc.echo, room="mix") as comm:
        await aconsumer_command(group, [["alert", 1]])
        await agroup_send(group, {"text": "hi"})
        assert await comm.receive_message() == {"text": "hi"}  # the commands frame before it is dropped
        await agroup_send(group, "data")
        await aconsumer_command(group, [["alert", 2]])
        assert await comm.receive_commands() == [["alert", 2]]
        await comm.assert_nothing()


async def test_receive_returns_every_frame_in_order(hgws_communicator: CommunicatorFactory) -> None:
    group = sc.echo.group_name(room="order")
    async with hgws_communicator(sc.echo, room="order") as comm:
        for number in range(3):
            await agroup_send(group, number)
        assert [await comm.receive() for _ in range(3)] == [{"type": "message", "data": n} for n in range(3)]


async def test_receive_fails_with_what_it_waited_for_when_nothing_comes(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.echo, room="quiet") as comm:
        with pytest.raises(AssertionError) as failure:
            await comm.receive(timeout=0.05)
    assert str(failure.value) == "tests.echo sent nothing within 0.05 s while the test waited for a frame."


async def test_receive_of_a_type_lists_the_frames_it_skipped_when_it_fails(
        hgws_communicator: CommunicatorFactory) -> None:
    group = sc.echo.group_name(room="skip")
    async with hgws_communicator(sc.echo, room="skip") as comm:
        await agroup_send(group, "not commands")
        with pytest.raises(AssertionError) as failure:
            await comm.receive_commands(timeout=0.05)
    assert str(failure.value) == (
        "tests.echo sent nothing within 0.05 s while the test waited for a 'commands' frame. Frames of other "
        "types that came meanwhile: [{'type': 'message', 'data': 'not commands'}]")


async def test_assert_nothing_fails_with_the_frame_that_came(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.echo, room="noisy") as comm:
        await comm.assert_nothing()
        await agroup_send(sc.echo.group_name(room="noisy"), {"n": 1})
        with pytest.raises(AssertionError) as failure:
            await comm.assert_nothing()
    assert str(failure.value) == "Expected nothing from tests.echo, but it sent {'type': 'message', 'data': {'n': 1}}."


async def test_assert_nothing_fails_when_the_server_closes(
        hgws_communicator: CommunicatorFactory, settings: Settings) -> None:
    settings.HYPERGEN_WS = {"MAX_MESSAGE_SIZE": 10}
    async with hgws_communicator(sc.echo, room="closing") as comm:
        await comm.send({"args": ["far too long for the limit"]})
        with pytest.raises(AssertionError) as failure:
            await comm.assert_nothing(timeout=5)
    assert str(failure.value) == "Expected nothing from tests.echo, but it closed the socket with code 1009."


async def test_wait_closed_returns_the_code_and_keeps_the_frames_before_it(
        hgws_communicator: CommunicatorFactory, settings: Settings) -> None:
    settings.HYPERGEN_WS = {"MAX_MESSAGE_SIZE": 100}
    async with hgws_communicator(sc.echo, room="wait") as comm:
        await comm.send("not json")
        await comm.send({"args": ["y" * 200]})
        assert await comm.wait_closed() == 1009
        assert (await comm.receive())["code"] == "bad_request"
        with pytest.raises(SocketClosed, match="code 1009"):
            await comm.receive()


async def test_receive_all_returns_every_frame_until_a_pause_then_nothing(
        hgws_communicator: CommunicatorFactory) -> None:
    group = sc.echo.group_name(room="all")
    async with hgws_communicator(sc.echo, room="all") as comm:
        assert await comm.receive_all() == []
        for number in range(3):
            await agroup_send(group, number)
        assert await comm.receive_all() == [{"type": "message", "data": n} for n in range(3)]
        assert await comm.receive_all(quiet=0.05) == []


async def test_receive_all_stops_at_the_close_and_returns_the_frames_kept_before_it(
        hgws_communicator: CommunicatorFactory, settings: Settings) -> None:
    settings.HYPERGEN_WS = {"MAX_MESSAGE_SIZE": 100}
    async with hgws_communicator(sc.echo, room="all-closed") as comm:
        await comm.send("not json")
        await comm.send({"args": ["y" * 200]})
        frames = await comm.receive_all(quiet=5)  # the close ends it, not the pause
        assert [f["code"] for f in frames] == ["bad_request"]
        assert comm.close_code == 1009
        assert await comm.receive_all() == []
    async with hgws_communicator(sc.echo, room="all-kept") as comm:
        await comm.send("not json")
        await comm.send({"args": ["y" * 200]})
        assert await comm.wait_closed() == 1009  # keeps the error frame for receive()
        assert [f["code"] for f in await comm.receive_all()] == ["bad_request"]


async def test_receive_all_fails_when_the_frames_never_pause(hgws_communicator: CommunicatorFactory) -> None:
    group = sc.echo.group_name(room="endless")
    stop = asyncio.Event()

    async def publish_forever() -> None:
        number = 0
        while not stop.is_set():
            await agroup_send(group, number)
            number += 1
            await asyncio.sleep(0.005)

    async with hgws_communicator(sc.echo, room="endless", timeout=0.3) as comm:
        publisher = asyncio.create_task(publish_forever())
        try:
            await comm.receive()  # the stream has started
            with pytest.raises(AssertionError) as failure:
                await comm.receive_all(quiet=0.2)
        finally:
            stop.set()
            await publisher
    assert str(failure.value).startswith(
        "tests.echo kept sending for 0.3 s without a pause of 0.2 s while the test waited for it to fall quiet; ")
    assert "the last {'type': 'message', 'data': " in str(failure.value)
    assert str(failure.value).endswith("Pass a shorter quiet=, or a longer timeout=.")


async def test_close_reason_holds_what_the_server_gave_with_the_close(
        hgws_communicator: CommunicatorFactory, settings: Settings) -> None:
    async with hgws_communicator(sc.with_handlers) as comm:
        assert comm.close_reason is None
        await get_channel_layer().group_send(sc.with_handlers.group_name(), {"type": "chat.bye", "reason": "Bye."})
        assert await comm.wait_closed() == 4000
        assert comm.close_reason == "Bye."
    settings.HYPERGEN_WS = {"MAX_MESSAGE_SIZE": 10}
    async with hgws_communicator(sc.echo, room="reason") as comm:
        await comm.send({"args": ["far too long for the limit"]})
        assert await comm.wait_closed() == 1009
        assert comm.close_reason == "", "a close without a reason"


@pytest.mark.parametrize("wait", ["receive", "wait_closed"])
async def test_an_exception_that_ends_the_consumer_is_raised_at_once_not_after_the_timeout(
        hgws_communicator: CommunicatorFactory, wait: str) -> None:
    # A timeout longer than pytest-timeout's: waiting it out would fail the test.
    with pytest.raises(RuntimeError, match="a layer handler crashed"):
        async with hgws_communicator(sc.with_handlers, timeout=3600) as comm:
            await get_channel_layer().group_send(sc.with_handlers.group_name(), {"type": "chat.crash"})
            await getattr(comm, wait)()


async def test_wait_closed_fails_when_the_socket_stays_open(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.echo, room="open") as comm:
        with pytest.raises(AssertionError) as failure:
            await comm.wait_closed(timeout=0.05)
    assert str(failure.value) == "tests.echo did not close the socket within 0.05 s."


async def test_send_takes_text_bytes_and_json(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.echo, room="raw") as comm:
        await comm.send(b"\x00\x01")
        assert (await comm.receive())["code"] == "bad_request"
        await comm.send('{"args": ["as text"], "id": "t"}')
        assert (await comm.receive())["commands"] == [["hypergen.append", "messages", "<li>as text</li>"]]
        assert await comm.receive() == {"type": "reply", "id": "t"}


# ---- connecting ---------------------------------------------------------------------------------------------


async def test_anonymous_user_is_accepted_then_closed_with_4401(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.guarded) as comm:
        assert comm.accepted and not comm.connected
        assert comm.close_code == 4401
        with pytest.raises(SocketClosed) as closed:
            await comm.receive()
    assert str(closed.value) == ("tests.guarded closed the socket with code 4401 (not authenticated: pass user=... "
                                 "or log in) while the test waited for a frame.")


async def test_user_goes_into_the_scope_and_the_permission_decides(hgws_communicator: CommunicatorFactory) -> None:
    ann = await make_user("ann", "auth.view_user")
    eve = await make_user("eve")
    async with hgws_communicator(sc.guarded, user=ann) as comm:
        assert comm.connected and comm.close_code is None
        assert (await comm.call("hi")).commands == [["said", "ann", "hi"]]
    async with hgws_communicator(sc.guarded, user=eve) as comm:
        assert comm.close_code == 4403 and not comm.connected


async def test_the_given_user_wins_over_the_auth_middleware_of_the_application() -> None:
    ann = await make_user("ann", "auth.view_user")
    stack = AuthMiddlewareStack(application)
    async with ConsumerCommunicator(sc.guarded, user=ann, application=stack) as comm:
        assert (await comm.call("hi")).commands == [["said", "ann", "hi"]]
    async with ConsumerCommunicator(sc.guarded, application=stack) as comm:  # no session: anonymous
        assert comm.close_code == 4401


async def test_a_label_names_the_consumer(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator("tests.echo", room="by-label") as comm:
        assert comm.consumer is sc.echo and comm.path == "/ws/tests/echo/by-label/"
        assert (await comm.call("x")).commands == [["hypergen.append", "messages", "<li>x</li>"]]


def test_unknown_labels_wrong_objects_and_wrong_kwargs_fail_at_once() -> None:
    with pytest.raises(LookupError, match="No consumer is labelled 'tests.nope'. Known consumers: .*tests.echo"):
        ConsumerCommunicator("tests.nope", application=application)
    with pytest.raises(TypeError, match="takes a @consumer function or its label like 'chat.send_message', not"):
        ConsumerCommunicator(sc.echo.func, application=application, room="x")  # type: ignore[arg-type]
    with pytest.raises(NoReverseMatch, match=r"reverse\(\) takes the URL kwargs \(room\).*'room' is missing"):
        ConsumerCommunicator(sc.echo, application=application)


async def test_query_is_added_to_the_url(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.custom_group, query={"team": "red"}) as red, \
            hgws_communicator(sc.custom_group, query="team=blue") as blue:
        await red.call("news")
        await agroup_send("custom.team-red", "for red")
        assert await red.receive_message() == "for red"
        await blue.assert_nothing()


async def test_connecting_twice_is_refused(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.echo, room="twice") as comm:
        with pytest.raises(RuntimeError, match="was connected already; make a new communicator"):
            await comm.connect()


# ---- the project's application ------------------------------------------------------------------------------


async def test_the_default_application_is_the_websocket_part_of_asgi_application() -> None:
    async with ConsumerCommunicator(listen) as comm:  # routing, session and auth middleware, origin check
        assert comm.connected
        await agroup_send(listen.group_name(), {"text": "deployed"})
        assert await comm.receive_message() == {"text": "deployed"}


@pytest.mark.parametrize("headers", [{"Origin": "https://elsewhere.example"},
                                     [(b"origin", b"https://elsewhere.example")]])
async def test_a_foreign_origin_is_refused_before_the_accept(headers: Any) -> None:
    async with ConsumerCommunicator(listen, headers=headers) as comm:
        assert not comm.accepted and not comm.connected
        assert comm.close_code == 1000


async def test_a_session_cookie_from_the_test_client_logs_the_socket_in() -> None:
    @sync_to_async
    def logged_in_client() -> Client:
        Room.objects.get_or_create(slug="lobby", defaults={"name": "Lobby"})
        user = User.objects.create_user("cookie-user")
        user.user_permissions.add(Permission.objects.get(content_type__app_label="chat", codename="can_chat"))
        client = Client()
        client.force_login(user)
        return client

    client = await logged_in_client()
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={client.session.session_key}"
    async with ConsumerCommunicator(send_message, headers={"Cookie": cookie}, room_name="lobby") as comm:
        assert comm.connected
        result = await comm.call("through the session")
    assert "cookie-user" in result.commands[0][2] and "through the session" in result.commands[0][2]


async def test_a_consumer_the_application_does_not_route_gets_an_error_that_says_what_to_pass() -> None:
    with pytest.raises(ImproperlyConfigured) as error:
        async with ConsumerCommunicator(sc.echo, room="x"):
            pass
    assert str(error.value) == (
        "The websocket application has no route for /ws/tests/echo/x/ (tests.echo). autoconsumers() routes the "
        "consumers of installed apps; for a consumer elsewhere pass application=URLRouter(autoconsumers(<its "
        "module>)).")


def test_a_project_without_asgi_application_gets_an_error_that_says_what_to_set(settings: Settings) -> None:
    del settings.ASGI_APPLICATION
    with pytest.raises(ImproperlyConfigured, match="Cannot find ASGI_APPLICATION setting. ConsumerCommunicator "
                                                   "connects through ASGI_APPLICATION: set it, or pass application="):
        ConsumerCommunicator(listen)


async def test_a_blocked_database_gets_an_error_that_says_how_to_allow_it() -> None:
    async def blocked(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        raise RuntimeError('Database access not allowed, use the "django_db" mark, or the "db" or '
                           '"transactional_db" fixtures to enable it.')

    comm = ConsumerCommunicator(listen, application=blocked)
    with pytest.raises(RuntimeError) as error:
        await comm.connect()
    assert str(error.value) == DB_HELP
    assert "@pytest.mark.django_db(transaction=True)" in DB_HELP
