"""Token sockets revoked across server processes: a daphne and a uvicorn process share a real redis-server and one
SQLite file; what revokes runs in a third process (a shell, a view, a task) or through the real login pages.
``recheck_permissions``, a logout with ``LOGOUT_CLOSES = "user"`` and a password change close the token sockets
of the user in both processes, and no other user's."""
from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.asyncio.client import connect as ws_connect

from hypergen_ws.client import NotAuthenticated, PermissionDenied, connect
from tests.e2e.hostile import CHAT, Browser, closed, frames_until, run_django

pytestmark = pytest.mark.timeout(240)
LOBBY = CHAT.format(room="lobby")


@pytest.fixture
def servers(redis_server, live_server_factory):
    return [live_server_factory(server=kind, redis_url=redis_server.url) for kind in ("daphne", "uvicorn")]


def token_of(browser: Browser) -> str:
    status, body = browser.request("GET", "/hypergen_ws/token/")
    assert status == 200, body
    return json.loads(body)["token"]


async def token_socket(server, token: str):
    """A raw websocket with ``token`` in its Authorization header (no Origin, no cookie), open and answering."""
    ws = await ws_connect(server.ws_url + LOBBY, additional_headers={"Authorization": f"Bearer {token}"},
                          open_timeout=30, ping_interval=None, max_queue=None)
    await ws.send(json.dumps({"args": ["in"], "id": 1}))
    await frames_until(ws, lambda f: f.get("id") == 1 and f.get("type") in ("reply", "error"))
    return ws


async def still_open(ws) -> None:
    """``ws`` still answers a call (it was not closed)."""
    await ws.send(json.dumps({"args": ["still here"], "id": 2}))
    frames = await frames_until(ws, lambda f: f.get("id") == 2 and f.get("type") in ("reply", "error"))
    assert frames[-1]["type"] == "reply", frames


async def ended_by(conn, error):
    """What the Python client raised once the server closed its socket."""
    with pytest.raises(error) as caught:
        async with asyncio.timeout(15):
            async for _ in conn.frames():
                pass
    return caught.value


async def test_recheck_permissions_closes_token_sockets_with_4403_in_every_process(servers):
    daphne, uvicorn = servers
    alice, bob = Browser(daphne).login("alice"), Browser(uvicorn).login("bob")
    raw = [await token_socket(daphne, token_of(alice)), await token_socket(uvicorn, token_of(alice))]
    bobs = await token_socket(daphne, token_of(bob))
    async with connect(uvicorn.ws_url + LOBBY, token=token_of(alice)) as conn:
        assert (await conn.call("before")).reply is not None
        run_django(daphne, "from django.contrib.auth.models import User, Permission\n"
                           "from hypergen_ws import recheck_permissions\n"
                           "alice = User.objects.get(username='alice')\n"
                           "alice.user_permissions.remove(Permission.objects.get(codename='can_chat'))\n"
                           "recheck_permissions(alice)\n")
        assert [(await closed(ws)).code for ws in raw] == [4403, 4403]
        error = await ended_by(conn, PermissionDenied)
        assert error.code == 4403 and "perm" in str(error)
    await still_open(bobs)
    await bobs.close()


async def test_a_logout_closes_the_users_token_sockets_in_every_process(servers):
    daphne, uvicorn = servers  # LOGOUT_CLOSES = "user", the default
    laptop, bob = Browser(daphne).login("alice"), Browser(uvicorn).login("bob")
    app = Browser(uvicorn).login("alice")  # the session an app fetched its token with stays logged in
    raw = [await token_socket(daphne, token_of(app)), await token_socket(uvicorn, token_of(app))]
    bobs = await token_socket(uvicorn, token_of(bob))
    async with connect(daphne.ws_url + LOBBY, token=token_of(app)) as conn:
        await conn.call("before")
        laptop.logout()  # in the daphne process
        assert [(await closed(ws)).code for ws in raw] == [4401, 4401]
        assert (await ended_by(conn, NotAuthenticated)).code == 4401
    await still_open(bobs)
    await bobs.close()


async def test_a_password_change_closes_open_token_sockets_and_refuses_the_old_token(servers):
    daphne, uvicorn = servers
    alice, bob = Browser(daphne).login("alice"), Browser(uvicorn).login("bob")
    old = token_of(alice)
    raw = [await token_socket(daphne, old), await token_socket(uvicorn, old)]
    bobs = await token_socket(daphne, token_of(bob))
    alice.change_password("alice", "Another-passw0rd")  # in the daphne process; that browser stays logged in
    changed = time.monotonic()
    ends = [await closed(ws) for ws in raw]
    assert [end.code for end in ends] == [4401, 4401], "the tokens issued before the change no longer count"
    print(f"seconds from the password change to the close of the token sockets: "
          f"{[round(end.at - changed, 3) for end in ends]}")
    for server in servers:  # the old token replayed: refused at once, with the reason in that server's log
        async with ws_connect(server.ws_url + LOBBY, additional_headers={"Authorization": f"Bearer {old}"},
                              open_timeout=30) as ws:
            assert (await closed(ws, timeout=10)).code == 4401
        assert "issued before their password changed" in server.log_path.read_text()
    fresh = await token_socket(uvicorn, token_of(alice))  # a token issued after the change works
    await still_open(fresh)
    await still_open(bobs)
    await fresh.close()
    await bobs.close()
