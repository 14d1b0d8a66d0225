"""Variant (a): the fan-out a Channels user writes by hand, as in the Channels tutorial."""
from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer

GROUP = "bench"


class FanoutConsumer(AsyncJsonWebsocketConsumer):
    """Joins one group; a frame ``{"args": [payload]}`` is sent to the whole group as a ``message`` frame."""

    async def connect(self) -> None:
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def receive_json(self, content: dict, **kwargs) -> None:
        await self.channel_layer.group_send(GROUP, {"type": "bench.message", "data": content["args"][0]})

    async def bench_message(self, event: dict) -> None:
        await self.send_json({"type": "message", "data": event["data"]})
