"""Live authorization across server processes: logouts, flushed or expired sessions, disconnect_user() and
recheck_permissions() close sockets in every process, listen-only ones included; presence forgets the user.

Two servers (daphne and uvicorn) share a real redis-server and one SQLite file; browsers log in through the real
login form, and what an app would do in a view, a shell or a task runs in a process of its own.
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


@pytest.mark.parametrize("logout_closes", ["user", "session"])
async def test_a_logout_closes_the_users_sockets_in_other_browsers_too_unless_logout_closes_session(
        logout_closes, redis_server, live_server_factory):
    env = {"HYPERGEN_WS_OVERRIDES": json.dumps({"LOGOUT_CLOSES": logout_closes})}
    daphne, uvicorn = [live_server_factory(server=kind, redis_url=redis_server.url, env=env)
                       for kind in ("daphne", "uvicorn")]
    laptop, phone = Browser(daphne).login("alice"), Browser(uvicorn).login("alice")  # two sessions of one user
    mine = [await laptop.socket(LOBBY, daphne), await laptop.socket(LISTEN, uvicorn)]
    other = [await phone.socket(LOBBY, uvicorn), await phone.socket(LISTEN, daphne)]  # listen-only ones too
    bob = Browser(uvicorn).login("bob")
    bobs = await bob.socket(LISTEN, daphne)
    laptop.logout()  # in the daphne process
    logged_out = time.monotonic()
    ends = await asyncio.gather(*(closed(ws, timeout=5) for ws in [*mine, *other]))
    assert [end.code for end in ends[:2]] == [4401, 4401]
    if logout_closes == "user":
        assert [end.code for end in ends[2:]] == [4401, 4401], "the other browser's sockets close as well"
        print(f"seconds from logout to the close of the other browser's sockets: "
              f"{[round(end.at - logged_out, 3) for end in ends[2:]]}")
    else:
        assert [end.code for end in ends[2:]] == [None, None], "the other browser stays logged in"
        await other[0].send(json.dumps({"args": ["still here"], "id": 1}))
        await frames_until(other[0], lambda f: f.get("id") == 1 and f.get("type") == "reply")
        for ws in other:
            await ws.close()
    assert (await closed(bobs, timeout=0.5)).code is None, "another user keeps their sockets"
    await bobs.close()


def presence(event, username):
    return lambda frame: frame.get("type") == "presence" and frame.get("event") == event and (
        username is None or frame.get("username") == username)


async def test_a_logout_closes_the_sessions_sockets_in_every_process_and_presence_forgets_the_user(servers):
    daphne, uvicorn = servers
    bob = Browser(daphne).login("bob")
    watcher = await bob.socket(LOBBY)
    await frames_until(watcher, presence("list", None))
    alice = Browser(daphne).login("alice")
    sockets = [await alice.socket(LOBBY, daphne), await alice.socket(LOBBY, uvicorn),
               await alice.socket(LISTEN, daphne), await alice.socket(LISTEN, uvicorn)]  # two listen-only
    await frames_until(watcher, presence("join", "alice"))
    alice.logout()  # Django's LogoutView in the daphne process
    logged_out = time.monotonic()
    ends = await asyncio.gather(*(closed(ws) for ws in sockets))
    assert [end.code for end in ends] == [4401] * 4
    print(f"seconds from logout to close: {[round(end.at - logged_out, 3) for end in ends]}")
    await frames_until(watcher, presence("leave", "alice"))
    # Nothing stale: a new socket's list and the count show bob alone, however often alice came and went.
    for _ in range(3):
        again = Browser(uvicorn).login("alice")
        ws = await again.socket(LOBBY, uvicorn)
        await frames_until(watcher, presence("join", "alice"))
        again.logout()
        assert (await closed(ws)).code == 4401
        await frames_until(watcher, presence("leave", "alice"))
    fresh = await bob.socket(LOBBY, uvicorn)
    listing = (await frames_until(fresh, presence("list", None)))[-1]
    assert [(u["username"], u["connections"]) for u in listing["users"]] == [("bob", 2)]
    for ws in (watcher, fresh):
        await ws.close()


async def test_disconnect_user_and_recheck_permissions_from_another_process(servers):
    daphne, uvicorn = servers
    alice, bob = Browser(daphne).login("alice"), Browser(uvicorn).login("bob")
    alice_chat = [await alice.socket(LOBBY, daphne), await alice.socket(LOBBY, uvicorn)]
    alice_listen = await alice.socket(LISTEN, uvicorn)
    bob_chat = await bob.socket(LOBBY, daphne)
    # The permission is taken away in another process, which then asks every server to check again.
    run_django(daphne, "from django.contrib.auth.models import User, Permission\n"
                       "from hypergen_ws import recheck_permissions\n"
                       "alice = User.objects.get(username='alice')\n"
                       "alice.user_permissions.remove(Permission.objects.get(codename='can_chat'))\n"
                       "recheck_permissions(alice)\n")
    assert [(await closed(ws)).code for ws in alice_chat] == [4403, 4403]
    # The public listen-only socket passes its (absent) perm and stays open: it still gets notifications.
    run_django(daphne, "from hypergen_ws import group_send\n"
                       "from testproject.notifications.consumers import listen\n"
                       "group_send(listen.group_name(), {'text': 'still here'})\n")
    await frames_until(alice_listen, lambda f: f.get("data") == {"text": "still here"})
    # "Log out everywhere": every socket of the user, public ones too.
    run_django(uvicorn, "from django.contrib.auth.models import User\n"
                        "from hypergen_ws import disconnect_user\n"
                        "disconnect_user(User.objects.get(username='alice'))\n")
    assert (await closed(alice_listen)).code == 4401
    # A deactivated user no longer passes: 4401, since Django no longer authenticates them.
    run_django(uvicorn, "from django.contrib.auth.models import User\n"
                        "from hypergen_ws import recheck_permissions\n"
                        "User.objects.filter(username='bob').update(is_active=False)\n"
                        "recheck_permissions()\n")
    assert (await closed(bob_chat)).code == 4401


async def test_a_flushed_or_expired_session_closes_its_sockets(servers):
    daphne, uvicorn = servers
    alice, bob = Browser(daphne).login("alice"), Browser(daphne).login("bob")
    alice_sockets = [await alice.socket(LOBBY, daphne), await alice.socket(LISTEN, uvicorn)]
    bob_socket = await bob.socket(LOBBY, uvicorn)
    # session.flush() without a logout (no signal): the session check finds the session gone.
    run_django(daphne, "from django.contrib.sessions.backends.db import SessionStore\n"
                       f"SessionStore(session_key={alice.session_key!r}).flush()\n")
    flushed = time.monotonic()
    ends = await asyncio.gather(*(closed(ws) for ws in alice_sockets))
    assert [end.code for end in ends] == [4401, 4401]
    print(f"seconds from flush to close: {[round(end.at - flushed, 3) for end in ends]}")
    # The session expires (its expiry date passes).
    run_django(daphne, "from datetime import timedelta\n"
                       "from django.contrib.sessions.models import Session\n"
                       "from django.utils import timezone\n"
                       f"Session.objects.filter(session_key={bob.session_key!r})"
                       ".update(expire_date=timezone.now() - timedelta(seconds=1))\n")
    assert (await closed(bob_socket)).code == 4401


async def test_max_connections_per_user_counts_across_processes_and_forgets_a_killed_one(
        redis_server, live_server_factory):
    env = {"HYPERGEN_WS_OVERRIDES": json.dumps({"MAX_CONNECTIONS_PER_USER": 2, "PROCESS_HEARTBEAT_INTERVAL": 0.5,
                                                "PROCESS_TTL": 2})}
    daphne, uvicorn = [live_server_factory(server=kind, redis_url=redis_server.url, env=env)
                       for kind in ("daphne", "uvicorn")]
    alice = Browser(uvicorn).login("alice")
    first, second = await alice.socket(LISTEN, daphne), await alice.socket(LISTEN, uvicorn)
    for server in (daphne, uvicorn):  # a third socket is refused in either process
        third = await alice.socket(LISTEN, server)
        assert (await closed(third, timeout=10)).code == 1008, f"the third socket on {server.url}"
    bob = await Browser(uvicorn).login("bob").socket(LISTEN, daphne)  # another user has a cap of his own
    assert (await closed(bob, timeout=0.5)).code is None
    await second.close()  # its place is given back once the server has handled the close
    again = await accepted_soon(alice, uvicorn, "the closed socket's place is not given back")
    daphne.kill()  # kill -9: the socket on daphne never says goodbye; the sweep of the dead process counts it out
    assert (await closed(first, timeout=10)).code == 1006
    probe = await accepted_soon(alice, uvicorn, "the killed process's socket still counts")  # after PROCESS_TTL
    for ws in (again, probe, bob):
        await ws.close()


async def accepted_soon(browser: Browser, server: object, why: str) -> object:
    """A socket of ``browser`` to LISTEN that the cap lets stay open; sockets refused with 1008 meanwhile are
    tried again (the server gives a place back, or sweeps a dead process, in the background)."""
    for _attempt in range(40):
        ws = await browser.socket(LISTEN, server)  # type: ignore[arg-type]
        end = await closed(ws, timeout=0.5)
        if end.code is None:
            return ws
        assert end.code == 1008, end
        await asyncio.sleep(0.5)
    raise AssertionError(why)
