"""A fake ASGI ``send`` and an outbox on it, for the outbox and hub tests."""
from __future__ import annotations

import asyncio
from typing import Any

from hypergen_ws.delivery.outbox import Outbox


class Socket:
    """An ASGI ``send`` that records frames; ``block()`` makes the next sends wait like a full write buffer."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.error: Exception | None = None

    def block(self) -> None:
        self.gate = asyncio.Event()

    def unblock(self) -> None:
        assert self.gate is not None
        self.gate.set()
        self.gate = None

    async def send(self, message: dict[str, Any]) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error
        if self.gate is not None:
            await self.gate.wait()
        self.sent.append(message.get("text", message["type"]))


def started_outbox(socket: Socket, limit: int = 1000, overflows: list[int] | None = None) -> Outbox:
    outbox = Outbox(socket.send, limit, lambda: overflows.append(1) if overflows is not None else None)
    outbox.start()
    return outbox
