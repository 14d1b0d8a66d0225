"""Helpers of the history/recovery/presence tests: layers, communicators, a client that tracks seq."""
from __future__ import annotations

import json
from typing import Any

from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

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


async def open_ws(path: str, *, user: Any = None, query: str = "") -> WebsocketCommunicator:
    comm = WebsocketCommunicator(recovery_consumers.application, path + (f"?{query}" if query else ""))
    comm.scope["user"] = user if user is not None else AnonymousUser()
    connected, _ = await comm.connect()
    assert connected
    return comm


async def frame(comm: WebsocketCommunicator, timeout: float = 3) -> dict[str, Any]:
    return json.loads(await comm.receive_from(timeout))


async def frames_until(comm: WebsocketCommunicator, count: int, timeout: float = 5) -> list[dict[str, Any]]:
    """The next ``count`` frames."""
    return [await frame(comm, timeout) for _ in range(count)]


async def drain(comm: WebsocketCommunicator, quiet: float = 0.2) -> list[dict[str, Any]]:
    """Every frame until none arrives for ``quiet`` seconds."""
    out = []
    while not await comm.receive_nothing(quiet):
        out.append(json.loads(await comm.receive_from()))
    return out


def data(frames: list[dict[str, Any]]) -> list[Any]:
    """The payloads of the ``message`` frames."""
    return [f["data"] for f in frames if f.get("type") == "message"]


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
            from hypergen_ws.delivery.cluster import node_of
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
