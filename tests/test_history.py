"""Sequence numbers, epochs, history and the recovery handshake, on the in-memory layer and on a real Redis."""
from __future__ import annotations

import asyncio
import json
import random
import threading
import time

import pytest

from hypergen_ws import agroup_send, aconsumer_command, group_send
from hypergen_ws.delivery.hub import get_hub
from hypergen_ws.backends.layers import get_store
from hypergen_ws.backends.memory import MemoryStore, memory_store
from hypergen_ws.core.protocol import read_stamp, stamp, take_position, unstamp
from hypergen_ws.core.registry import history_size
from hypergen_ws.delivery.feed import deliver_sequenced
from hypergen_ws.features.history import aflush_history, aget_history, aget_position, flush_history, get_history
from hypergen_ws.testing import ConsumerCommunicator
from tests import recovery_consumers as rc
from tests.recutil import opened, use_layer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["memory", "redis"])
def layer(request, settings):
    kind = request.param
    use_layer(kind, settings, request.getfixturevalue("redis_url") if kind != "memory" else None)
    memory_store().flush_sync()
    yield kind
    memory_store().flush_sync()


def feed_group(room: str) -> str:
    return rc.rec_feed.group_name(room=room)


async def connect_synced(consumer, query: str = "", **url_kwargs) -> tuple[ConsumerCommunicator, dict]:
    comm = await opened(consumer, query=query, **url_kwargs)
    first = await comm.receive()
    assert first["type"] in ("sync", "resync"), first
    return comm, first


# ---- stamping -------------------------------------------------------------------------------------------------
def test_stamp_inserts_seq_and_epoch_once_at_the_front():
    text = '{"type":"message","data":{"seq":"not this one"}}'
    stamped = stamp(text, 42, 187364019283)
    assert stamped == '{"seq":42,"epoch":187364019283,"type":"message","data":{"seq":"not this one"}}'
    assert json.loads(stamped)["data"] == {"seq": "not this one"}
    assert read_stamp(stamped) == (42, 187364019283)
    assert read_stamp(text) is None
    assert unstamp(stamped) == text and unstamp(text) == text


def test_history_size_follows_the_consumer_and_the_per_call_override(settings):
    settings.HYPERGEN_WS = {"HISTORY_SIZE": 7}
    assert history_size(feed_group("x"), None) == 50
    assert history_size(rc.rec_short.group_name(room="x"), None) == 3
    assert history_size(rc.rec_plain.group_name(room="x"), None) == 0
    assert history_size(feed_group("x"), False) == 0
    assert history_size(rc.rec_plain.group_name(room="x"), True) == 7
    assert history_size("some.custom.group", None) == 0
    assert history_size("some.custom.group", 12) == 12
    long_room = "ü" * 300  # a hashed group name still finds its consumer
    assert history_size(rc.rec_feed.group_name(room="a" * 120), None) == 50
    assert rc.rec_feed.group_name(room="a" * 120).startswith("hgwsh.")
    assert long_room
    with pytest.raises(TypeError):
        history_size("g", "yes")


def test_every_process_starts_with_new_epochs():
    one, two = MemoryStore(), MemoryStore()
    assert one.append_sync("g", "{}", 5) == (1, one.read_sync("g", None).epoch)
    assert one.read_sync("g", None).epoch != two.read_sync("g", None).epoch


