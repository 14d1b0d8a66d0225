"""Helpers of the socket tests: the channel layer, sockets opened by hand, the close, a second process."""
from __future__ import annotations

from typing import Any

import pytest
from channels.layers import channel_layers

from hypergen_ws.decorators import Consumer
from hypergen_ws.testing import ConsumerCommunicator, SocketClosed
from tests import recovery_consumers


def use_layer(kind: str, settings: Any, redis_url: str | None = None) -> None:
    """Point CHANNEL_LAYERS at the in-memory layer or at a real redis-server."""
    if kind == "memory":
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    else:
        backend = ("channels_redis.core.RedisChannelLayer" if kind == "redis"
                   else "channels_redis.pubsub.RedisPubSubChannelLayer")
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": backend, "CONFIG": {
            "hosts": [{"address": redis_url, "socket_timeout": None}]}}}
    channel_layers.backends.clear()


async def opened(consumer: Consumer, *, application: Any = None, **options: Any) -> ConsumerCommunicator:
    """A connected ``ConsumerCommunicator`` (routed by ``recovery_consumers.application`` unless ``application``)
    that the test closes with ``disconnect()``; ``options`` are its user=, query= and URL kwargs. Connecting
    without ``async with`` lets a test open sockets in one event loop (an ``OtherProcess``) and close them in
    any order."""
    comm = ConsumerCommunicator(consumer, application=application or recovery_consumers.application, **options)
    assert await comm.connect(), f"{comm!r} was refused with code {comm.close_code}"
    return comm


async def next_close(comm: ConsumerCommunicator, timeout: float | None = None) -> tuple[int, str]:
    """The close code and reason, failing when a frame comes before the close."""
    with pytest.raises(SocketClosed) as closed:
        frame = await comm.receive(timeout)
        raise AssertionError(f"{comm!r} sent {frame!r} where the close was expected.")
    return closed.value.code, comm.close_reason or ""


class OtherProcess:
    """An event loop in a thread: its own hub, so on Redis its own process id and heartbeat, like a second
    server process sharing the same Redis. ``hang()`` stops its heartbeat, as if the process had been killed
    (no disconnect, no leave frame); ``stop()`` ends it cleanly."""

    def __init__(self) -> None:
        import asyncio
        import threading

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    async def arun(self, coro: Any) -> Any:
        import asyncio

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def hang(self) -> None:
        async def stop_heartbeat() -> None:
            from hypergen_ws.delivery.heartbeats import node_of
            from hypergen_ws.delivery.hub import get_hub

            node = node_of(get_hub())
            if node is not None:
                node.task.cancel()

        await self.arun(stop_heartbeat())

    def stop(self) -> None:
        import asyncio

        async def shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
