"""group_send / consumer_command and their async variants, from every kind of caller, on every layer."""
from __future__ import annotations

import asyncio
import datetime
import threading
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from hypergen_ws import aconsumer_command, agroup_send, command, consumer_command, group_send
from hypergen_ws.testing.fixtures import CommunicatorFactory
from tests import sample_consumers as sc
from tests.wsutil import application

pytestmark = pytest.mark.django_db(transaction=True)

GROUP = sc.echo.group_name(room="pub")


@pytest.fixture
def hgws_application() -> Any:
    return application


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


async def test_async_publishers_reach_every_member(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.echo, room="pub") as a, hgws_communicator(sc.echo, room="pub") as b:
        await agroup_send(GROUP, {"text": "ünï"})
        await aconsumer_command(GROUP, [["alert", 42]])
        for comm in (a, b):
            assert await comm.receive() == {"type": "message", "data": {"text": "ünï"}}
            assert await comm.receive() == {"type": "commands", "commands": [["alert", 42]]}


async def test_sync_publisher_in_a_plain_thread_and_in_a_sync_view(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(sc.echo, room="pub") as a:
        def from_thread() -> None:
            for i in range(50):
                group_send(GROUP, i)

        thread = threading.Thread(target=from_thread)
        thread.start()
        await asyncio.get_running_loop().run_in_executor(None, thread.join)
        assert [await a.receive_message() for _ in range(50)] == list(range(50))

        def sync_view() -> None:
            consumer_command(GROUP, [["from-view"]])

        await sync_to_async(sync_view)()
        assert await a.receive_commands() == [["from-view"]]


async def test_redis_layer_refuses_non_json_like_memory(redis_layer):
    with pytest.raises(TypeError, match="must be JSON"):
        await agroup_send(GROUP, {"when": datetime.date.today()})


@pytest.mark.parametrize("layer", ["memory", "redis"])
async def test_dict_keys_that_are_not_strings_fail_at_the_call_and_publish_nothing(
        layer: str, request: pytest.FixtureRequest, hgws_communicator: CommunicatorFactory) -> None:
    if layer == "redis":
        request.getfixturevalue("redis_layer")
    async with hgws_communicator(sc.echo, room="pub") as member:
        for key in (1, None, 1.5, True):
            for payload in ({key: "x"}, {"nested": [{"ok": 1, key: "x"}]}):
                with pytest.raises(TypeError, match=f"dict key {key!r} \\({type(key).__name__}\\)"):
                    await agroup_send(GROUP, payload)
            with pytest.raises(TypeError, match="object keys are strings"):
                await sync_to_async(consumer_command)(GROUP, [["render", {key: "x"}]])
        await agroup_send(GROUP, {"1": "a string key"})
        assert await member.receive() == {"type": "message", "data": {"1": "a string key"}}  # the only frame
        await member.assert_nothing()


async def test_redis_layer_async_and_threaded_sync_publishers(
        hgws_communicator: CommunicatorFactory, redis_layer: str, redis_server: Any) -> None:
    async with hgws_communicator(sc.echo, room="pub") as a, hgws_communicator(sc.echo, room="pub") as b:
        await agroup_send(GROUP, "first")
        assert await a.receive_message() == "first"
        assert await b.receive_message() == "first"

        def worker() -> None:  # like a task worker: many calls, no event loop of its own
            for i in range(300):
                group_send(GROUP, i)

        thread = threading.Thread(target=worker)
        thread.start()
        await asyncio.get_running_loop().run_in_executor(None, thread.join)
        for comm in (a, b):
            assert [await comm.receive_message() for _ in range(300)] == list(range(300))
        import redis

        clients = redis.Redis.from_url(redis_layer).client_list()
        assert len(clients) < 20, f"publishing 300 times must reuse connections, saw {len(clients)}"