# ---- publishing with history ----------------------------------------------------------------------------------
async def test_frames_carry_seq_and_epoch_and_the_history_keeps_them(layer):
    comm, sync = await connect_synced(rc.rec_feed, room="r1")
    assert sync == {"type": "sync", "seq": 0, "epoch": sync["epoch"], "replayed": 0}
    group = feed_group("r1")
    seqs = [await agroup_send(group, {"n": i}) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    got = [await comm.receive() for _ in range(5)]
    assert [(f["seq"], f["epoch"], f["data"]) for f in got] == [(i + 1, sync["epoch"], {"n": i}) for i in range(5)]
    history = await aget_history(group)
    assert [(h["seq"], h["epoch"], h["type"], h["data"]) for h in history] == [
        (i + 1, sync["epoch"], "message", {"n": i}) for i in range(5)]
    assert await aget_position(group) == (5, sync["epoch"])
    await comm.disconnect()


async def test_consumer_results_and_commands_are_kept_too(layer):
    comm, _sync = await connect_synced(rc.rec_feed, room="r2")
    await comm.send({"args": ["hello"]})
    assert (await comm.receive()) | {"epoch": 0} == {"seq": 1, "epoch": 0, "type": "commands",
                                                  "commands": [["append", "hello"]]}
    assert await aconsumer_command(feed_group("r2"), [["x", 1]]) == 2
    assert (await comm.receive())["seq"] == 2
    assert [h["type"] for h in await aget_history(feed_group("r2"))] == ["commands", "commands"]
    await comm.disconnect()


async def test_history_is_bounded_and_per_call_override_works(layer):
    comm, _sync = await connect_synced(rc.rec_short, room="r3")
    group = rc.rec_short.group_name(room="r3")
    for i in range(5):
        await agroup_send(group, i)
    assert await agroup_send(group, "ephemeral", history=False) is None
    got = [await comm.receive() for _ in range(6)]
    assert [f.get("seq") for f in got] == [1, 2, 3, 4, 5, None]
    assert got[-1] == {"type": "message", "data": "ephemeral"}
    assert [h["data"] for h in await aget_history(group)] == [2, 3, 4]
    # history=True on a group whose consumer keeps none
    plain = rc.rec_plain.group_name(room="r3")
    assert await agroup_send(plain, "kept", history=True) == 1
    assert [h["data"] for h in await aget_history(plain)] == ["kept"]
    await comm.disconnect()


async def test_history_older_than_history_ttl_is_not_returned_nor_replayed(layer, settings):
    group = feed_group("ttl")
    await agroup_send(group, "old")
    settings.HYPERGEN_WS = {"HISTORY_TTL": 0}
    await asyncio.sleep(0.01)
    assert await aget_history(group) == []
    seq, epoch = await aget_position(group)
    assert seq == 1
    comm, first = await connect_synced(rc.rec_feed, room="ttl", query=f"hgws_seq=0&hgws_epoch={epoch}")
    assert first["type"] == "resync" and first["reason"] == "too_far_behind"
    await comm.disconnect()


async def test_flush_history_starts_a_new_epoch(layer):
    group = feed_group("flush")
    await agroup_send(group, 1)
    _seq, old_epoch = await aget_position(group)
    await aflush_history(group)
    assert await aget_history(group) == []
    await agroup_send(group, 2)
    seq, epoch = await aget_position(group)
    assert (seq, epoch != old_epoch) == (1, True)
    await aflush_history()
    assert (await aget_position(group))[0] == 0


def test_sync_api_from_plain_code(settings):
    use_layer("memory", settings)
    group = feed_group("sync-api")
    flush_history(group)
    assert group_send(group, "a") == 1 and group_send(group, "b") == 2
    assert [h["data"] for h in get_history(group)] == ["a", "b"]
    flush_history()
    assert get_history(group) == []


async def test_sync_api_refuses_a_running_loop(settings):
    with pytest.raises(RuntimeError, match="aget_history"):
        get_history("g")


# ---- recovery -------------------------------------------------------------------------------------------------
async def test_reconnect_with_last_seq_replays_the_missed_frames_then_goes_live(layer):
    group = feed_group("rc")
    comm, sync = await connect_synced(rc.rec_feed, room="rc")
    epoch = sync["epoch"]
    for i in range(3):
        await agroup_send(group, i)
    assert [f["seq"] for f in [await comm.receive() for _ in range(3)]] == [1, 2, 3]
    await comm.disconnect()
    for i in range(3, 7):
        await agroup_send(group, i)
    comm, sync = await connect_synced(rc.rec_feed, room="rc", query=f"hgws_seq=3&hgws_epoch={epoch}")
    assert sync == {"type": "sync", "seq": 3, "epoch": epoch, "replayed": 4}
    replay = [await comm.receive() for _ in range(4)]
    assert [(f["seq"], f["data"]) for f in replay] == [(4, 3), (5, 4), (6, 5), (7, 6)]
    await agroup_send(group, "live")
    assert (await comm.receive())["seq"] == 8
    await comm.assert_nothing()
    await comm.disconnect()


async def test_a_client_that_is_up_to_date_gets_sync_and_nothing_else(layer):
    group = feed_group("uptodate")
    await agroup_send(group, 1)
    seq, epoch = await aget_position(group)
    comm, sync = await connect_synced(rc.rec_feed, room="uptodate", query=f"hgws_seq={seq}&hgws_epoch={epoch}")
    assert sync["replayed"] == 0 and sync["seq"] == 1
    await comm.assert_nothing()
    await comm.disconnect()


@pytest.mark.parametrize("case", ["too_far_behind", "epoch_changed", "unknown_position", "beyond_any_stream_id",
                                  "epoch_beyond_2_48"])
async def test_resync_when_the_missed_frames_are_gone(layer, case, caplog):
    group = rc.rec_short.group_name(room=case)
    for i in range(6):
        await agroup_send(group, i)
    seq, epoch = await aget_position(group)
    position = {"too_far_behind": (1, epoch), "epoch_changed": (5, epoch + 1), "unknown_position": (99, epoch),
                # past Redis's largest stream id (2**64 - 1): the same answer on every layer, without a store error
                "beyond_any_stream_id": (10**30, epoch), "epoch_beyond_2_48": (3, 10**30)}[case]
    reason = {"beyond_any_stream_id": "unknown_position", "epoch_beyond_2_48": "epoch_changed"}.get(case, case)
    caplog.set_level("INFO", "hypergen_ws")
    comm, first = await connect_synced(rc.rec_short, room=case,
                                       query=f"hgws_seq={position[0]}&hgws_epoch={position[1]}")
    assert first == {"type": "resync", "reason": reason, "seq": seq, "epoch": epoch}
    assert [r.getMessage() for r in caplog.records if r.levelno >= 30] == []
    assert not any(r.exc_info for r in caplog.records)
    await agroup_send(group, "after")
    assert (await comm.receive())["seq"] == seq + 1
    await comm.disconnect()


async def test_the_position_is_taken_out_of_the_query_string(layer):
    scope = {"query_string": b"team=red&hgws_seq=4&hgws_epoch=77&x=1"}
    assert take_position(scope) == (4, 77)
    assert scope["query_string"] == b"team=red&x=1"
    for bad in (b"hgws_seq=x&hgws_epoch=1", b"hgws_seq=1", b"hgws_seq=-1&hgws_epoch=3", b"hgws_seq=1&hgws_epoch=0"):
        scope = {"query_string": bad}
        assert take_position(scope) is None and b"hgws_" not in scope["query_string"]
    # a consumer deriving its group from the query string never sees the parameters
    comm, sync = await connect_synced(rc.rec_custom, query="team=red&hgws_seq=0&hgws_epoch=5")
    assert sync["type"] == "resync"
    await agroup_send("rec.custom.team-red", "hi")
    assert (await comm.receive())["data"] == "hi"
    await comm.disconnect()


async def test_frames_of_groups_joined_later_arrive_without_seq(layer):
    comm, _sync = await connect_synced(rc.rec_custom, query="t=1")
    await comm.send({"args": ["news"]})
    assert (await comm.receive())["commands"] == [["joined", "news"]]
    assert await agroup_send("rec.topic.news", "n1", history=True) == 1
    assert await comm.receive() == {"type": "message", "data": "n1"}
    assert (await agroup_send("rec.custom.t-1", "own")) == 2
    assert (await comm.receive())["seq"] == 2
    await comm.disconnect()


async def test_no_gap_and_no_duplicate_while_publishes_race_the_replay(layer):
    """Clients reconnect at random moments of a stream of publishes: each sees every frame once, in order."""
    group = feed_group("race")
    total, clients = 150, 6
    comms = [await connect_synced(rc.rec_feed, room="race") for _ in range(clients)]
    seen: list[list[int]] = [[] for _ in range(clients)]
    epoch = comms[0][1]["epoch"]
    done = asyncio.Event()

    async def publisher() -> None:
        for i in range(total):
            await agroup_send(group, i)
            await asyncio.sleep(0.003 if i % 3 == 0 else 0)
        done.set()

    async def client(n: int) -> None:
        comm = comms[n][0]
        rng = random.Random(n)
        reconnects = 0
        while not seen[n] or seen[n][-1] < total:  # a lost frame fails receive(); a duplicate, the check below
            f = await comm.receive()
            assert f["epoch"] == epoch
            seen[n].append(f["seq"])
            if reconnects < 3 and not done.is_set() and rng.random() < 0.05:  # frames may wait unread meanwhile
                await comm.disconnect()
                last = seen[n][-1]
                comm, sync = await connect_synced(rc.rec_feed, room="race", query=f"hgws_seq={last}&hgws_epoch={epoch}")
                assert sync["type"] == "sync" and sync["seq"] == last
                reconnects += 1
        await comm.assert_nothing(0.3)  # no copy after the last frame
        await comm.disconnect()

    await asyncio.gather(publisher(), *(client(n) for n in range(clients)))
    for n in range(clients):
        assert seen[n] == list(range(1, total + 1)), f"client {n}"


def test_sync_publishers_in_threads_keep_seq_order_per_socket(settings):
    """Threads publish at once (in-memory layer): every socket gets seq 1..N in order."""
    use_layer("memory", settings)
    memory_store().flush_sync()
    from asgiref.sync import async_to_sync

    group = feed_group("threads")
    result: list[list[int]] = []

    async def scenario() -> None:
        comms = [(await connect_synced(rc.rec_feed, room="threads"))[0] for _ in range(3)]

        def worker(k: int) -> None:
            for i in range(50):
                group_send(group, [k, i])

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(None, t.run) for t in threads))
        for comm in comms:
            result.append([f["seq"] for f in await comm.receive_all()])
            await comm.disconnect()

    async_to_sync(scenario)()
    assert result == [list(range(1, 201))] * 3


