"""hypergen_ws.testing.reset(): nothing of one test is left for the next."""
from __future__ import annotations

import pytest
from channels.layers import get_channel_layer

from hypergen_ws import aget_groups, aget_history, aget_presence, agroup_send, get_groups, get_history, stats
from hypergen_ws.core.registry import declared_size, remember_group
from hypergen_ws.testing import reset
from hypergen_ws.testing.fixtures import CommunicatorFactory
from tests import recovery_consumers as rc

pytestmark = pytest.mark.django_db(transaction=True)


async def test_reset_forgets_groups_history_presence_counters_and_the_layer(
        hgws_communicator: CommunicatorFactory) -> None:
    room = rc.rec_room.group_name(room="lobby")
    async with hgws_communicator(rc.rec_room, application=rc.application, room="lobby") as comm:
        await agroup_send(room, "kept", history=10)
        assert await comm.receive_message() == "kept"
        assert await aget_groups() == {room: 1}
        assert [frame["data"] for frame in await aget_history(room)] == ["kept"]
        assert len(await aget_presence(room)) == 1
        assert stats.snapshot()["groups"][room]["connections"] == 1
        layer = get_channel_layer()
        reset()
        assert await aget_groups() == {}
        assert await aget_history(room) == []
        assert await aget_presence(room) == []
        assert stats.snapshot()["consumers"] == {} and stats.snapshot()["groups"] == {}
        assert get_channel_layer() is not layer


def test_reset_forgets_the_history_sizes_remembered_for_groups() -> None:
    group = "hgws.tests.remembered"
    remember_group(group, 7)
    assert declared_size(group) == 7
    reset()
    assert declared_size(group) == 0


def test_reset_outside_an_event_loop_leaves_a_working_process() -> None:
    reset()
    assert get_groups() == {}
    assert get_history("hgws.tests.nothing") == []
