"""The server's own floor: a bare ASGI websocket application, no framework (variant ``asgi`` of connect.py).

It accepts every websocket and waits for its close, so that ``connect.py`` can measure what the ASGI server
(uvicorn or daphne) itself costs per connection, in the same run as the other variants.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]


async def app(scope: Message, receive: Callable[[], Awaitable[Message]],
              send: Callable[[Message], Awaitable[None]]) -> None:
    if scope["type"] != "websocket":
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.disconnect":
            return
