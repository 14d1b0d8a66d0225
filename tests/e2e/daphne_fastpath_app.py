"""An ASGI application for the daphne fast-path canary (``tests/e2e/test_fastpath.py``), served by daphne.

HTTP answers 200 (the server fixture waits for it). A websocket is accepted and told the name of its transport and
whether it pings; each text frame ``"go"`` is answered with ``"direct ü" * 30`` written by the transport's writer
(:class:`hypergen_ws.backends.daphne.DaphneTransport`) and then ``"after"`` through the ASGI ``send``; when there
is no direct writer, or it does not write, the answer is ``"asgi: <why>"``. On ``/pongs`` the transport takes the
heartbeat's pongs out (``take_pongs``) and each other frame is answered with what was taken and heard before it.
"""
from __future__ import annotations

from typing import Any

from hypergen_ws.backends.servers import transport_for
from hypergen_ws.core.protocol import PONG, text_frame


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
    transport = transport_for(send)
    await send({"type": "websocket.send", "text": f"{transport.name} pings={transport.pings}"})
    if scope["path"] == "/pongs":
        heard: list[int] = []
        taken = transport.take_pongs(PONG, lambda: heard.append(1))
        while (event := await receive())["type"] != "websocket.disconnect":
            await send({"type": "websocket.send", "text": f"taken={taken} heard={len(heard)} got={event['text']}"})
        return
    writer = None
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            return
        writer = writer or transport.writer()
        if writer is None:
            await send({"type": "websocket.send", "text": "asgi: no direct writer"})
        elif not writer(text_frame("direct ü" * 30)):
            await send({"type": "websocket.send", "text": "asgi: the writer refused an idle socket"})
        else:
            await send({"type": "websocket.send", "text": "after"})  # the ASGI send still works after it
