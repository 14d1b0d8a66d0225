"""HTTP side of the demo project: pages, login, publishing views and the ``notify`` command.

What the views and the command publish is recorded with ``hypergen_ws.testing`` (``hgws_published``,
``assert_published``); the consumers are tested by docs/testing.rst (test_testing_page.py) and in the browser (e2e/).
"""
from __future__ import annotations

import threading
from datetime import timedelta
from unittest.mock import ANY

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from hypergen_ws import consumer_command, get_history, get_position
from hypergen_ws.testing import Publishes, assert_not_published, assert_published
from testproject.chat.consumers import send_message
from testproject.chat.models import Message, Room
from testproject.counter.consumers import decrement, increment
from testproject.counter.state import achange_counter, get_counter
from testproject.notifications import views as notification_views
from testproject.notifications.consumers import listen

pytestmark = pytest.mark.django_db

ROOM_IDS = ["messages", "message-form", "message-input", "ws-state", "denied", "online", "resync-note"]


@pytest.fixture
def alice() -> User:
    return User.objects.get(username="alice")


@pytest.fixture
def eve() -> User:
    return User.objects.get(username="eve")


@pytest.fixture
def lobby() -> Room:
    return Room.objects.get(slug="lobby")


def csrf_client(user: User | None, warm_up_url: str) -> tuple[Client, str]:
    """A client that enforces CSRF like a browser, and the token a page it loaded would carry."""
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    client.get(warm_up_url)
    return client, client.cookies["csrftoken"].value


# Demo data -----------------------------------------------------------------------------------------------------


def test_migration_creates_rooms_and_demo_accounts() -> None:
    assert set(Room.objects.values_list("slug", flat=True)) >= {"lobby", "vip"}
    assert User.objects.get(username="alice").has_perm("chat.can_chat")
    assert User.objects.get(username="bob").has_perm("chat.can_chat")
    assert not User.objects.get(username="eve").has_perm("chat.can_chat")
    for name in ("alice", "bob", "eve"):
        assert User.objects.get(username=name).check_password(name)
    assert Permission.objects.filter(content_type__app_label="chat", codename="can_chat").count() == 1


# Index, login, logout ------------------------------------------------------------------------------------------


