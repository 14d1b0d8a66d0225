"""What history keeps of rows that changed, and redacting one entry (hypergen_ws.changes, redact_history), on the
in-memory layer and on a real Redis: a replay shows the current version of an edited row and nothing of a deleted
one, and the seqs stay gap-free."""
from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from redis import asyncio as aioredis

from hypergen_ws import aredact_history, group_send, redact_history
from hypergen_ws.backends.memory import memory_store
from hypergen_ws.features.history import aget_history, aget_position
from hypergen_ws.testing import ConsumerCommunicator
from testproject.chat.consumers import send_message
from testproject.chat.models import Message, Room
from tests import recovery_consumers as rc
from tests.recutil import use_layer
from tests.users import make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["memory", "redis"])
def layer(request, settings):
    kind = request.param
    use_layer(kind, settings, request.getfixturevalue("redis_url") if kind != "memory" else None)
    memory_store().flush_sync()
    yield kind
    memory_store().flush_sync()


async def replay_from_zero(consumer, group: str, **options) -> list[dict]:
    """The frames a client that connects with ``hgws_seq=0`` gets: ``sync``, then every kept frame."""
    _seq, epoch = await aget_position(group)
    comm = ConsumerCommunicator(consumer, query=f"hgws_seq=0&hgws_epoch={epoch}", **options)
    assert await comm.connect()
    sync = await comm.receive()
    while sync["type"] == "presence":  # (the chat's presence list may come first)
        sync = await comm.receive()
    assert sync["type"] == "sync", sync
    frames: list[dict] = []
    while len(frames) < sync["replayed"]:
        frame = await comm.receive()
        if "seq" in frame:
            frames.append(frame)
    await comm.disconnect()
    return frames


async def test_a_replay_shows_an_edited_row_as_it_is_now_and_nothing_of_a_deleted_one(layer):
    ann = await make_user("t_ann", "chat.can_chat")

    def chat() -> tuple[int, int]:
        room = Room.objects.create(slug="attic", name="Attic")
        kept = Message.objects.create(room=room, user=ann, text="first version")
        gone = Message.objects.create(room=room, user=ann, text="a secret sent by mistake")
        kept.text = "second version"
        kept.save()
        kept.text = "third version"
        kept.save()
        gone_pk = gone.pk
        gone.delete()
        return kept.pk, gone_pk

    kept, gone = await sync_to_async(chat)()
    group = send_message.group_name(room_name="attic")
    frames = await replay_from_zero(send_message, group, user=ann, room_name="attic")
    text = json.dumps(frames)
    assert "secret" not in text and "first version" not in text and "second version" not in text
    assert [f["seq"] for f in frames] == [1, 2, 3, 4, 5], "every seq is replayed: no gap, no resync"
    assert [f["type"] for f in frames] == ["commands", "redacted", "redacted", "commands", "commands"]
    assert frames[0]["commands"][0][:2] == ["hypergen.append", "messages"], "the row's creation, as it is now"
    assert "third version" in frames[0]["commands"][0][2] and f'id="message-{kept}"' in frames[0]["commands"][0][2]
    assert frames[3]["commands"][0][0] == "hypergen.replace" and "third version" in frames[3]["commands"][0][2]
    assert frames[4]["commands"] == [["hypergen.remove", f"message-{gone}"]]
    assert [f["seq"] for f in await aget_history(group)] == [1, 2, 3, 4, 5]


async def test_model_changes_without_commands_keep_a_row_s_creation_and_drop_its_old_updates(layer):
    from hypergen_ws import model_changes

    @model_changes(Room, data=lambda room, change: {"name": room.name, "change": change}, history=True)
    def room_groups(room: Room, change: str) -> str:
        return rc.rec_feed.group_name(room="rooms")

    try:
        def work() -> None:
            room = Room.objects.create(slug="den", name="Den")
            room.name = "Study"
            room.save()
            Room.objects.create(slug="hall", name="Hall").delete()
        await sync_to_async(work)()
    finally:
        room_groups.disconnect()
    kept = await aget_history(rc.rec_feed.group_name(room="rooms"))
    assert [(f["seq"], f["type"], f.get("data")) for f in kept] == [
        (1, "message", {"name": "Study", "change": "created"}),  # the creation, as the row is now
        (2, "message", {"name": "Study", "change": "updated"}),
        (3, "redacted", None),  # a deleted row's creation
        (4, "message", {"name": "Hall", "change": "deleted"}),  # what the data function says of a delete
    ]


async def test_redact_history_redacts_one_entry_and_keeps_its_seq(layer):
    group = rc.rec_feed.group_name(room="redact")
    seqs = [await sync_to_async(group_send)(group, {"text": text}) for text in ("one", "two", "three")]
    assert seqs == [1, 2, 3]
    assert await aredact_history(group, 2) is True
    assert await sync_to_async(redact_history)(group, 3) is True
    assert [(f["seq"], f["type"], f.get("data")) for f in await aget_history(group)] == [
        (1, "message", {"text": "one"}), (2, "redacted", None), (3, "redacted", None)]
    assert await aredact_history(group, 9) is False, "no frame 9 is kept"
    with pytest.raises(TypeError, match="positive int"):
        await aredact_history(group, "2")
    with pytest.raises(RuntimeError, match="aredact_history"):
        redact_history(group, 1)
    # A client catches up through the redacted frames: no gap, no resync.
    frames = await replay_from_zero(rc.rec_feed, group, room="redact", application=rc.application)
    assert [(f["seq"], f["type"]) for f in frames] == [(1, "message"), (2, "redacted"), (3, "redacted")]


async def test_on_redis_the_deleted_text_is_gone_from_the_stream_and_it_keeps_its_expiry(settings, redis_url):
    use_layer("redis", settings, redis_url)
    group = rc.rec_feed.group_name(room="raw")
    for text in ("kept", "sensitive", "also kept"):
        await sync_to_async(group_send)(group, {"text": text})
    client = aioredis.from_url(redis_url)
    try:
        key = f"hgws:hist:{group}"
        ttl = await client.pttl(key)
        assert await aredact_history(group, 2)
        raw = json.dumps([[i.decode(), {k.decode(): v.decode() for k, v in f.items()}]
                          for i, f in await client.xrange(key)])
        assert "sensitive" not in raw and raw.count("redacted") == 1 and "also kept" in raw
        assert [i for i, _f in json.loads(raw)] == ["1-0", "2-0", "3-0"]
        assert 0 < await client.pttl(key) <= ttl
        await sync_to_async(group_send)(group, {"text": "next"})  # the counter and the stream go on as before
        assert [f["seq"] for f in await aget_history(group)] == [1, 2, 3, 4]
    finally:
        await client.aclose()


async def test_a_row_edited_many_times_keeps_one_version_in_a_bounded_history(settings):
    use_layer("memory", settings)
    memory_store().flush_sync()
    group = rc.rec_feed.group_name(room="edits")
    from hypergen_ws import model_changes

    @model_changes(Room, history=5)
    def room_groups(room: Room, change: str) -> str:
        return group

    try:
        def work() -> None:
            room = Room.objects.create(slug="edits", name="v0")
            for i in range(1, 30):
                room.name = f"v{i}"
                room.save()
        await sync_to_async(work)()
    finally:
        room_groups.disconnect()
    kept = await aget_history(group)
    assert [f["seq"] for f in kept] == [26, 27, 28, 29, 30]
    assert [f["type"] for f in kept] == ["redacted"] * 4 + ["message"]
    log = memory_store()._logs[group]
    assert len(log.tags) <= 5, "tags of entries no longer kept are forgotten"
