"""Helpers for WebsocketCommunicator tests of the sample consumers."""
from __future__ import annotations

import json
from typing import Any

from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from hypergen_ws import autoconsumers
from tests import sample_consumers

application = URLRouter(autoconsumers(sample_consumers))


async def connect(path: str, user: Any = None, *, expect: bool = True, query: str = "",
                  **scope: Any) -> WebsocketCommunicator:
    """Open a communicator on ``path`` as ``user`` (anonymous by default) and assert it was accepted."""
    comm = WebsocketCommunicator(application, path + (f"?{query}" if query else ""))
    comm.scope["user"] = user if user is not None else AnonymousUser()
    comm.scope.update(scope)
    connected, _ = await comm.connect()
    assert connected is expect
    return comm


async def receive(comm: WebsocketCommunicator, timeout: float = 2) -> dict[str, Any]:
    """The next frame, decoded."""
    return json.loads(await comm.receive_from(timeout))


async def call(comm: WebsocketCommunicator, *args: Any, id: Any = None, **extra: Any) -> None:
    """Send a protocol v1 call."""
    frame: dict[str, Any] = {"args": list(args), **extra}
    if id is not None:
        frame["id"] = id
    await comm.send_to(text_data=json.dumps(frame))
