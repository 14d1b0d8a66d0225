"""The demo project's consumers, tested the way a project tests its own: with hypergen_ws.testing.

docs/testing.rst shows these tests. They connect through the project's ``ASGI_APPLICATION`` (routing, session
and auth middleware, origin check), as a browser would.
"""
from __future__ import annotations

from unittest.mock import ANY

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.test import Client

from hypergen_ws.testing import ConsumerCommunicator, Publishes, assert_published
from hypergen_ws.testing.fixtures import CommunicatorFactory
from testproject.chat.consumers import send_message
from testproject.chat.models import Message, Room
from testproject.counter.consumers import decrement, increment
from testproject.notifications.consumers import listen

# [marks]
# Consumers run their database code in another thread: the test's data must be committed to be seen there.
pytestmark = pytest.mark.django_db(transaction=True)
# [/marks]


# [fixtures]
@pytest.fixture
def lobby() -> Room:
    return Room.objects.get_or_create(slug="lobby", defaults={"name": "Lobby"})[0]


@pytest.fixture
def ann() -> User:
    user = User.objects.create_user("ann")
    user.user_permissions.add(Permission.objects.get(codename="can_chat"))
    return user
# [/fixtures]


# [chat]
async def test_a_message_reaches_everyone_in_the_room(hgws_communicator: CommunicatorFactory, ann: User,
                                                      lobby: Room) -> None:
    async with hgws_communicator(send_message, user=ann, room_name="lobby") as ann_socket, \
            hgws_communicator(send_message, user=ann, room_name="lobby") as other_tab:
        result = await ann_socket.call("Hello <b>world</b>")

        assert result.error is None
        [[name, target, html]] = result.commands
        assert (name, target) == ("hypergen.append", "messages")
        assert "<b>ann</b> Hello &lt;b&gt;world&lt;/b&gt;" in html
        assert await other_tab.receive_commands() == result.commands
    assert await Message.objects.filter(room=lobby).acount() == 1
# [/chat]


# [denied]
async def test_only_chatters_may_connect(hgws_communicator: CommunicatorFactory, lobby: Room) -> None:
    cy = await User.objects.acreate(username="cy")  # no chat.can_chat
    async with hgws_communicator(send_message, user=cy, room_name="lobby") as socket:
        assert not socket.connected
        assert socket.close_code == 4403  # permission denied
    async with hgws_communicator(send_message, room_name="lobby") as socket:  # anonymous
        assert socket.close_code == 4401  # not authenticated
# [/denied]


# [bad-input]
async def test_a_call_with_a_wrong_argument_gets_an_error(hgws_communicator: CommunicatorFactory, ann: User,
                                                          lobby: Room) -> None:
    async with hgws_communicator(send_message, user=ann, room_name="lobby") as socket:
        result = await socket.call(42)
    assert result.error == {"code": "bad_request", "message": ANY}
    assert "must be str" in result.error["message"]
# [/bad-input]


# [counter]
async def test_the_counter_changes_on_every_page(hgws_communicator: CommunicatorFactory,
                                                 hgws_published: Publishes) -> None:
    async with hgws_communicator(increment) as plus, hgws_communicator(decrement) as minus_page:
        result = await plus.call()
        await minus_page.assert_nothing()  # each button has its own group
    [[name, target, html]] = result.commands
    assert (name, target) == ("hypergen.morph", "counter")
    assert ">1<" in html
    hgws_published.assert_published(increment.group_name(), commands=result.commands)
    hgws_published.assert_not_published(decrement.group_name())
# [/counter]


# [view]
def test_the_announce_view_publishes_to_the_room(ann: User, lobby: Room) -> None:
    client = Client()
    client.force_login(ann)
    room = send_message.group_name(room_name="lobby")
    with assert_published(room, commands=[["hypergen.append", "messages", ANY]]) as published:
        response = client.post("/chat/lobby/announce/", {"text": "Pizza at noon"})
    assert response.status_code == 200
    assert "Pizza at noon" in published[0].commands[0][2]  # type: ignore[index]
# [/view]


# [session]
async def test_a_socket_logged_in_through_the_test_client(ann: User, lobby: Room) -> None:
    client = Client()
    await sync_to_async(client.force_login)(ann)
    name = settings.SESSION_COOKIE_NAME
    cookie = f"{name}={client.cookies[name].value}"
    async with ConsumerCommunicator(send_message, headers={"Cookie": cookie}, room_name="lobby") as socket:
        assert socket.connected
        result = await socket.call("via the session")
    assert "<b>ann</b> via the session" in result.commands[0][2]
# [/session]


# [notifications]
async def test_the_async_push_view_reaches_every_open_page(hgws_communicator: CommunicatorFactory,
                                                          ann: User) -> None:
    client = Client()
    await sync_to_async(client.force_login)(ann)
    async with hgws_communicator(listen) as page:
        response = await sync_to_async(client.post)("/notifications/push/async/", {"text": "Deployed"})
        assert response.status_code == 200
        assert await page.receive_message() == {"text": "Deployed", "source": "an async view", "sent_at": ANY}
# [/notifications]
