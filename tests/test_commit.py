"""Publishing on commit (hypergen_ws.delivery.commit): real SQLite transactions, real sockets on the in-memory layer.

A frame's place among the frames a socket receives shows when it was published: frames of one group reach a
socket in publish order, so a frame published at once after (or before) a deferred one is the barrier that says
whether the deferred one went out before the commit.
"""
from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections, transaction
from django.db.transaction import TransactionManagementError
from django.test import Client

from channels.routing import URLRouter

from hypergen_ws import (NO_PERM_REQUIRED, aconsumer_command, agroup_send, command, consumer, consumer_command,
                         get_history, group_send)
from hypergen_ws.delivery.publishing import LayerUnavailable
from hypergen_ws.testing import ConsumerCommunicator, capture_publishes
from testproject.chat.consumers import send_message
from testproject.chat.models import Room
from tests import commit_urls
from tests.commit_urls import ViewFailed
from tests.commitutil import Rollback, connect, group

pytestmark = pytest.mark.django_db(transaction=True)


def data(frame: dict[str, Any]) -> Any:
    assert frame["type"] == "message", frame
    return frame["data"]


async def datas(comm: Any, count: int) -> list[Any]:
    return [data(await comm.receive()) for _ in range(count)]


def exists(slug: str) -> bool:
    """Whether the room is committed, read through a new connection in a new thread."""
    result: list[bool] = []

    def read() -> None:
        try:
            result.append(Room.objects.filter(slug=slug).exists())
        finally:
            connections.close_all()

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    return result[0]


async def test_a_message_published_in_a_transaction_goes_out_only_after_the_commit():
    comm = await connect("wait")
    may_commit = threading.Event()

    def work() -> None:
        try:
            with transaction.atomic():
                Room.objects.create(slug="wait", name="Wait")
                assert group_send(group("wait"), {"stored": "wait"}, on_commit=True) is None
                group_send(group("wait"), "inside", on_commit=False)
                assert may_commit.wait(10), "the test never let the transaction commit"
        finally:
            connections.close_all()

    worker = asyncio.create_task(sync_to_async(work, thread_sensitive=False)())
    assert await datas(comm, 1) == ["inside"]
    # The transaction is still open (the worker waits): a frame published now arrives before the deferred one.
    await agroup_send(group("wait"), "probe")
    assert await datas(comm, 1) == ["probe"]
    assert not worker.done()
    may_commit.set()
    assert await datas(comm, 1) == [{"stored": "wait"}]
    await worker
    assert await sync_to_async(exists, thread_sensitive=False)("wait")
    await comm.disconnect()


async def test_a_rolled_back_transaction_publishes_nothing():
    comm = await connect("undo")

    def work() -> None:
        with pytest.raises(Rollback):
            with transaction.atomic():
                Room.objects.create(slug="undo", name="Undo")
                group_send(group("undo"), "rolled back", on_commit=True)
                consumer_command(group("undo"), [["rolled-back"]], on_commit=True)
                raise Rollback
        group_send(group("undo"), "after", on_commit=True)  # no transaction: at once

    await sync_to_async(work)()
    assert await datas(comm, 1) == ["after"]
    assert not await sync_to_async(exists, thread_sensitive=False)("undo")
    await comm.disconnect()


async def test_a_rolled_back_savepoint_drops_its_messages_and_keeps_the_others_in_order():
    comm = await connect("save")

    def work() -> None:
        with transaction.atomic():
            group_send(group("save"), 1, on_commit=True)
            with pytest.raises(Rollback):
                with transaction.atomic():
                    group_send(group("save"), 2, on_commit=True)
                    raise Rollback
            consumer_command(group("save"), [["three"]], on_commit=True)
            group_send(group("save"), 4, on_commit=True)
            group_send(group("save"), "inside", on_commit=False)
        group_send(group("save"), "after")

    await sync_to_async(work)()
    assert data(await comm.receive()) == "inside"
    assert data(await comm.receive()) == 1
    assert await comm.receive() == {"type": "commands", "commands": [["three"]]}
    assert await datas(comm, 2) == [4, "after"]
    await comm.disconnect()


async def test_outside_a_transaction_it_sends_at_once_and_returns_the_seq():
    comm = await connect("once")

    def work() -> tuple[Any, Any, list[Any]]:
        first = group_send(group("once"), "now", on_commit=True, history=True)
        with transaction.atomic():
            later = group_send(group("once"), "later", on_commit=True, history=True)
            kept_inside = [frame["data"] for frame in get_history(group("once"))]
        return first, later, kept_inside

    first, later, kept_inside = await sync_to_async(work)()
    assert isinstance(first, int)
    assert later is None  # not known before the commit
    assert kept_inside == ["now"]
    frames = [await comm.receive(), await comm.receive()]
    assert [frame["data"] for frame in frames] == ["now", "later"]
    assert frames[1]["seq"] == first + 1
    assert [frame["data"] for frame in await sync_to_async(get_history)(group("once"))] == ["now", "later"]
    await comm.disconnect()