def test_index_links_every_demo(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    for url in (
        reverse("chat:room_list"),
        reverse("chat:room", kwargs={"room_name": "lobby"}),
        reverse("counter:page"),
        reverse("notifications:page"),
        reverse("admin:chat_message_add"),
        reverse("hgdemo:chat"),
        reverse("login"),
    ):
        assert f'href="{url}' in html, url
    assert 'id="demos"' in html


def test_index_uses_the_hypergen_ws_script_tag(client: Client) -> None:
    html = client.get("/").content.decode()
    assert "hypergen-ws.js" in html


def test_login_with_a_demo_account(client: Client) -> None:
    assert "alice" in client.get(reverse("login")).content.decode()
    response = client.post(reverse("login"), {"username": "alice", "password": "alice"})
    assert response.status_code == 302
    assert response.url == reverse("index")
    assert "Signed in as <b>alice</b>" in client.get("/").content.decode()


def test_login_with_a_wrong_password_shows_an_error(client: Client) -> None:
    response = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert 'id="login-error"' in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login_follows_next(client: Client) -> None:
    room_url = reverse("chat:room", kwargs={"room_name": "vip"})
    response = client.post(reverse("login"), {"username": "bob", "password": "bob", "next": room_url})
    assert response.status_code == 302
    assert response.url == room_url


def test_logout_is_a_post(client: Client, alice: User) -> None:
    client.force_login(alice)
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


# Chat pages ----------------------------------------------------------------------------------------------------


def test_room_list_shows_every_room(client: Client) -> None:
    html = client.get(reverse("chat:room_list")).content.decode()
    assert 'href="/chat/lobby/"' in html
    assert 'href="/chat/vip/"' in html


def test_room_requires_login(client: Client) -> None:
    response = client.get("/chat/lobby/")
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next=/chat/lobby/"


def test_unknown_room_is_404(client: Client, alice: User) -> None:
    client.force_login(alice)
    assert client.get("/chat/nowhere/").status_code == 404


def test_room_shows_stored_messages_escaped(client: Client, alice: User, lobby: Room) -> None:
    Message.objects.create(room=lobby, user=alice, text="hello <b>world</b>")
    client.force_login(alice)
    response = client.get("/chat/lobby/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "hello &lt;b&gt;world&lt;/b&gt;" in html
    assert "<b>world</b>" not in html
    for element_id in ROOM_IDS:
        assert f'id="{element_id}"' in html, element_id
    assert f'data-ws-url="{send_message.reverse(room_name="lobby")}?hgws_seq=' in html


def ws_url_of(html: str) -> str:
    return html.split('data-ws-url="')[1].split('"')[0].replace("&amp;", "&")


def test_room_opens_its_socket_at_the_position_it_was_rendered_at(client: Client, alice: User) -> None:
    group = send_message.group_name(room_name="lobby")
    client.force_login(alice)
    seq, epoch = get_position(group)
    base = send_message.reverse(room_name="lobby")
    assert ws_url_of(client.get("/chat/lobby/").content.decode()) == f"{base}?hgws_seq={seq}&hgws_epoch={epoch}"
    # A publish to the room (history=50 numbers it) moves the position the next page is rendered at.
    consumer_command(group, [["alert", "hi"]])
    assert get_position(group) == (seq + 1, epoch)
    assert ws_url_of(client.get("/chat/lobby/").content.decode()) == f"{base}?hgws_seq={seq + 1}&hgws_epoch={epoch}"


def test_room_consumer_keeps_history_and_tracks_presence() -> None:
    assert send_message.presence(room_name="lobby") == []
    group = send_message.group_name(room_name="lobby")
    seq, epoch = get_position(group)
    consumer_command(group, [["alert", "kept"]])
    assert [frame["seq"] for frame in get_history(group)][-1] == seq + 1


def test_room_shows_the_latest_50_messages_oldest_first(client: Client, alice: User, lobby: Room) -> None:
    start = timezone.now()
    for number in range(55):
        message = Message.objects.create(room=lobby, user=alice, text=f"message number {number:02d}")
        Message.objects.filter(pk=message.pk).update(created=start + timedelta(seconds=number))
    client.force_login(alice)
    html = client.get("/chat/lobby/").content.decode()
    assert "message number 04" not in html
    assert "message number 05" in html
    assert html.index("message number 05") < html.index("message number 54")


def test_room_only_shows_its_own_messages(client: Client, alice: User, lobby: Room) -> None:
    Message.objects.create(room=Room.objects.get(slug="vip"), user=alice, text="vip only")
    client.force_login(alice)
    assert "vip only" not in client.get("/chat/lobby/").content.decode()


def test_room_for_a_chatter_hides_the_denial(client: Client, alice: User) -> None:
    client.force_login(alice)
    html = client.get("/chat/lobby/").content.decode()
    assert 'id="denied" class="denied" hidden' in html
    assert 'id="announce-form"' in html


def test_room_without_permission_shows_the_denial(client: Client, eve: User) -> None:
    client.force_login(eve)
    html = client.get("/chat/lobby/").content.decode()
    assert 'id="denied" class="denied">' in html
    assert "disabled" in html.split('id="message-input"')[1].split(">")[0]
    assert 'id="announce-form"' not in html


# Announce views ------------------------------------------------------------------------------------------------

ANNOUNCE_VIEWS = ["chat:announce", "chat:announce_async"]
LOBBY = send_message.group_name(room_name="lobby")


@pytest.mark.parametrize("url_name", ANNOUNCE_VIEWS)
def test_announce_publishes_to_the_room(hgws_published: Publishes, alice: User, url_name: str) -> None:
    client, token = csrf_client(alice, "/chat/lobby/")
    response = client.post(
        reverse(url_name, kwargs={"room_name": "lobby"}), {"text": "<i>pizza</i>", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 200
    assert response.json()["ok"] is True
    [record] = hgws_published.assert_published(LOBBY, commands=[["hypergen.append", "messages", ANY]])
    html = record.commands[0][2]  # type: ignore[index]
    assert "&lt;i&gt;pizza&lt;/i&gt;" in html and "alice" in html
    hgws_published.assert_published(LOBBY, count=1)


@pytest.mark.parametrize("url_name", ["chat:announce", "chat:announce_async"])
def test_announce_rejects_get(client: Client, alice: User, url_name: str) -> None:
    client.force_login(alice)
    assert client.get(reverse(url_name, args=["lobby"])).status_code == 405


@pytest.mark.parametrize("url_name", ["chat:announce", "chat:announce_async"])
def test_announce_redirects_anonymous_users_to_login(client: Client, url_name: str) -> None:
    response = client.post(reverse(url_name, args=["lobby"]), {"text": "hi"})
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize("url_name", ANNOUNCE_VIEWS)
def test_announce_without_permission_is_403(hgws_published: Publishes, eve: User, url_name: str) -> None:
    client, token = csrf_client(eve, "/chat/lobby/")
    response = client.post(reverse(url_name, args=["lobby"]), {"text": "hi", "csrfmiddlewaretoken": token})
    assert response.status_code == 403
    hgws_published.assert_not_published()


@pytest.mark.parametrize("url_name", ANNOUNCE_VIEWS)
def test_announce_by_staff_without_permission(hgws_published: Publishes, eve: User, url_name: str) -> None:
    eve.is_staff = True
    eve.save()
    client, token = csrf_client(eve, "/chat/lobby/")
    response = client.post(reverse(url_name, args=["lobby"]), {"text": "hi", "csrfmiddlewaretoken": token})
    assert response.status_code == 200
    hgws_published.assert_published(LOBBY, count=1)


@pytest.mark.parametrize("url_name", ANNOUNCE_VIEWS)
def test_announce_without_csrf_token_is_403(alice: User, url_name: str) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    with assert_not_published():
        response = client.post(reverse(url_name, args=["lobby"]), {"text": "hi"})
    assert response.status_code == 403


@pytest.mark.parametrize("text", ["", "   ", "x" * 501])
@pytest.mark.parametrize("url_name", ["chat:announce", "chat:announce_async"])
def test_announce_rejects_bad_text(client: Client, alice: User, url_name: str, text: str) -> None:
    client.force_login(alice)
    assert client.post(reverse(url_name, args=["lobby"]), {"text": text}).status_code == 400


@pytest.mark.parametrize("url_name", ["chat:announce", "chat:announce_async"])
def test_announce_to_an_unknown_room_is_404(client: Client, alice: User, url_name: str) -> None:
    client.force_login(alice)
    assert client.post(reverse(url_name, args=["nowhere"]), {"text": "hi"}).status_code == 404


# Counter -------------------------------------------------------------------------------------------------------


def test_counter_page_renders_the_fragment(client: Client) -> None:
    counter = get_counter()
    counter.value = 41
    counter.save()
    response = client.get(reverse("counter:page"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="counter"' in html and ">41<" in html
    assert increment.reverse() in html and decrement.reverse() in html
    for element_id in ("ws-state", "increment", "decrement"):
        assert f'id="{element_id}"' in html, element_id


def test_counter_changes_are_stored() -> None:
    start = get_counter().value
    assert async_to_sync(achange_counter)(+1).value == start + 1
    assert async_to_sync(achange_counter)(-3).value == start - 2
    assert get_counter().value == start - 2


# Notifications -------------------------------------------------------------------------------------------------


def test_notifications_page_is_public(client: Client) -> None:
    response = client.get(reverse("notifications:page"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="notifications"' in html and 'id="ws-state"' in html
    assert f'data-ws-url="{listen.reverse()}"' in html
    assert 'id="notify-form"' not in html


def test_notifications_page_offers_pushing_when_logged_in(client: Client, eve: User) -> None:
    client.force_login(eve)
    html = client.get(reverse("notifications:page")).content.decode()
    for element_id in ("notify-form", "notify-input", "notify-sync", "notify-async", "notify-thread"):
        assert f'id="{element_id}"' in html, element_id


@pytest.mark.parametrize(
    ("url_name", "source"),
    [("notifications:push_sync", "a sync view"), ("notifications:push_async", "an async view")],
)
def test_push_views_publish(hgws_published: Publishes, eve: User, url_name: str, source: str) -> None:
    client, token = csrf_client(eve, reverse("notifications:page"))
    response = client.post(reverse(url_name), {"text": "Deploy finished", "csrfmiddlewaretoken": token})
    assert response.status_code == 200
    hgws_published.assert_published(listen.group_name(), count=1,
                                    data={"text": "Deploy finished", "source": source, "sent_at": ANY})


def test_push_thread_publishes_from_a_thread(hgws_published: Publishes, monkeypatch: pytest.MonkeyPatch,
                                             client: Client, eve: User) -> None:
    monkeypatch.setattr(notification_views, "THREAD_DELAY", 0)
    client.force_login(eve)
    response = client.post(reverse("notifications:push_thread"), {"text": "later"})
    assert response.status_code == 200
    for thread in threading.enumerate():
        if thread.name == "notify-later":
            thread.join(5)
    hgws_published.assert_published(listen.group_name(),
                                     data={"text": "later", "source": "a background thread", "sent_at": ANY})


PUSH_VIEWS = ["notifications:push_sync", "notifications:push_async", "notifications:push_thread"]


@pytest.mark.parametrize("url_name", PUSH_VIEWS)
def test_push_views_need_post_login_csrf_and_text(client: Client, eve: User, url_name: str) -> None:
    url = reverse(url_name)
    assert client.post(url, {"text": "hi"}).status_code == 302
    client.force_login(eve)
    assert client.get(url).status_code == 405
    assert client.post(url, {"text": ""}).status_code == 400
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(eve)
    assert strict.post(url, {"text": "hi"}).status_code == 403


# notify management command -------------------------------------------------------------------------------------


def test_notify_command_explains_the_in_memory_layer() -> None:
    with assert_not_published(), pytest.raises(CommandError, match="InMemoryChannelLayer") as excinfo:
        call_command("notify", "hello")
    assert "REDIS_URL" in str(excinfo.value)


def test_notify_command_publishes_with_a_shared_layer(redis_layer: str, capsys: pytest.CaptureFixture[str]) -> None:
    with assert_published(listen.group_name(), data={"text": "hello", "source": "a management command", "sent_at": ANY}):
        call_command("notify", "hello")
    assert "Notification sent: hello" in capsys.readouterr().out


@pytest.mark.parametrize("text", ["", "x" * 201])
def test_notify_command_rejects_bad_text(text: str) -> None:
    with pytest.raises(CommandError, match="characters"):
        call_command("notify", text)