async def test_frames_that_cross_the_layer_out_of_order_are_delivered_in_order_once(settings, redis_url):
    use_layer("redis", settings, redis_url)
    group = feed_group("reorder")
    comm, sync = await connect_synced(rc.rec_feed, room="reorder")
    store = get_store()
    texts = {}
    for i in range(1, 4):
        seq, epoch = await store.append(group, json.dumps({"type": "message", "data": i}, separators=(",", ":")), 50)
        texts[seq] = stamp(json.dumps({"type": "message", "data": i}, separators=(",", ":")), seq, epoch)
    hub = get_hub()
    for seq in (1, 3, 2, 3):  # 2 is overtaken by 3, and 3 arrives twice
        await deliver_sequenced(hub.feed(group), {"text": texts[seq], "seq": seq, "epoch": sync["epoch"]})
    got = await comm.receive_all()
    assert [f["seq"] for f in got] == [1, 2, 3]
    await comm.disconnect()


async def test_publishers_get_an_error_not_a_hang_when_redis_is_down(settings, redis_server):
    use_layer("redis", settings, redis_server.url)
    settings.HYPERGEN_WS = {"PUBLISH_TIMEOUT": 2}
    group = feed_group("down")
    assert await agroup_send(group, "up") == 1
    redis_server.kill()
    with pytest.raises((ConnectionError, TimeoutError)) as info:  # an error, not a hang (pytest-timeout)
        await agroup_send(group, "down")
    assert "Redis" in str(info.value), "the error says what to check"
    redis_server.start()
    assert await publish_again(lambda: agroup_send(group, "back")) >= 1
    history = await aget_history(group)
    assert "up" not in [h["data"] for h in history] and history[-1]["data"] == "back", "a new epoch after the restart"


