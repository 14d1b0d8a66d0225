"""The transport port on real servers (the canaries of ``hypergen_ws.backends.uvicorn`` and ``.daphne``): direct
writes of group frames, and what each server says about its pings."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect as ws_connect

from hypergen_ws.backends.servers import transport_for
from hypergen_ws.core.protocol import PONG, text_frame
from tests.support.servers import free_port


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accepts, names the transport and whether it pings, then says whether a direct writer exists and writes one
    frame with it (or through ``send``)."""
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    transport = transport_for(send)
    if scope["path"] == "/pongs":
        await take_pongs(transport, receive, send)
        return
    if scope["path"] in ("/replace-pings", "/keep-pings"):
        replaced = transport.replace_pings() if scope["path"] == "/replace-pings" else None
        await asyncio.sleep(1.0)  # five of uvicorn's ping intervals in the fixture below
        pinged = transport.protocol.ping_sent_at > 0  # uvicorn notes when it sent its last keepalive ping
        await send({"type": "websocket.send", "text": f"replaced={replaced} pinged={pinged}"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    await send({"type": "websocket.send", "text": f"{transport.name} pings={transport.pings}"})
    writer = transport.writer()
    if writer is None:
        await send({"type": "websocket.send", "text": "asgi"})
    else:
        assert writer(text_frame("direct ü" * 30))
        await send({"type": "websocket.send", "text": "after"})  # the ASGI send still works after direct writes
    while (await receive())["type"] != "websocket.disconnect":
        pass


async def take_pongs(transport: Any, receive: Any, send: Any) -> None:
    """Pongs taken out by the server: the application's next message is the first frame that is not one."""
    heard: list[int] = []
    taken = transport.take_pongs(PONG, lambda: heard.append(1))
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": f"taken={taken} heard={len(heard)} got={message['text']}"})


@pytest.fixture(params=[20.0])
async def uvicorn_url(request):
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, ws="websockets-sansio",
                                           lifespan="off", log_level="warning", ws_ping_interval=request.param))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield f"ws://127.0.0.1:{port}/"
    server.should_exit = True
    await task


async def test_a_connection_without_extensions_gets_direct_writes(uvicorn_url):
    async with ws_connect(uvicorn_url, compression=None) as ws:
        assert await ws.recv() == "uvicorn pings=True"
        assert await ws.recv() == "direct ü" * 30
        assert await ws.recv() == "after"


async def test_a_connection_with_permessage_deflate_goes_through_the_asgi_send(uvicorn_url):
    async with ws_connect(uvicorn_url, compression="deflate") as ws:
        assert await ws.recv() == "uvicorn pings=True"
        assert await ws.recv() == "asgi"


async def test_uvicorn_takes_the_heartbeats_pongs_out_before_the_application(uvicorn_url):
    async with ws_connect(uvicorn_url + "pongs", compression=None) as ws:
        for _ in range(3):
            await ws.send(PONG)
        await ws.send('{"type": "pong"}')  # another spelling is a frame like any other (liveness.py takes it out)
        assert await ws.recv() == 'taken=True heard=3 got={"type": "pong"}'
        await ws.send(PONG + " ")
        assert await ws.recv() == f"taken=True heard=3 got={PONG} "


@pytest.mark.parametrize("uvicorn_url", [0.2], indirect=True)
@pytest.mark.parametrize(("path", "said"), [("replace-pings", "replaced=True pinged=False"),
                                            ("keep-pings", "replaced=None pinged=True")])
async def test_uvicorn_stops_its_own_pings_on_a_connection_the_heartbeat_pings(uvicorn_url, path, said):
    async with ws_connect(uvicorn_url + path, compression=None) as ws:
        assert await ws.recv() == said


@pytest.mark.parametrize("uvicorn_url", [0.0], indirect=True)
async def test_uvicorn_without_pings_says_so(uvicorn_url):
    async with ws_connect(uvicorn_url, compression=None) as ws:
        assert await ws.recv() == "uvicorn pings=False"


# ---- daphne: the canary of hypergen_ws.backends.daphne ----------------------------------------------------------


async def test_daphne_connections_get_direct_writes(live_server_factory):
    server = live_server_factory(application="tests.e2e.daphne_fastpath_app:application", server="daphne")
    async with ws_connect(server.ws_url + "/", compression=None) as ws:
        assert await ws.recv() == "daphne pings=True"
        for _ in range(3):  # the writer keeps working, and keeps its order with the ASGI send
            await ws.send("go")
            assert await ws.recv() == "direct ü" * 30
            assert await ws.recv() == "after"


async def test_daphne_takes_the_heartbeats_pongs_out_before_the_application(live_server_factory):
    server = live_server_factory(application="tests.e2e.daphne_fastpath_app:application", server="daphne")
    async with ws_connect(server.ws_url + "/pongs", compression=None) as ws:
        assert await ws.recv() == "daphne pings=True"
        for _ in range(3):
            await ws.send(PONG)
        await ws.send("hello")
        assert await ws.recv() == "taken=True heard=3 got=hello"
