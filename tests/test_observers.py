"""hypergen_ws.core.observers: listeners on the publish path."""
from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from hypergen_ws import agroup_send, consumer_command, group_send
from hypergen_ws.core import observers
from hypergen_ws.testing.fixtures import CommunicatorFactory
from tests import sample_consumers as sc
from tests.wsutil import application

GROUP = sc.echo.group_name(room="observed")


@pytest.fixture
def seen() -> Iterator[list[observers.Publish]]:
    records: list[observers.Publish] = []
    observers.add_listener(records.append)
    yield records
    observers.remove_listener(records.append)


def test_every_publish_is_shown_once_with_its_group_and_encoded_frame(seen: list[observers.Publish]) -> None:
    group_send(GROUP, {"text": "hé"})
    consumer_command(GROUP, [["alert", 1]])
    assert seen == [observers.Publish(GROUP, '{"type":"message","data":{"text":"hé"}}'),
                    observers.Publish(GROUP, '{"type":"commands","commands":[["alert",1]]}')]


def test_frames_kept_in_history_are_shown_without_their_stamp(seen: list[observers.Publish]) -> None:
    group_send(GROUP, "kept", history=5)
    assert seen == [observers.Publish(GROUP, '{"type":"message","data":"kept"}')]


def test_listeners_run_in_order_and_stop_when_removed() -> None:
    calls: list[str] = []

    def first(record: observers.Publish) -> None:
        calls.append("first")

    def second(record: observers.Publish) -> None:
        calls.append("second")

    observers.add_listener(first)
    observers.add_listener(second)
    try:
        assert observers.listeners()[-2:] == (first, second)
        group_send(GROUP, 1)
        observers.remove_listener(first)
        group_send(GROUP, 2)
    finally:
        observers.remove_listener(second)
    assert calls == ["first", "second", "second"]
    assert first not in observers.listeners() and second not in observers.listeners()


@pytest.mark.django_db(transaction=True)
async def test_a_failing_listener_is_logged_and_the_publish_goes_on(
        hgws_communicator: CommunicatorFactory, caplog: pytest.LogCaptureFixture) -> None:
    def broken(record: observers.Publish) -> None:
        raise ValueError("listener bug")

    observers.add_listener(broken)
    try:
        async with hgws_communicator(sc.echo, application=application, room="observed") as comm:
            with caplog.at_level(logging.ERROR, logger="hypergen_ws"):
                await agroup_send(GROUP, "still delivered")
            assert await comm.receive_message() == "still delivered"
    finally:
        observers.remove_listener(broken)
    [record] = [r for r in caplog.records if "publish listener" in r.getMessage()]
    assert f"failed on a publish to {GROUP}; the publish goes on" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is ValueError
    assert (record.event, record.group) == ("publish_listener_failed", GROUP)  # type: ignore[attr-defined]


def test_adding_a_non_callable_or_removing_an_unknown_listener_says_what_to_do() -> None:
    with pytest.raises(TypeError, match="add_listener\\(\\) takes a callable taking one Publish record, not 42"):
        observers.add_listener(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="is not a publish listener; add it with add_listener\\(\\) first"):
        observers.remove_listener(print)