async def test_the_setting_is_the_default_and_the_argument_wins(settings):
    settings.HYPERGEN_WS = {"PUBLISH_ON_COMMIT": True}
    comm = await connect("default")

    def work() -> None:
        with transaction.atomic():
            group_send(group("default"), "deferred by the setting")
            consumer_command(group("default"), [["deferred"]])
            group_send(group("default"), "at once", on_commit=False)

    await sync_to_async(work)()
    assert await datas(comm, 2) == ["at once", "deferred by the setting"]
    assert await comm.receive() == {"type": "commands", "commands": [["deferred"]]}

    settings.HYPERGEN_WS = {"PUBLISH_ON_COMMIT": False}

    def work_again() -> None:
        with transaction.atomic():
            group_send(group("default"), "at once by the setting")
            group_send(group("default"), "deferred", on_commit=True)
            group_send(group("default"), "second at once")

    await sync_to_async(work_again)()
    assert await datas(comm, 3) == ["at once by the setting", "second at once", "deferred"]
    await comm.disconnect()


async def test_async_publishers_under_a_sync_transaction_wait_for_its_commit():
    comm = await connect("async")

    def work() -> None:
        with transaction.atomic():
            async_to_sync(agroup_send)(group("async"), "deferred", on_commit=True)
            async_to_sync(aconsumer_command)(group("async"), [["deferred"]], on_commit=True)
            group_send(group("async"), "inside", on_commit=False)
        group_send(group("async"), "after")

    await sync_to_async(work)()
    assert await datas(comm, 2) == ["inside", "deferred"]
    assert await comm.receive() == {"type": "commands", "commands": [["deferred"]]}
    assert await datas(comm, 1) == ["after"]
    await comm.disconnect()


async def test_async_publishers_without_a_transaction_send_at_once():
    comm = await connect("plain")
    assert await agroup_send(group("plain"), "a", on_commit=True) is None
    assert await aconsumer_command(group("plain"), [["b"]], on_commit=True, history=True) == 1
    assert await datas(comm, 1) == ["a"]
    frame = await comm.receive()
    assert (frame["commands"], frame["seq"]) == ([["b"]], 1)
    await comm.disconnect()


async def test_bad_input_fails_at_the_call_and_the_transaction_goes_on(settings):
    comm = await connect("bad")

    def work() -> list[str]:
        errors = []
        with transaction.atomic():
            Room.objects.create(slug="bad", name="Bad")
            for call in (
                lambda: group_send(group("bad"), {"when": object()}, on_commit=True),
                lambda: consumer_command(group("bad"), "alert", on_commit=True),
                lambda: group_send("not a group!", 1, on_commit=True),
                lambda: group_send(group("bad"), 1, on_commit=True, history=-3),
                lambda: group_send(group("bad"), 1, on_commit="yes"),
                lambda: group_send(group("bad"), 1, on_commit=True, using="replica"),
                lambda: group_send(group("bad"), 1, on_commit=False, using="replica"),
            ):
                with pytest.raises((TypeError, ValueError)) as info:
                    call()
                errors.append(str(info.value))
            group_send(group("bad"), "good", on_commit=True)
        return errors

    errors = await sync_to_async(work)()
    assert "must be JSON" in errors[0]
    assert "command" in errors[1].lower()
    assert "Invalid group name" in errors[2]
    assert "history must be" in errors[3]
    assert "on_commit must be True, False or None" in errors[4]
    assert "using='replica' is not a database of settings.DATABASES; pass one of 'default'" in errors[5]
    assert errors[6] == errors[5]
    assert await datas(comm, 1) == ["good"]
    assert await sync_to_async(exists, thread_sensitive=False)("bad")

    settings.HYPERGEN_WS = {"PUBLISH_ON_COMMIT": "yes"}
    with pytest.raises(ImproperlyConfigured, match=r"HYPERGEN_WS\['PUBLISH_ON_COMMIT'\] must be True or False"):
        await agroup_send(group("bad"), 1)
    await comm.disconnect()


def test_manual_transactions_have_no_commit_to_wait_for():
    connection.ensure_connection()
    transaction.set_autocommit(False)
    try:
        with pytest.raises(TransactionManagementError, match="autocommit is off outside atomic"):
            group_send(group("manual"), 1, on_commit=True)
        group_send(group("manual"), "sent at once", on_commit=False)
    finally:
        transaction.rollback()
        transaction.set_autocommit(True)


