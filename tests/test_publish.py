"""group_send / consumer_command and their async variants, from every kind of caller, on every layer."""
from __future__ import annotations

import asyncio
import datetime
import threading

import pytest
from asgiref.sync import sync_to_async

from hypergen_ws import aconsumer_command, agroup_send, command, consumer_command, group_send
from tests import sample_consumers as sc
from tests.wsutil import connect, receive

pytestmark = pytest.mark.django_db(transaction=True)

GROUP = sc.echo.group_name(room="pub")


async def test_sync_publishers_refuse_a_running_loop_and_name_the_async_variant():
    with pytest.raises(RuntimeError, match=r"await agroup_send\(\.\.\.\)"):
        group_send(GROUP, {"a": 1})
    with pytest.raises(RuntimeError, match=r"await aconsumer_command\(\.\.\.\)"):
        consumer_command(GROUP, [["alert", 1]])


@pytest.mark.parametrize("payload", [{"when": datetime.datetime(2024, 1, 1)}, {1, 2}, float("nan"), object()])
async def test_non_json_payload_fails_at_the_call(payload):
    with pytest.raises(TypeError, match="must be JSON"):
        await agroup_send(GROUP, payload)


def test_non_json_payload_fails_at_the_sync_call():
    with pytest.raises(TypeError, match="Convert the value first"):
        group_send(GROUP, {"when": datetime.date.today()})


@pytest.mark.parametrize("commands", ["alert", [["alert"], "x"], [[]], [[1]]])
def test_bad_commands_fail_at_the_call(commands):
    with pytest.raises(TypeError, match="(?i)command"):
        consumer_command(GROUP, commands)


def test_bad_group_names_fail_at_the_call():
    with pytest.raises(ValueError, match="Invalid group name"):
        group_send("has spaces", 1)
    with pytest.raises(TypeError, match=r"\.group_name\(room_name='lobby'\)"):
        group_send(sc.echo, 1)


def test_command_outside_a_consumer_call():
    with pytest.raises(RuntimeError, match="consumer_command"):
        command("alert", 1)


async def test_async_publishers_reach_every_member():
    a = await connect("/ws/tests/echo/pub/")
    b = await connect("/ws/tests/echo/pub/")
    await agroup_send(GROUP, {"text": "ünï"})
    await aconsumer_command(GROUP, [["alert", 42]])
    for comm in (a, b):
        assert await receive(comm) == {"type": "message", "data": {"text": "ünï"}}
        assert await receive(comm) == {"type": "commands", "commands": [["alert", 42]]}
    await a.disconnect()
    await b.disconnect()


async def test_sync_publisher_in_a_plain_thread_and_in_a_sync_view():
    a = await connect("/ws/tests/echo/pub/")

    def from_thread():
        for i in range(50):
            group_send(GROUP, i)

    thread = threading.Thread(target=from_thread)
    thread.start()
    await asyncio.get_running_loop().run_in_executor(None, thread.join)
    assert [(await receive(a))["data"] for _ in range(50)] == list(range(50))

    def sync_view():
        consumer_command(GROUP, [["from-view"]])

    await sync_to_async(sync_view)()
    assert (await receive(a))["commands"] == [["from-view"]]
    await a.disconnect()


async def test_redis_layer_refuses_non_json_like_memory(redis_layer):
    with pytest.raises(TypeError, match="must be JSON"):
        await agroup_send(GROUP, {"when": datetime.date.today()})


async def test_redis_layer_async_and_threaded_sync_publishers(redis_layer, redis_server):
    a = await connect("/ws/tests/echo/pub/")
    b = await connect("/ws/tests/echo/pub/")
    await agroup_send(GROUP, "first")
    assert (await receive(a))["data"] == "first"
    assert (await receive(b))["data"] == "first"

    def worker():  # like a task worker: many calls, no event loop of its own
        for i in range(300):
            group_send(GROUP, i)

    thread = threading.Thread(target=worker)
    thread.start()
    await asyncio.get_running_loop().run_in_executor(None, thread.join)
    for comm in (a, b):
        assert [(await receive(comm))["data"] for _ in range(300)] == list(range(300))
    import redis

    clients = redis.Redis.from_url(redis_layer).client_list()
    assert len(clients) < 20, f"publishing 300 times must reuse connections, saw {len(clients)}"
    await a.disconnect()
    await b.disconnect()