async def publish_again(publish, attempts: int = 5):
    """Publish after a Redis restart: the first try may meet a pooled connection the restart closed."""
    for attempt in range(attempts):
        try:
            return await publish()
        except Exception:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.2)


def test_sync_publisher_gets_an_error_within_the_timeout_when_redis_is_down(settings, redis_server):
    use_layer("redis", settings, redis_server.url)
    settings.HYPERGEN_WS = {"PUBLISH_TIMEOUT": 2}
    group = feed_group("down-sync")
    assert group_send(group, "up") == 1
    redis_server.kill()
    with pytest.raises((ConnectionError, TimeoutError)) as info:  # an error, not a hang (pytest-timeout)
        group_send(group, "down")
    assert "Redis" in str(info.value), "the error says what to check"
    redis_server.start()
    for attempt in range(5):
        try:
            assert group_send(group, "back") >= 1
            break
        except Exception:
            if attempt == 4:
                raise
            time.sleep(0.2)


async def test_a_room_nothing_was_published_to_keeps_no_record_once_its_last_member_left(settings):
    from hypergen_ws.backends.base import EMPTY_RECORD_TTL

    use_layer("memory", settings)
    store = memory_store()
    store.flush_sync()
    first = await opened(rc.rec_feed, room="quiet")
    second = await opened(rc.rec_feed, room="quiet")
    epoch = (await first.receive())["epoch"]
    assert (await second.receive())["epoch"] == epoch
    store._sweep(time.time() + 2 * EMPTY_RECORD_TTL)  # members keep the record (and its epoch) however quiet
    assert feed_group("quiet") in store.groups()
    await first.disconnect()
    assert feed_group("quiet") in store.groups(), "a member is left"
    await second.disconnect()
    assert feed_group("quiet") not in store.groups(), "the last member is gone and nothing was published"
    talked = await opened(rc.rec_feed, room="talked")
    await talked.receive()
    await agroup_send(feed_group("talked"), "kept")
    await talked.disconnect()
    assert feed_group("talked") in store.groups(), "a room with history keeps it"
    await aget_position(feed_group("rendered"))  # a page rendered the position; nobody ever connected
    store._sweep(time.time() + EMPTY_RECORD_TTL + 1)
    assert store.groups() == [feed_group("talked")]