def test_a_publish_that_fails_at_the_commit_raises_after_the_data_is_committed(settings):
    with socket.socket() as probe:  # a port nobody listens on: Redis is "down"
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}/0"]}}}
    settings.HYPERGEN_WS = {"PUBLISH_TIMEOUT": 5}
    with pytest.raises(LayerUnavailable, match=f"connecting to 127.0.0.1:{port}.*Is the channel layer"):
        with transaction.atomic():
            Room.objects.create(slug="down", name="Down")
            group_send("hgws.down", "lost", on_commit=True, history=False)
    assert Room.objects.filter(slug="down").exists()


async def test_atomic_requests_view_that_fails_publishes_only_what_did_not_wait(settings, monkeypatch):
    settings.ROOT_URLCONF = "tests.commit_urls"
    monkeypatch.setitem(connections.settings["default"], "ATOMIC_REQUESTS", True)
    comm = await connect("view")
    client = Client()

    def request(path: str) -> int:
        return client.get(path).status_code

    # Waits for the commit: the view failed, Django rolled the request back, nothing went out.
    with pytest.raises(ViewFailed):
        await sync_to_async(request)("/store/view/fail/?on_commit=1")
    # Does not wait: the browsers heard of a room that was then rolled back.
    with pytest.raises(ViewFailed):
        await sync_to_async(request)("/store/view/fail/?on_commit=0")
    assert await datas(comm, 1) == [{"stored": "view", "on_commit": False}]
    assert not await sync_to_async(exists, thread_sensitive=False)("view")
    # A view that succeeds: the message goes out after the request's transaction committed.
    assert await sync_to_async(request)("/store/view/ok/?on_commit=1") == 200
    assert await datas(comm, 1) == [{"stored": "view", "on_commit": True}]
    assert await sync_to_async(exists, thread_sensitive=False)("view")
    await comm.disconnect()


async def test_the_documented_view_publishes_the_rename_only_when_it_is_committed(settings):
    """docs/transactions.rst's rename_room, from the page."""
    settings.ROOT_URLCONF = "tests.commit_urls"
    await sync_to_async(Room.objects.create)(slug="den", name="Den")
    client = Client()
    with capture_publishes() as published:
        with pytest.raises(ValueError, match="cannot start with '!'"):
            await sync_to_async(client.post)("/rooms/den/rename/", {"name": "!Den"})
        assert published == [], "rolled back with the rename"
        response = await sync_to_async(client.post)("/rooms/den/rename/", {"name": "The den"})
    assert response.content == b"Renamed to The den"
    [sent] = published
    assert (sent.group, sent.data) == (send_message.group_name(room_name="den"), {"renamed": "The den"})
    assert await sync_to_async(lambda: Room.objects.get(slug="den").name)() == "The den"


def test_the_documented_async_rename_waits_for_the_commit():
    """docs/transactions.rst's ``rename``, a sync_to_async function, from the page."""
    Room.objects.create(slug="nook", name="Nook")
    with capture_publishes() as published:
        async_to_sync(commit_urls.page_views.rename)("nook", "The nook")
    assert [(p.group, p.data) for p in published] == [(send_message.group_name(room_name="nook"),
                                                       {"renamed": "The nook"})]
    assert Room.objects.get(slug="nook").name == "The nook"


async def test_commands_of_a_consumer_call_go_out_when_it_returns_and_never_when_it_raises():
    @consumer(perm=NO_PERM_REQUIRED, path="<slug:room>/", app_label="tests")
    def open_room(consumer: Any, request: Any, fail: bool, *, room: str) -> None:
        with transaction.atomic():
            Room.objects.create(slug=f"{room}-{int(fail)}", name=room)
            command("opened", room)
        if fail:
            raise RuntimeError("failed after the commit")

    async with ConsumerCommunicator(open_room, application=URLRouter([open_room.urlpattern()]), room="porch") as comm:
        error = (await comm.call(True)).error
        assert error is not None and error["code"] == "server_error"  # the room was committed, the command never sent
        assert await sync_to_async(exists, thread_sensitive=False)("porch-1")
        assert (await comm.call(False)).frames == [{"type": "commands", "commands": [["opened", "porch"]]},
                                                   {"type": "reply", "id": 2}]


@pytest.mark.django_db  # without transaction=True: the test runs in a transaction that is rolled back
def test_in_a_rolled_back_test_transaction_publishes_wait_for_captured_callbacks(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        group_send(group("captured"), "not yet", on_commit=True, history=True)
    assert len(callbacks) == 1
    assert get_history(group("captured")) == []
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        group_send(group("captured"), "now", on_commit=True, history=True)
    assert len(callbacks) == 1
    assert [frame["data"] for frame in get_history(group("captured"))] == ["now"]
