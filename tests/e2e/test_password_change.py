"""A password change across server processes: the sockets of the user's other sessions close with 4401 within
``SESSION_CHECK_INTERVAL``, in every process; the browser that changed it through Django's password change view
(``update_session_auth_hash()``) keeps its sockets, which follow its session to the new key.

Two servers (daphne and uvicorn) share a real redis-server and one SQLite file; browsers log in through the real
login form; ``set_password()`` runs in a process of its own, as in a shell or a task. In one process:
tests/test_session_check.py.
"""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.e2e.hostile import CHAT, LISTEN, Browser, closed, frames_until, run_django

pytestmark = pytest.mark.timeout(240)
LOBBY = CHAT.format(room="lobby")


@pytest.fixture
def servers(redis_server, live_server_factory):
    return [live_server_factory(server=kind, redis_url=redis_server.url) for kind in ("daphne", "uvicorn")]


async def still_open(ws, text: str) -> None:
    """A call on ``ws`` is answered: the socket is open and its user may still chat."""
    await ws.send(json.dumps({"args": [text], "id": 1}))
    await frames_until(ws, lambda f: f.get("id") == 1 and f.get("type") == "reply")


async def test_set_password_closes_every_socket_of_the_user_in_every_process(servers):
    daphne, uvicorn = servers
    laptop, phone = Browser(daphne).login("alice"), Browser(uvicorn).login("alice")
    sockets = [await laptop.socket(LOBBY, daphne), await laptop.socket(LISTEN, uvicorn),
               await phone.socket(LOBBY, uvicorn), await phone.socket(LISTEN, daphne)]
    bob = await Browser(daphne).login("bob").socket(LOBBY, uvicorn)
    run_django(daphne, "from django.contrib.auth.models import User\n"
                       "alice = User.objects.get(username='alice')\n"
                       "alice.set_password('something else')\n"
                       "alice.save()\n")
    changed = time.monotonic()
    ends = await asyncio.gather(*(closed(ws, timeout=10) for ws in sockets))
    assert [end.code for end in ends] == [4401] * 4, "no session of alice is valid any more"
    print(f"seconds from the password change to the close: {[round(end.at - changed, 3) for end in ends]}")
    await still_open(bob, "another user stays")
    await bob.close()


async def test_the_browser_that_changed_the_password_keeps_its_sockets_the_others_close(servers):
    daphne, uvicorn = servers
    laptop, phone = Browser(daphne).login("alice"), Browser(uvicorn).login("alice")
    mine = [await laptop.socket(LOBBY, daphne), await laptop.socket(LOBBY, uvicorn),
            await laptop.socket(LISTEN, uvicorn)]
    other = [await phone.socket(LOBBY, uvicorn), await phone.socket(LISTEN, daphne)]
    old_key = laptop.session_key
    laptop.change_password("alice", "Another-passw0rd")  # in the daphne process
    assert laptop.session_key != old_key, "update_session_auth_hash() moved the session to a new key"
    changed = time.monotonic()
    ends = await asyncio.gather(*(closed(ws, timeout=10) for ws in other))
    assert [end.code for end in ends] == [4401, 4401], "the other browser is logged out"
    print(f"seconds from the password change to the close: {[round(end.at - changed, 3) for end in ends]}")
    # The laptop's sockets went through the same checks, in both processes, and are still open and allowed.
    for ws in mine[:2]:
        await still_open(ws, "still here")
    assert (await closed(mine[2], timeout=1.5)).code is None
    # Its sockets now belong to the new session: its logout closes them.
    laptop.logout()
    assert [(await closed(ws)).code for ws in mine] == [4401] * 3
