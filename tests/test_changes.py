"""``@model_changes`` (hypergen_ws.changes): a model's saves and deletes published to groups, after the commit.

Real SQLite transactions and real sockets on the in-memory layer. The last part drives the chat demo through the
Django admin: a message added, edited and deleted there reaches the room's sockets.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.db import models, transaction
from django.test import Client

from hypergen_ws import aconsumer_command, autoconsumers, group_send, model_changes
from hypergen_ws.changes import CHANGES, ModelChanges
from hypergen_ws.testing import ConsumerCommunicator
from testproject.chat import consumers as chat_consumers
from testproject.chat.changes import message_room
from testproject.chat.consumers import send_message
from testproject.chat.models import Message, Room
from tests.commitutil import Rollback, connect, group

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def observers() -> Iterator[list[ModelChanges[Any]]]:
    """ModelChanges a test makes are appended here and disconnected after it."""
    made: list[ModelChanges[Any]] = []
    yield made
    for observer in made:
        observer.disconnect()


async def test_saves_and_deletes_reach_the_named_group_after_the_commit(observers):
    @model_changes(Room)
    def room_groups(room: Room, change: str) -> str:
        return group(room.slug)

    observers.append(room_groups)
    comm = await connect("kitchen")

    def work() -> int:
        with transaction.atomic():
            room = Room.objects.create(slug="kitchen", name="Kitchen")
            group_send(group("kitchen"), "inside", on_commit=False)
        room.name = "Big kitchen"
        room.save()
        pk = room.pk
        room.delete()
        return pk

    pk = await sync_to_async(work)()
    frames = [await comm.receive() for _ in range(4)]
    assert [frame["data"] for frame in frames] == [
        "inside",
        {"model": "chat.room", "pk": pk, "change": "created"},
        {"model": "chat.room", "pk": pk, "change": "updated"},
        {"model": "chat.room", "pk": pk, "change": "deleted"},  # the pk as it was, computed before it is cleared
    ]
    await comm.disconnect()


async def test_a_rolled_back_save_publishes_nothing(observers):
    observers.append(model_changes(Room)(lambda room, change: group("attic")))
    comm = await connect("attic")

    def work() -> None:
        with pytest.raises(Rollback):
            with transaction.atomic():
                Room.objects.create(slug="attic", name="Attic")
                raise Rollback
        group_send(group("attic"), "after")

    await sync_to_async(work)()
    assert (await comm.receive())["data"] == "after"
    assert not await sync_to_async(Room.objects.filter(slug="attic").exists)()
    await comm.disconnect()


async def test_commands_data_several_groups_and_chosen_changes(observers):
    def commands(room: Room, change: str) -> list[list[Any]] | None:
        return None if room.name == "quiet" else [["room", change, room.name]]

    def groups(room: Room, change: str) -> list[str]:
        return [group("a"), group("b"), group("a")]  # a repeat is sent once

    observers.append(ModelChanges(Room, groups, commands=commands, changes=["created", "deleted"]))
    observers.append(ModelChanges(Room, lambda room, change: None if room.slug == "x" else group("c"),
                                  data=lambda room, change: {"slug": room.slug}, changes="updated"))
    a = await connect("a")
    b = await connect("b")
    c = await connect("c")

    def work() -> None:
        room = Room.objects.create(slug="hall", name="Hall")
        Room.objects.create(slug="x", name="quiet").save()  # no commands, and no group for its update
        room.save()  # "updated" is not chosen for the commands, only for the data
        room.delete()
        group_send(group("a"), "end")
        group_send(group("c"), "end")

    await sync_to_async(work)()
    for comm in (a, b):
        assert (await comm.receive())["commands"] == [["room", "created", "Hall"]]
        assert (await comm.receive())["commands"] == [["room", "deleted", "Hall"]]
    assert (await a.receive())["data"] == "end"
    assert (await c.receive())["data"] == {"slug": "hall"}
    assert (await c.receive())["data"] == "end"
    for comm in (a, b, c):
        await comm.disconnect()


async def test_disconnect_stops_publishing(observers):
    observer = model_changes(Room)(lambda room, change: group("gone"))
    observers.append(observer)
    comm = await connect("gone")
    await sync_to_async(Room.objects.create)(slug="one", name="One")
    assert (await comm.receive())["data"]["change"] == "created"
    observer.disconnect()

    def work() -> None:
        Room.objects.create(slug="two", name="Two")
        group_send(group("gone"), "end")

    await sync_to_async(work)()
    assert (await comm.receive())["data"] == "end"
    await comm.disconnect()


async def test_loaddata_raw_saves_are_not_published(observers, tmp_path):
    observers.append(model_changes(Room)(lambda room, change: group("fixture")))
    comm = await connect("fixture")
    fixture = tmp_path / "rooms.json"
    fixture.write_text(json.dumps([{"model": "chat.room", "pk": 900, "fields": {"slug": "fix", "name": "Fix"}}]))

    def work() -> None:
        call_command("loaddata", str(fixture), verbosity=0)
        group_send(group("fixture"), "end")

    await sync_to_async(work)()
    assert (await comm.receive())["data"] == "end"
    assert await sync_to_async(Room.objects.filter(slug="fix").exists)()
    await comm.disconnect()


async def test_a_groups_function_that_returns_nonsense_fails_the_save_and_stores_nothing(observers):
    returned: list[Any] = [42]
    observers.append(model_changes(Room)(lambda room, change: returned[0]))

    def work() -> str:
        with pytest.raises((TypeError, ValueError)) as info:
            with transaction.atomic():
                Room.objects.create(slug="nonsense", name="Nonsense")
        return str(info.value)

    message = await sync_to_async(work)()
    assert "returned 42 for the created chat.Room" in message
    assert "return a group name (str), an iterable of group names, or None" in message
    returned[0] = ["not a group!"]
    assert "Invalid group name 'not a group!'" in await sync_to_async(work)()
    assert not await sync_to_async(Room.objects.filter(slug="nonsense").exists)()


def test_bad_definitions_fail_when_they_are_made():
    class Abstract(models.Model):
        class Meta:
            abstract = True
            app_label = "chat"

    def groups(instance: Any, change: str) -> str:
        return "g"

    with pytest.raises(TypeError, match="needs a model class, such as Message, not"):
        model_changes(Room())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Abstract is abstract: Django sends no signals for it"):
        model_changes(Abstract)
    with pytest.raises(TypeError, match="give data= or commands=, not both"):
        model_changes(Room, data=groups, commands=groups)(groups)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="changes must name some of created, updated, deleted"):
        model_changes(Room, changes=["saved"])(groups)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="changes must name some of"):
        model_changes(Room, changes=[])(groups)
    with pytest.raises(TypeError, match="groups must be a function"):
        ModelChanges(Room, "g")  # type: ignore[arg-type]
    assert CHANGES == ("created", "updated", "deleted")


# The chat demo: messages saved in the Django admin reach their room -------------------------------------------


def demo_people() -> tuple[User, User]:
    """A chatter in the lobby and a superuser for the admin (transactional tests start from an empty table)."""
    Room.objects.get_or_create(slug="lobby", defaults={"name": "Lobby"})
    Room.objects.get_or_create(slug="vip", defaults={"name": "VIP lounge"})
    chatter = User.objects.create_user("chatter", password="chatter")
    chatter.user_permissions.add(Permission.objects.get(codename="can_chat"))
    admin = User.objects.create_superuser("boss", password="boss")
    return User.objects.get(pk=chatter.pk), admin


async def test_chat_messages_added_edited_and_deleted_in_the_admin_reach_their_room():
    assert message_room(Message(room=Room(slug="vip")), "created") == send_message.group_name(room_name="vip")
    chatter, admin = await sync_to_async(demo_people)()
    chat = URLRouter(autoconsumers(chat_consumers))
    sockets = {}
    for room in ("lobby", "vip"):
        sockets[room] = ConsumerCommunicator(send_message, user=chatter, application=chat, room_name=room)
        assert await sockets[room].connect()
    lobby = await sync_to_async(Room.objects.get)(slug="lobby")
    client = Client()
    await sync_to_async(client.force_login)(admin)

    response = await sync_to_async(client.post)(
        "/admin/chat/message/add/", {"room": lobby.pk, "user": chatter.pk, "text": "Saved <b>in</b> the admin"})
    assert response.status_code == 302, response.content.decode()
    message = await sync_to_async(Message.objects.get)(text="Saved <b>in</b> the admin")
    [[name, target, html]] = await sockets["lobby"].receive_commands()
    assert (name, target) == ("hypergen.append", "messages")
    assert f'id="message-{message.pk}"' in html and "Saved &lt;b&gt;in&lt;/b&gt; the admin" in html

    response = await sync_to_async(client.post)(
        f"/admin/chat/message/{message.pk}/change/", {"room": lobby.pk, "user": chatter.pk, "text": "Edited"})
    assert response.status_code == 302
    [[name, target, html]] = await sockets["lobby"].receive_commands()
    assert (name, target) == ("hypergen.replace", f"message-{message.pk}") and "Edited" in html

    response = await sync_to_async(client.post)(f"/admin/chat/message/{message.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert await sockets["lobby"].receive_commands() == [["hypergen.remove", f"message-{message.pk}"]]

    # A message the consumer stores goes the same way; the other room heard of none of them.
    await sockets["vip"].send({"args": ["hello vip"]})
    [[name, target, html]] = await sockets["vip"].receive_commands()
    assert (name, target) == ("hypergen.append", "messages") and "hello vip" in html
    await aconsumer_command(send_message.group_name(room_name="lobby"), [["barrier"]])
    assert await sockets["lobby"].receive_commands() == [["barrier"]]
    for comm in sockets.values():
        await comm.disconnect()
