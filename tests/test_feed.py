"""Stamped frames in seq order and once (hypergen_ws.delivery.feed): gaps, late copies, held and floored sockets."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hypergen_ws.core.protocol import stamp
from hypergen_ws.delivery.feed import Feed


class FakeHub:
    """Records what the feed hands to the hub's writer."""

    layer = None

    def __init__(self, members: set[Any]) -> None:
        self.members = {"g": members}
        self.written: list[tuple[str, frozenset[Any]]] = []

    @property
    def engine(self) -> Any:
        from hypergen_ws.backends.layers import get_engine

        return get_engine(self.layer)

    def member_set(self, group: str) -> set[Any] | None:
        return self.members.get(group)

    def deliver_text(self, group: str, text: str, skip: Iterable[Any] = (), published: float | None = None) -> int:
        left_out = frozenset(skip)
        self.written.append((text, left_out))
        return len(self.members[group] - left_out)


def frame(seq: int, epoch: int = 7) -> str:
    return stamp('{"type":"message","data":%d}' % seq, seq, epoch)


def test_frames_are_written_once_and_late_copies_dropped():
    hub = FakeHub({"a", "b"})
    feed = Feed(hub, "g")
    for seq in (1, 2, 2, 1, 3):
        feed.deliver(seq, 7, frame(seq))
    assert [text for text, _skip in hub.written] == [frame(1), frame(2), frame(3)]
    assert feed.is_behind(5, 7) and not feed.is_behind(4, 7) and not feed.is_behind(9, 8)


def test_a_held_socket_gets_nothing_live_until_released_and_the_others_get_everything():
    hub = FakeHub({"a", "b"})
    feed = Feed(hub, "g")
    feed.hold("a")
    feed.deliver(1, 7, frame(1))
    feed.deliver(2, 7, frame(2))
    assert hub.written == [(frame(1), frozenset({"a"})), (frame(2), frozenset({"a"}))]
    assert feed.release("a") == [(1, 7, frame(1)), (2, 7, frame(2))] and feed.release("a") == []
    feed.deliver(3, 7, frame(3))
    assert hub.written[-1] == (frame(3), frozenset())


def test_a_floor_skips_what_the_socket_was_replayed_then_goes_away():
    hub = FakeHub({"a", "b"})
    feed = Feed(hub, "g")
    feed.floors["a"] = (2, 7)
    feed.deliver(2, 7, frame(2))
    feed.deliver(3, 7, frame(3))
    assert hub.written == [(frame(2), frozenset({"a"})), (frame(3), frozenset())]
    assert "a" not in feed.floors


def test_forget_drops_a_gone_socket():
    feed = Feed(FakeHub({"a"}), "g")
    feed.hold("a")
    feed.floors["a"] = (1, 7)
    feed.forget("a")
    assert feed.holds == {} and feed.floors == {}


async def test_a_late_frame_of_an_epoch_the_feed_left_is_dropped_unless_the_history_went_back_to_it():
    """After a loss or a failover the feed moves to a new epoch; a channel-layer message of the old history that a
    promoted replica still had comes late: it is no live frame. If the history itself went back to that epoch
    (a replica promoted with an old copy), its frames are live again."""
    from hypergen_ws.backends.layers import get_store
    from hypergen_ws.delivery.feed import deliver_sequenced

    store = get_store()
    group = "feed.retired.test"
    await store.flush(group)
    seq, old = await store.append(group, '{"type":"message","data":1}', 10)
    hub = FakeHub({"a"})
    hub.members[group] = {"a"}
    feed = Feed(hub, group)
    await deliver_sequenced(feed, {"seq": seq, "epoch": old, "text": frame(seq, old)})
    feed.move_to(old + 1, 1)  # the history was lost: a new epoch
    assert feed.retired == [old]
    await store.flush(group)
    await store.append(group, '{"type":"message","data":1}', 10)  # the store is in a new epoch now
    await deliver_sequenced(feed, {"seq": seq + 1, "epoch": old, "text": frame(seq + 1, old)})
    assert [text for text, _ in hub.written] == [frame(seq, old)], "the late frame was dropped"
    await store.flush(group)
    seq, again = await store.append(group, '{"type":"message","data":1}', 10)
    feed.retired.append(again)  # as if the store went back to an epoch the feed had left
    await deliver_sequenced(feed, {"seq": seq, "epoch": again, "text": frame(seq, again)})
    assert hub.written[-1][0] == frame(seq, again) and again not in feed.retired and feed.epoch == again
    await store.flush(group)
