"""Variant (d): ChannelBox (``channel-box`` on Starlette), the group fan-out a Starlette user would pick.

Every connection is a ``channel_box.Channel`` (``payload_type="json"``) in one group; a frame
``{"args": [payload]}`` is sent to the whole group with ``ChannelBox.group_send`` as
``{"type": "message", "data": payload}``, the sender included, which is how the package's README uses it.
Served by uvicorn whatever ``--server`` says (ChannelBox is an ASGI library for Starlette):

    uvicorn channelbox_app:app --port 8765
"""
from __future__ import annotations

from channel_box import Channel, ChannelBox
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

GROUP = "bench"


async def fanout(websocket: WebSocket) -> None:
    await websocket.accept()
    channel = Channel(websocket, expires=3600, payload_type="json")
    await ChannelBox.add_channel_to_group(channel, GROUP)
    try:
        while True:
            content = await websocket.receive_json()
            await ChannelBox.group_send(GROUP, {"type": "message", "data": content["args"][0]})
    except WebSocketDisconnect:
        pass
    finally:
        await ChannelBox.remove_channel_from_group(channel, GROUP)


app = Starlette(routes=[WebSocketRoute("/ws/box/", fanout)])
