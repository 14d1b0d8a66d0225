"""The Python client's refusals on live servers (daphne and uvicorn): each raises its own exception, whose message
says what to fix, and the client does not reconnect after it."""
from __future__ import annotations

import asyncio
import json

import pytest

from hypergen_ws.client import NoRoute, NotAuthenticated, PermissionDenied, connect
from tests.e2e.hostile import CHAT, Browser

pytestmark = pytest.mark.timeout(240)
LOBBY = CHAT.format(room="lobby")


def token_of(server, username: str) -> str:
    status, body = Browser(server).login(username).request("GET", "/hypergen_ws/token/")
    assert status == 200, body
    return json.loads(body)["token"]


async def refusal(url: str, error: type[Exception], **options) -> Exception:
    """What ``connect(url, ...)`` raises: from ``open()`` (a refused handshake) or from ``frames()`` (a socket
    the server accepted and closed at once)."""
    with pytest.raises(error) as caught:
        async with asyncio.timeout(30):
            async with connect(url, backoff_base=0.05, **options) as conn:
                async for _ in conn.frames():
                    pass
    return caught.value


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
async def test_4401_4403_and_no_route_raise_errors_that_say_what_to_fix(kind, live_server_factory):
    server = live_server_factory(server=kind)
    url = server.ws_url + LOBBY
    error = await refusal(url, NotAuthenticated, token="not-a-token")
    assert error.code == 4401 and "Get a new token" in str(error) and "get_token=" in str(error)
    error = await refusal(url, PermissionDenied, token=token_of(server, "eve"))  # eve lacks chat.can_chat
    assert error.code == 4403 and "perm=" in str(error) and "Grant the permission" in str(error)
    error = await refusal(server.ws_url + "/ws/chat/no_such_consumer/", NoRoute, token=token_of(server, "alice"))
    assert error.code == 403 and "hypergen_ws_consumers" in str(error)
    error = await refusal(url, NoRoute)  # no token and no Origin: the origin check refuses the handshake
    assert "without a token must send an Origin" in str(error)
    log = server.log_path.read_text()
    assert "was refused: the token is forged or not a hypergen_ws token" in log and "No websocket route" in log
