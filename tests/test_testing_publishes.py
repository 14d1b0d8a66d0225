"""hypergen_ws.testing: capture_publishes(), assert_published() and assert_not_published(), and their failures."""
from __future__ import annotations

import io
import json
import threading
from unittest.mock import ANY

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import Client
from pytest_django import Settings

from hypergen_ws import aconsumer_command, agroup_send, consumer_command, group_send
from hypergen_ws.testing import (
    Published,
    Publishes,
    assert_not_published,
    assert_published,
    capture_publishes,
)
from hypergen_ws.testing.fixtures import CommunicatorFactory
from testproject.chat.consumers import send_message
from tests import sample_consumers as sc
from tests.support.servers import REPO_ROOT
from tests.wsutil import application

LOBBY = sc.echo.group_name(room="lobby")
VIP = sc.echo.group_name(room="vip")
KEY = "testing-key-0123456789abcdef"


# ---- what is recorded ---------------------------------------------------------------------------------------


def test_sync_publishers_are_recorded_without_a_socket_in_the_group() -> None:
    with capture_publishes() as published:
        group_send(LOBBY, {"text": "hi"})
        consumer_command(VIP, [["alert", 42]])
    assert published == [
        Published(LOBBY, "data", data={"text": "hi"}, text='{"type":"message","data":{"text":"hi"}}'),
        Published(VIP, "commands", commands=[["alert", 42]], text='{"type":"commands","commands":[["alert",42]]}'),
    ]
    assert isinstance(published, Publishes)


async def test_async_publishers_are_recorded_in_an_async_with() -> None:
    async with capture_publishes() as published:
        await agroup_send(LOBBY, [1, 2])
        await aconsumer_command(LOBBY, [["hypergen.remove", "x"]])
    assert [(r.kind, r.data, r.commands) for r in published] == [("data", [1, 2], None),
                                                                 ("commands", None, [["hypergen.remove", "x"]])]


def test_publishes_from_other_threads_are_recorded() -> None:
    with capture_publishes() as published:
        thread = threading.Thread(target=group_send, args=(LOBBY, "from a thread"))
        thread.start()
        thread.join()
    assert published.to(LOBBY)[0].data == "from a thread"


@pytest.mark.django_db
@pytest.mark.urls("tests.http_urls")
def test_the_http_endpoint_is_recorded(settings: Settings) -> None:
    settings.HYPERGEN_WS = {"PUBLISH_KEYS": [KEY]}
    client = Client(headers={"Authorization": f"Bearer {KEY}"})
    with capture_publishes() as published:
        response = client.post("/hypergen_ws/publish/", json.dumps({"group": LOBBY, "data": {"n": 1}}),
                               content_type="application/json")
        refused = client.post("/hypergen_ws/publish/", "{}", content_type="application/json")
    assert response.status_code == 200 and refused.status_code == 400
    published.assert_published(LOBBY, data={"n": 1}, count=1)


def test_the_management_command_is_recorded() -> None:
    with capture_publishes() as published:
        call_command("hypergen_ws_publish", "--in-process", "--group", VIP, "--commands", '[["alert", "deploy"]]',
                     stdout=io.StringIO(), stderr=io.StringIO())
    published.assert_published(VIP, commands=[["alert", "deploy"]])


def test_the_management_command_refusing_the_in_memory_layer_publishes_nothing() -> None:
    with assert_not_published(), pytest.raises(CommandError, match="--in-process"):
        call_command("hypergen_ws_publish", "--group", VIP, "--data", "1", stdout=io.StringIO(),
                     stderr=io.StringIO())


@pytest.mark.django_db(transaction=True)
async def test_what_a_consumer_sends_to_its_group_is_recorded_and_what_it_sends_the_caller_is_not(
        hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.echo, application=application, room="lobby") as echo, \
            hgws_communicator(sc.whisper, application=application) as whisper, capture_publishes() as published:
        await echo.call("hi")
        await whisper.call("psst")
    assert published == [Published(LOBBY, "commands", commands=[["hypergen.append", "messages", "<li>hi</li>"]],
                                   text=ANY)]


@pytest.mark.django_db(transaction=True)
def test_a_publish_on_commit_is_recorded_when_it_goes_out() -> None:
    with capture_publishes() as published:
        with transaction.atomic():
            group_send(LOBBY, "after the commit", on_commit=True)
            published.assert_not_published()
        published.assert_published(LOBBY, data="after the commit")
        with pytest.raises(KeyError), transaction.atomic():
            group_send(LOBBY, "rolled back", on_commit=True)
            raise KeyError("roll back")
    assert [record.data for record in published] == ["after the commit"]