async def test_a_forged_frame_far_ahead_gets_a_resync_and_does_not_silence_the_group(settings, redis_url):
    """A frame on the channel layer whose seq the history never reached is skipped; the followers get a resync,
    and the frames after it are delivered (they used to look like late copies, dropped for good)."""
    from channels.layers import get_channel_layer

    from hypergen_ws.delivery.hub import FRAME_TYPE

    use_layer("redis", settings, redis_url)
    group = feed_group("forged")
    comm, sync = await connect_synced(rc.rec_feed, room="forged")
    assert await agroup_send(group, "one") == 1
    assert [f["data"] for f in [await comm.receive() for _ in range(1)]] == ["one"]
    forged = 10**9
    await get_channel_layer().group_send(group, {"type": FRAME_TYPE, "seq": forged, "epoch": sync["epoch"],
                                                 "text": stamp('{"type":"message","data":"forged"}', forged,
                                                               sync["epoch"])})
    resync = await comm.receive()
    assert resync == {"type": "resync", "reason": "out_of_sequence", "seq": 1, "epoch": sync["epoch"]}
    assert await agroup_send(group, "two") == 2
    assert [(f["seq"], f["data"]) for f in [await comm.receive() for _ in range(1)]] == [(2, "two")]
    # A new feed (no socket in the group had a stamped frame yet) checks its first frame too.
    other, other_sync = await connect_synced(rc.rec_feed, room="forged2")
    await get_channel_layer().group_send(feed_group("forged2"), {
        "type": FRAME_TYPE, "seq": 5, "epoch": other_sync["epoch"],
        "text": stamp('{"type":"message","data":"forged"}', 5, other_sync["epoch"])})
    assert (await other.receive())["reason"] == "out_of_sequence"
    assert await agroup_send(feed_group("forged2"), "real") == 1
    assert [(f["seq"], f["data"]) for f in [await other.receive() for _ in range(1)]] == [(1, "real")]
    for c in (comm, other):
        await c.disconnect()


async def test_a_new_socket_gets_every_frame_published_after_it_joined_even_before_the_history_read(settings):
    """Frames published between the join and the catch-up read are neither lost nor sent twice."""
    from hypergen_ws.core.state import ConnectionState
    from hypergen_ws.delivery.hub import Hub
    from hypergen_ws.features.history import catch_up
    from tests.support.sockets import Socket, started_outbox

    use_layer("memory", settings)
    memory_store().flush_sync()

    class Conn:
        label = "tests.conn"
        keeps_history = True
        channel_name = "specific.tests!conn"

        def __init__(self, hub: Hub) -> None:
            self.hub = hub
            self.state = ConnectionState()
            self.sent: list[str] = []
            self.outbox = started_outbox(Socket())

        def send_text(self, text: str) -> None:
            self.sent.append(text)

    hub = Hub(asyncio.get_running_loop(), None)
    conn = Conn(hub)
    group = "hgws.tests.joined_early"
    hub.members[group] = {conn}
    hub.feed(group).hold(conn)
    for i in range(2):  # published and delivered (held) before the read below
        seq, epoch = memory_store().append_sync(group, f'{{"type":"message","data":{i}}}', 10)
        hub.feed(group).deliver(seq, epoch, stamp(f'{{"type":"message","data":{i}}}', seq, epoch))
    await catch_up(conn, group, None)
    frames = [json.loads(text) for text in conn.sent]
    assert frames[0]["type"] == "sync" and frames[0]["seq"] == 0
    assert [f["data"] for f in frames[1:]] == [0, 1]
    hub.feed(group).deliver(2, epoch, stamp('{"type":"message","data":1}', 2, epoch))  # a late copy
    assert len(conn.sent) == 3
