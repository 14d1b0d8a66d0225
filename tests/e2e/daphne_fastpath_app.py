"""An ASGI application for the daphne fast-path canary (``tests/e2e/test_fastpath.py``), served by daphne.

HTTP answers 200 (the server fixture waits for it). A websocket is accepted; each text frame ``"go"`` is answered
with ``"direct ü" * 30`` written by :func:`hypergen_ws.backends.daphne.direct_writer` and then ``"after"`` through
the ASGI ``send``; when there is no direct writer, or it does not write, the answer is ``"asgi: <why>"``.
"""
from __future__ import annotations

from typing import Any

from hypergen_ws.backends.daphne import direct_writer
from hypergen_ws.backends.uvicorn import text_frame


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    writer = None
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            return
        writer = writer or direct_writer(send)
        if writer is None:
            await send({"type": "websocket.send", "text": "asgi: no direct writer"})
        elif not writer(text_frame("direct ü" * 30)):
            await send({"type": "websocket.send", "text": "asgi: the writer refused an idle socket"})
        else:
            await send({"type": "websocket.send", "text": "after"})  # the ASGI send still works after it