def test_a_publish_that_fails_validation_is_not_recorded() -> None:
    with capture_publishes() as published:
        with pytest.raises(TypeError):
            group_send(LOBBY, {"when": object()})
        with pytest.raises(TypeError):
            consumer_command(LOBBY, "alert")  # type: ignore[arg-type]
    assert published == []


def test_captures_nest_and_stop_recording_at_the_end_of_their_block() -> None:
    with capture_publishes() as outer:
        group_send(LOBBY, 1)
        with capture_publishes() as inner:
            group_send(LOBBY, 2)
        group_send(LOBBY, 3)
    group_send(LOBBY, 4)
    assert [r.data for r in outer] == [1, 2, 3]
    assert [r.data for r in inner] == [2]


def test_a_capture_cannot_be_started_twice() -> None:
    capture = capture_publishes()
    with capture:
        with pytest.raises(RuntimeError, match="already recording; make a new one to nest captures"):
            capture.start()


def test_the_hgws_published_fixture_records_the_whole_test(hgws_published: Publishes) -> None:
    group_send(LOBBY, "one")
    consumer_command(LOBBY, [["two"]])
    hgws_published.assert_published(LOBBY, data="one")
    hgws_published.assert_published(LOBBY, commands=[["two"]])
    assert len(hgws_published) == 2


# ---- assert_published ---------------------------------------------------------------------------------------


def recorded() -> Publishes:
    with capture_publishes() as published:
        group_send(LOBBY, {"text": "hi", "user": "ann"})
        consumer_command(LOBBY, [["hypergen.append", "messages", "<li>hi</li>"]])
        group_send(LOBBY, {"text": "hi", "user": "ann"})
        group_send(VIP, "vip only")
    return published


def test_assert_published_matches_group_data_commands_any_and_count() -> None:
    published = recorded()
    assert len(published.assert_published(LOBBY)) == 3
    assert published.assert_published(VIP, data="vip only") == published.to(VIP)
    published.assert_published(LOBBY, data={"text": "hi", "user": ANY}, count=2)
    published.assert_published(LOBBY, commands=[["hypergen.append", "messages", ANY]], count=1)
    published.assert_published(LOBBY, data="never", count=0)


def test_assert_published_fails_when_nothing_was_published_at_all() -> None:
    with pytest.raises(AssertionError) as failure:
        Publishes().assert_published(LOBBY, data={"text": "hi"})
    assert str(failure.value) == (
        f"Nothing was published to group {LOBBY!r} with data {{'text': 'hi'}}. Nothing was published at all while "
        "recording (publishes are recorded inside capture_publishes(), assert_published() or the hgws_published "
        "fixture only).")


def test_assert_published_fails_naming_the_groups_that_got_something() -> None:
    published = recorded()
    other = sc.echo.group_name(room="lobby2")
    with pytest.raises(AssertionError) as failure:
        published.assert_published(other)
    assert str(failure.value) == (
        f"Nothing was published to group {other!r}. Published to other groups: {LOBBY!r} (3), {VIP!r} (1). Build "
        "the group name with <consumer>.group_name(**url_kwargs) and check the URL kwargs.")


def test_assert_published_fails_listing_what_the_group_got_instead() -> None:
    with pytest.raises(AssertionError) as failure:
        recorded().assert_published(LOBBY, commands=[["alert", 1]])
    assert str(failure.value) == (
        f"Nothing published to group {LOBBY!r} matches with commands [['alert', 1]]. Published to it:\n"
        "  data {'text': 'hi', 'user': 'ann'}\n"
        "  commands [['hypergen.append', 'messages', '<li>hi</li>']]\n"
        "  data {'text': 'hi', 'user': 'ann'}")


def test_assert_published_fails_when_the_count_differs() -> None:
    with pytest.raises(AssertionError) as failure:
        recorded().assert_published(LOBBY, data={"text": "hi", "user": "ann"}, count=1)
    assert str(failure.value) == (
        f"Expected 1 publish(es) to group {LOBBY!r} with data {{'text': 'hi', 'user': 'ann'}}, but there were 2:\n"
        "  data {'text': 'hi', 'user': 'ann'}\n"
        "  data {'text': 'hi', 'user': 'ann'}\n"
        "1 other publish(es) to the group did not match.")
    with pytest.raises(AssertionError) as failure:
        recorded().assert_published(VIP, count=2)
    assert str(failure.value) == f"Expected 2 publish(es) to group {VIP!r}, but there were 1:\n  data 'vip only'"


def test_long_listings_are_cut() -> None:
    with capture_publishes() as published:
        for number in range(25):
            group_send(LOBBY, "x" * 400 if number == 0 else number)
    with pytest.raises(AssertionError) as failure:
        published.assert_published(LOBBY, data=-1)
    lines = str(failure.value).splitlines()
    assert lines[1] == "  data '" + "x" * 296 + "..."  # 300 characters of the repr
    assert len(lines) == 22 and lines[-1] == "  ... and 5 more"


