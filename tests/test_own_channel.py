"""A socket's own channel-layer channel: made at connect where a class has layer handlers, else on first read."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from channels.layers import channel_layers, get_channel_layer

from hypergen_ws.delivery.hub import get_hub
from hypergen_ws.testing import ConsumerCommunicator
from tests import sample_consumers as sc
from tests.wsutil import application

LAYERS = ["memory", "redis"]
pytestmark = pytest.mark.django_db(transaction=True)  # the sync consumer closes stale database connections


@pytest.fixture(params=LAYERS)
def layer_kind(request: pytest.FixtureRequest, settings: Any) -> str:
    if request.param == "memory":
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    else:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {
            "hosts": [{"address": request.getfixturevalue("redis_url"), "socket_timeout": None}]}}}
    channel_layers.backends.clear()
    return str(request.param)


async def connect(consumer: Any) -> ConsumerCommunicator:
    comm = ConsumerCommunicator(consumer, application=application)
    assert await comm.connect()
    return comm


def member(consumer: Any, comm_count: int) -> Any:
    members = list(get_hub().members[consumer.group_name()])
    assert len(members) == comm_count
    return members[-1]


async def tasks_of_one_more_socket(consumer: Any) -> tuple[int, ConsumerCommunicator]:
    before = len(asyncio.all_tasks())
    comm = await connect(consumer)
    await asyncio.sleep(0.05)  # let every task the connect started begin
    return len(asyncio.all_tasks()) - before, comm


async def test_a_socket_without_layer_handlers_runs_in_two_fewer_tasks(layer_kind: str) -> None:
    # the first socket of each consumer starts its group's reader in the hub; the second is measured
    first_plain, first_handled = await connect(sc.counter), await connect(sc.with_handlers)
    plain_tasks, plain = await tasks_of_one_more_socket(sc.counter)
    handled_tasks, handled = await tasks_of_one_more_socket(sc.with_handlers)
    # Channels: a task per source and a wait; channels_redis adds the tasks of its receive on top
    expected = 2 if layer_kind == "memory" else 4
    assert handled_tasks - plain_tasks == expected, (plain_tasks, handled_tasks)
    for comm in (first_plain, first_handled, plain, handled):
        await comm.disconnect()


async def test_the_in_memory_layer_keeps_no_queue_for_a_socket_nothing_can_send_to(settings: Any) -> None:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    layer = get_channel_layer()
    first = await connect(sc.counter)
    queues = set(layer.channels)
    earlier = set(get_hub().members[sc.counter.group_name()])
    second = await connect(sc.counter)
    await asyncio.sleep(0.05)
    assert set(layer.channels) == queues, "a second plain socket made a queue"
    (instance,) = set(get_hub().members[sc.counter.group_name()]) - earlier
    name = instance.channel_name  # reading it makes the channel, and its queue once waited on
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while name not in layer.channels and loop.time() < deadline:
        await asyncio.sleep(0.01)
    assert name in layer.channels
    await second.disconnect()
    deadline = loop.time() + 5
    while name in layer.channels and loop.time() < deadline:
        await asyncio.sleep(0.01)  # the socket's coroutine ends after the disconnect is handed to it
    assert name not in layer.channels, "the queue went with its socket"
    await first.disconnect()


async def test_a_channel_made_on_first_read_receives_like_channels_own(layer_kind: str, caplog: Any) -> None:
    comm = await connect(sc.counter)
    instance = member(sc.counter, 1)
    name = instance.channel_name
    assert name == instance.channel_name, "the name is made once"
    assert "!" in name, "a process-local channel name, as the layer's new_channel() makes"
    with caplog.at_level(logging.WARNING, logger="hypergen_ws"):
        await get_channel_layer().send(name, {"type": "chat.note", "text": "direct"})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while not any("define a method 'chat_note'" in r.getMessage() for r in caplog.records) \
                and loop.time() < deadline:
            await asyncio.sleep(0.01)
    assert any("define a method 'chat_note'" in r.getMessage() for r in caplog.records)
    await comm.assert_nothing()
    result = await comm.call(3)
    assert result.reply is not None and result.reply["type"] == "reply"  # the socket still serves calls
    await comm.disconnect()


async def test_direct_send_and_plain_group_send_reach_a_subclass_s_handlers(layer_kind: str) -> None:
    comm = await connect(sc.with_handlers)
    instance = member(sc.with_handlers, 1)
    layer = get_channel_layer()
    await layer.send(instance.channel_name, {"type": "chat.note", "text": "to one"})
    assert await comm.receive() == {"type": "note", "text": "to one"}
    await layer.group_send(sc.with_handlers.group_name(), {"type": "chat.note", "text": "to all"})
    assert await comm.receive() == {"type": "note", "text": "to all"}
    await comm.disconnect()
