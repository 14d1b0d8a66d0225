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