def test_assert_published_refuses_arguments_that_cannot_match() -> None:
    with pytest.raises(TypeError, match="Pass data= or commands=, not both: a publish carries either data"):
        Publishes().assert_published(LOBBY, data=1, commands=[["x"]])
    with pytest.raises(TypeError, match=r"takes a group name, not the consumer .*: pass echo.group_name\(...\)"):
        Publishes().assert_published(sc.echo)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"takes a group name \(a str\), not int"):
        Publishes().assert_published(7)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="count=-1; pass the number of matching publishes expected"):
        Publishes().assert_published(LOBBY, count=-1)


# ---- assert_not_published -----------------------------------------------------------------------------------


def test_assert_not_published_passes_for_quiet_groups_and_fails_listing_what_came() -> None:
    published = recorded()
    published.assert_not_published(sc.echo.group_name(room="quiet"))
    with pytest.raises(AssertionError) as failure:
        published.assert_not_published(VIP)
    assert str(failure.value) == f"Expected nothing to be published to group {VIP!r}, but 1 publish(es) were:\n" \
                                 "  data 'vip only'"


def test_assert_not_published_without_a_group_means_nowhere() -> None:
    Publishes().assert_not_published()
    with pytest.raises(AssertionError) as failure:
        recorded().assert_not_published()
    assert str(failure.value).splitlines() == [
        "Expected nothing to be published, but 4 publish(es) were:",
        f"  to {LOBBY!r}: data {{'text': 'hi', 'user': 'ann'}}",
        f"  to {LOBBY!r}: commands [['hypergen.append', 'messages', '<li>hi</li>']]",
        f"  to {LOBBY!r}: data {{'text': 'hi', 'user': 'ann'}}",
        f"  to {VIP!r}: data 'vip only'",
    ]


# ---- the context manager forms ------------------------------------------------------------------------------


def test_assert_published_as_a_block() -> None:
    with assert_published(LOBBY, data="in the block") as published:
        group_send(LOBBY, "in the block")
    assert len(published) == 1
    with pytest.raises(AssertionError, match=f"Nothing was published to group {LOBBY!r} with data 'in the block'"):
        with assert_published(LOBBY, data="in the block"):
            group_send(VIP, "in the block")


async def test_assert_published_and_not_published_as_async_blocks() -> None:
    async with assert_published(LOBBY, commands=[["a"]], count=1), assert_not_published(VIP):
        await aconsumer_command(LOBBY, [["a"]])
    with pytest.raises(AssertionError, match=f"Expected nothing to be published to group {VIP!r}"):
        async with assert_not_published(VIP):
            await agroup_send(VIP, 1)


def test_assert_not_published_as_a_block() -> None:
    with assert_not_published(VIP):
        group_send(LOBBY, 1)
    with pytest.raises(AssertionError, match="Expected nothing to be published, but 1 publish"):
        with assert_not_published():
            group_send(LOBBY, 1)


def test_an_error_in_the_block_is_not_hidden_by_the_assertion() -> None:
    with pytest.raises(KeyError):
        with assert_published(LOBBY):
            raise KeyError("the test's own failure")
    with pytest.raises(KeyError):
        with assert_not_published():
            group_send(LOBBY, 1)
            raise KeyError("the test's own failure")


def test_the_failure_shown_in_the_docs_is_the_real_one() -> None:
    doc = (REPO_ROOT / "docs" / "testing.rst").read_text(encoding="utf-8")
    block = doc.split("A failure lists what was published instead::\n\n", 1)[1].split("\n\n", 1)[0]
    shown = "\n".join(line[4:] for line in block.splitlines())
    room = send_message.group_name(room_name="lobby")
    with pytest.raises(AssertionError) as failure:
        with assert_published(room, commands=[["alert", "Pizza at noon"]]):
            group_send(room, {"text": "Pizza at noon"})
    assert f"AssertionError: {failure.value}" == shown


# ---- what is not recorded -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_presence_frames_and_plain_layer_messages_are_not_recorded(
        hgws_communicator: CommunicatorFactory) -> None:
    from channels.layers import get_channel_layer

    from tests import recovery_consumers as rc

    room = rc.rec_room.group_name(room="here")
    async with capture_publishes() as published:
        async with hgws_communicator(rc.rec_room, application=rc.application, room="here") as first, \
                hgws_communicator(rc.rec_room, application=rc.application, room="here"):
            assert (await first.receive_of("presence"))["event"] == "list"
            assert (await first.receive_of("presence"))["event"] == "join"
            await get_channel_layer().group_send(room, {"type": "x.y"})
    published.assert_not_published()
