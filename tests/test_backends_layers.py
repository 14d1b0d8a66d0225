"""The channel layer backend (hypergen_ws.backends.layers): which layer, capacities, fast receive and local send."""
from __future__ import annotations

import asyncio
import logging

import pytest
from channels.layers import InMemoryChannelLayer, get_channel_layer

from hypergen_ws.backends import layers
from hypergen_ws.backends.layers import (HUB_MARK, bypasses_layer, get_store, hub_channel, layer_kind,
                                         prepare_layer, receive_channel, send_local, warn_fallback)
from hypergen_ws.backends.memory import memory_store
from tests.recutil import use_layer


class SubclassedLayer(InMemoryChannelLayer):
    pass


def test_layer_kind_is_decided_in_one_place(settings, redis_url):
    assert layer_kind(None) == "none" and bypasses_layer(None)
    assert layer_kind(InMemoryChannelLayer()) == "memory" and bypasses_layer(InMemoryChannelLayer())
    assert layer_kind(SubclassedLayer()) == "memory"
    use_layer("redis", settings, redis_url)
    assert layer_kind(get_channel_layer()) == "redis" and not bypasses_layer(get_channel_layer())
    use_layer("pubsub", settings, redis_url)
    assert layer_kind(get_channel_layer()) == "redis"
    assert layer_kind(object()) == "other"


def test_the_store_follows_the_layer(settings, redis_url):
    use_layer("memory", settings)
    assert get_store() is memory_store()
    use_layer("redis", settings, redis_url)
    store = get_store()
    assert store.kind == "redis" and get_store() is store, "one store per layer instance"


async def test_receive_on_the_exact_in_memory_layer_skips_its_scan_of_every_channel():
    layer = InMemoryChannelLayer()
    scans = []
    clean = layer._clean_expired
    layer._clean_expired = lambda: (scans.append(1), clean())[1]  # the canary: the scan must not run
    channel = await layer.new_channel()
    waiting = asyncio.ensure_future(receive_channel(layer, channel))
    await send_local(layer, channel, {"type": "x.y", "n": 1})
    assert await asyncio.wait_for(waiting, 2) == {"type": "x.y", "n": 1}
    assert scans == [], "the fast path is in use"
    assert channel not in layer.channels, "an empty queue is dropped again"


async def test_a_subclass_of_the_in_memory_layer_gets_the_plain_receive():
    layer = SubclassedLayer()
    scans = []
    clean = layer._clean_expired
    layer._clean_expired = lambda: (scans.append(1), clean())[1]
    channel = await layer.new_channel()
    waiting = asyncio.ensure_future(receive_channel(layer, channel))
    await send_local(layer, channel, {"type": "x.y"})
    assert await asyncio.wait_for(waiting, 2) == {"type": "x.y"}
    assert scans, "subclasses may change receive(): it is called as it is"


async def test_send_local_hands_a_message_to_a_local_pubsub_channel_without_redis(settings, redis_server):
    use_layer("pubsub", settings, redis_server.url)
    layer = get_channel_layer()
    channel = await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0.05)  # the receive is waiting
    redis_server.freeze()  # a send that needed Redis now would hang
    try:
        await asyncio.wait_for(send_local(layer, channel, {"type": "x.y", "n": 2}), 2)
        assert await asyncio.wait_for(waiting, 2) == {"type": "x.y", "n": 2}
    finally:
        redis_server.thaw()
    waiting.cancel()


async def test_hub_channels_are_marked_and_get_the_group_capacity(settings):
    settings.HYPERGEN_WS = {"GROUP_CAPACITY": 5000}
    layer = InMemoryChannelLayer()
    prepare_layer(layer)
    prepare_layer(layer)  # idempotent
    name = await hub_channel(layer)
    assert HUB_MARK in name.partition("!")[2]
    assert layer.get_capacity(name) == 5000 and layer.get_capacity(await layer.new_channel()) == 100


def test_a_fallback_is_logged_once_with_the_package_and_its_version(caplog):
    layers._warned.discard("test fast path")
    with caplog.at_level(logging.WARNING, logger="hypergen_ws"):
        warn_fallback("test fast path", "channels", "a reason")
        warn_fallback("test fast path", "channels", "a reason")
    lines = [r.getMessage() for r in caplog.records if "test fast path" in r.getMessage()]
    assert len(lines) == 1 and "channels 4." in lines[0] and "a reason" in lines[0]


async def test_send_local_on_redis_channel_layer_is_a_plain_send(settings, redis_url):
    use_layer("redis", settings, redis_url)
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await send_local(layer, channel, {"type": "x.y", "n": 3})
    assert await asyncio.wait_for(layer.receive(channel), 5) == {"type": "x.y", "n": 3}


@pytest.mark.parametrize("backend", ["redis", "pubsub"])
async def test_joining_and_leaving_a_group_run_again_when_redis_closed_the_connection(settings, redis_server, backend):
    """A restart this event loop has not seen yet (it was blocked): a plain group_add fails on the dead pooled
    connection; hypergen_ws's join (adding a member twice changes nothing) runs again on a fresh one."""
    use_layer(backend, settings, redis_server.url)
    layer = get_channel_layer()
    assert vars(layer)["_hypergen_ws_checked"]
    channel = await layer.new_channel()
    await layers.group_add(layer, "g", channel)
    redis_server.kill()
    redis_server.start()
    await layers.group_add(layer, "g", channel)
    redis_server.kill()
    redis_server.start()
    await layers.group_discard(layer, "g", channel)
    if backend == "redis":
        redis_server.kill()
        redis_server.start()
        with pytest.raises(Exception, match="Connection closed by server"):
            await layer.group_add("g", channel)  # what the retry is for
    await layer.flush()


def test_a_pubsub_layer_is_prepared_without_a_running_event_loop(settings, redis_url):
    """A sync publisher (a worker) makes the layer outside any event loop."""
    use_layer("pubsub", settings, redis_url)
    layer = get_channel_layer()
    assert [h["maint_notifications_config"].enabled for h in vars(layer)["_kwargs"]["hosts"]] == [False]
