"""A tiny ASGI application without Django, to test the server fixtures on their own.

HTTP: ``GET /`` answers 200 ``ok``, ``GET /env/NAME`` the value of an environment variable, anything else 404.
Websocket: echoes every text frame back.
"""
from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def _http(scope: Scope, receive: Receive, send: Send) -> None:
    path: str = scope["path"]
    if path == "/":
        status, body = 200, b"ok"
    elif path.startswith("/env/"):
        status, body = 200, os.environ.get(path[len("/env/"):], "").encode()
    else:
        status, body = 404, b"not found"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _websocket(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        event = await receive()
        if event["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif event["type"] == "websocket.receive":
            if event.get("text") is not None:
                await send({"type": "websocket.send", "text": event["text"]})
        elif event["type"] == "websocket.disconnect":
            return


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI entry point: ``tests.support.echo_asgi:application``."""
    if scope["type"] == "http":
        await _http(scope, receive, send)
    elif scope["type"] == "websocket":
        await _websocket(scope, receive, send)
