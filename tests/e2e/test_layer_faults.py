"""Channel-layer faults against real servers: a redis-server frozen with SIGSTOP, or killed with ``kill -9`` and
started again. Calls get an ``unavailable`` error with their id and the socket stays open; every publisher fails
within ``PUBLISH_TIMEOUT``; a connect is accepted with a ``resync`` (``unavailable``) and joins once Redis is back;
no dead pooled connection fails a call after Redis came back."""
from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest

from tests.e2e.hostile import CHAT, Browser, frames_until, run_django

pytestmark = pytest.mark.timeout(300)

LOBBY = CHAT.format(room="lobby")
COUNTER = "/ws/counter/increment/"  # returns its commands for the whole group
TIMEOUT = 2.0  # PUBLISH_TIMEOUT of the servers
OVERRIDES = {"HYPERGEN_WS_OVERRIDES": json.dumps({"PUBLISH_TIMEOUT": TIMEOUT, "PROCESS_HEARTBEAT_INTERVAL": 0.5})}


def http_publish(server, text: str, room: str = "lobby") -> tuple[int, float]:
    """POST a message to the room over the HTTP endpoint: ``(status, seconds it took)``."""
    from testproject.settings import DEMO_PUBLISH_KEY

    body = json.dumps({"consumer": "chat.send_message", "kwargs": {"room_name": room}, "data": text}).encode()
    request = urllib.request.Request(f"{server.url}/hypergen_ws/publish/", data=body, headers={
        "Authorization": f"Bearer {DEMO_PUBLISH_KEY}", "Content-Type": "application/json"})
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, time.monotonic() - start
    except urllib.error.HTTPError as exc:
        return exc.code, time.monotonic() - start


async def call(ws, text: str, call_id: int) -> tuple[dict, float]:
    """Call send_message; the reply or error frame with ``call_id``, and the seconds it took."""
    start = time.monotonic()
    await ws.send(json.dumps({"args": [text], "id": call_id}))
    frames = await frames_until(ws, lambda f: f.get("id") == call_id, timeout=60)
    return frames[-1], time.monotonic() - start


def sync_publish(server) -> tuple[str, float]:
    """group_send from a process of its own (a task worker): what it raised, and the seconds it took."""
    out = run_django(server, "import time\n"
                             "from hypergen_ws import group_send\n"
                             "from testproject.chat.consumers import send_message\n"
                             "start = time.monotonic()\n"
                             "try:\n"
                             "    group_send(send_message.group_name(room_name='lobby'), 'from a worker')\n"
                             "    print('ok', time.monotonic() - start)\n"
                             "except Exception as exc:\n"
                             "    print(type(exc).__name__, time.monotonic() - start)\n")
    kind, seconds = out.split()[-2:]
    return kind, float(seconds)


@pytest.mark.parametrize("server_kind", ["daphne", "uvicorn"])
async def test_with_redis_frozen_everything_answers_within_the_publish_timeout(server_kind, redis_server,
                                                                              live_server_factory):
    server = live_server_factory(server=server_kind, redis_url=redis_server.url, env=OVERRIDES)
    alice = Browser(server).login("alice")
    ws = await alice.socket(LOBBY)
    await frames_until(ws, lambda f: f.get("event") == "list")
    redis_server.freeze()
    try:
        reply, seconds = await call(ws, "while frozen", 1)
        assert reply["type"] == "error" and reply["code"] == "unavailable", reply
        print(f"{server_kind}: a call's error after {seconds:.2f} s")
        status, seconds = await asyncio.to_thread(http_publish, server, "over http")
        assert status == 503
        print(f"{server_kind}: HTTP publish 503 after {seconds:.2f} s")
        kind, seconds = await asyncio.to_thread(sync_publish, server)
        assert kind in ("TimeoutError", "LayerUnavailable"), kind
        print(f"{server_kind}: sync group_send {kind} after {seconds:.2f} s")
        start = time.monotonic()
        other = await alice.socket(CHAT.format(room="vip"))  # a group this process has not joined yet
        first = json.loads(await other.recv())
        assert first == {"type": "resync", "reason": "unavailable", "seq": None, "epoch": None}
        print(f"{server_kind}: a connect answered after {time.monotonic() - start:.2f} s")
    finally:
        redis_server.thaw()
    # Back: the socket is still open and works; the late socket joins its group and gets its frames.
    frames = await frames_until(other, lambda f: f.get("event") == "list", timeout=30)
    # (it connected without a position: a resync with the room's position, since it cannot know what it missed)
    assert [f["reason"] for f in frames if f["type"] == "resync"] == ["rejoined"], frames
    vip = await alice.socket(CHAT.format(room="vip"))
    await frames_until(vip, lambda f: f.get("event") == "list")
    reply, _ = await call(vip, "after the thaw", 2)
    assert reply == {"type": "reply", "id": 2}
    frames = await frames_until(other, lambda f: f.get("type") == "commands")
    assert "after the thaw" in json.dumps(frames[-1])
    reply, _ = await call(ws, "the first socket too", 3)
    assert reply == {"type": "reply", "id": 3}


#: Seconds a connect may take to be answered while Redis is frozen: CONNECT_TIMEOUT (2.5 s) and some slack. Less than
#: PUBLISH_TIMEOUT (10 s, each of the cap, the join, the history and presence waited it before) and, for the
#: handshake itself, daphne's handshake timeout (5 s; it dropped every handshake of such a connect).
ANSWERED_WITHIN = 7.0
UNAVAILABLE = {"type": "resync", "reason": "unavailable", "seq": None, "epoch": None}


@pytest.mark.parametrize("server_kind", ["daphne", "uvicorn"])
async def test_connects_while_redis_is_frozen_are_answered_within_one_budget_and_join_after_the_thaw(
        server_kind, redis_server, live_server_factory):
    """Default timeouts and the per-user cap on: the cap, the join, the history and presence of a connect share
    CONNECT_TIMEOUT, so the handshake completes on daphne too; once Redis is back the sockets get group frames."""
    env = {"HYPERGEN_WS_OVERRIDES": json.dumps({"MAX_CONNECTIONS_PER_USER": 10, "PROCESS_HEARTBEAT_INTERVAL": 0.5})}
    server = live_server_factory(server=server_kind, redis_url=redis_server.url, env=env)
    alice = Browser(server).login("alice")
    ws = await alice.socket(LOBBY)
    await frames_until(ws, lambda f: f.get("event") == "list")
    redis_server.freeze()
    late = {}
    try:
        # a room this process has not joined yet, one it has, and a consumer without history
        for name, path in (("vip", CHAT.format(room="vip")), ("lobby", LOBBY), ("counter", COUNTER)):
            socket = await asyncio.wait_for(alice.socket(path), ANSWERED_WITHIN)  # the handshake completes
            assert json.loads(await asyncio.wait_for(socket.recv(), ANSWERED_WITHIN)) == UNAVAILABLE, name
            late[name] = socket
    finally:
        redis_server.thaw()
    # The sockets that could not join say so once they have: a resync ("rejoined"), then the presence list.
    frames = await frames_until(late["vip"], lambda f: f.get("event") == "list", timeout=30)
    assert [f for f in frames if f["type"] == "resync"] == [{"type": "resync", "reason": "rejoined",
                                                              "seq": frames[0]["seq"], "epoch": frames[0]["epoch"]}]
    assert await frames_until(late["counter"], lambda f: f.get("type") == "resync", timeout=30) == [
        {"type": "resync", "reason": "rejoined", "seq": None, "epoch": None}]
    # Every socket gets the group's frames.
    for room in ("vip", "lobby"):
        assert (await asyncio.to_thread(http_publish, server, f"to {room} after the thaw", room))[0] == 200
    for name in ("vip", "lobby"):
        frames = await frames_until(late[name], lambda f: f.get("data") == f"to {name} after the thaw", timeout=15)
        assert all(f["type"] != "resync" for f in frames), frames
    await ws.close()  # (another socket of the counter's group gets the commands of a call too)
    other = await alice.socket(COUNTER)
    await late["counter"].send(json.dumps({"args": [], "id": 1}))
    frames = await frames_until(late["counter"], lambda f: f.get("id") == 1)
    assert frames[-1] == {"type": "reply", "id": 1} and frames[0]["type"] == "commands", frames
    assert (await frames_until(other, lambda f: f.get("type") == "commands"))[-1] == frames[0]


@pytest.mark.parametrize("server_kind", ["daphne", "uvicorn"])
async def test_with_redis_killed_calls_fail_cleanly_connects_are_accepted_and_a_restart_leaves_no_dead_connection(
        server_kind, redis_server, live_server_factory):
    server = live_server_factory(server=server_kind, redis_url=redis_server.url, env=OVERRIDES)
    alice = Browser(server).login("alice")
    ws = await alice.socket(LOBBY)
    await frames_until(ws, lambda f: f.get("event") == "list")
    redis_server.kill()
    reply, _ = await call(ws, "while down", 1)
    assert reply["type"] == "error" and reply["code"] == "unavailable" and reply["id"] == 1
    late = await alice.socket(CHAT.format(room="vip"))  # accepted, not HTTP 500
    assert json.loads(await late.recv())["reason"] == "unavailable"
    # A socket that connected outside its group: the commands its call returns cannot reach the group, and the
    # call says so (the counter changed in the database, and no page would learn it).
    counter = await alice.socket(COUNTER)
    assert json.loads(await counter.recv())["reason"] == "unavailable"
    await counter.send(json.dumps({"args": [], "id": 100}))
    reply = (await frames_until(counter, lambda f: f.get("id") == 100))[-1]
    assert reply["type"] == "error" and reply["code"] == "unavailable", reply
    redis_server.start()  # the same port, no data
    await frames_until(late, lambda f: f.get("event") == "list", timeout=30)
    # Every call after the restart succeeds, however long the pooled connections sat idle.
    for n in range(2, 8):
        reply, _ = await call(ws, f"after the restart {n}", n)
        assert reply == {"type": "reply", "id": n}, reply
        await asyncio.sleep(0.5)
    assert ws.close_code is None and late.close_code is None


@pytest.mark.parametrize("server_kind", ["daphne", "uvicorn"])
async def test_after_a_redis_restart_unnoticed_by_any_heartbeat_the_first_operations_succeed(
        server_kind, redis_server, live_server_factory):
    """No heartbeat and no other use of Redis while it is down: the pooled connections are all dead when it is
    back, and the first call (publish and history), HTTP publish, group_send and connect must not find one."""
    quiet = {"HYPERGEN_WS_OVERRIDES": json.dumps({"PUBLISH_TIMEOUT": TIMEOUT, "PROCESS_HEARTBEAT_INTERVAL": 3600})}
    server = live_server_factory(server=server_kind, redis_url=redis_server.url, env=quiet)
    alice = Browser(server).login("alice")
    ws = await alice.socket(LOBBY)
    await frames_until(ws, lambda f: f.get("event") == "list")
    reply, _ = await call(ws, "before", 1)
    assert reply == {"type": "reply", "id": 1}
    assert (await asyncio.to_thread(http_publish, server, "before"))[0] == 200
    await asyncio.to_thread(redis_server.kill)  # kill -9
    await asyncio.to_thread(redis_server.start)  # the same port, no data
    reply, seconds = await call(ws, "first after the restart", 2)
    assert reply == {"type": "reply", "id": 2}, reply
    print(f"{server_kind}: the first call after the restart answered in {seconds:.3f} s")
    status, seconds = await asyncio.to_thread(http_publish, server, "over http after the restart")
    assert status == 200
    print(f"{server_kind}: the first HTTP publish after the restart answered {status} in {seconds:.3f} s")
    kind, seconds = await asyncio.to_thread(sync_publish, server)
    assert kind == "ok", kind
    vip = await alice.socket(CHAT.format(room="vip"))  # a group this process joins now
    first = json.loads(await vip.recv())
    assert first.get("type") != "resync", first
    reply, _ = await call(vip, "in the new room", 3)
    assert reply == {"type": "reply", "id": 3}
    frames = await frames_until(ws, lambda f: "over http after the restart" in json.dumps(f))
    assert all(f.get("type") != "resync" or f.get("reason") != "unavailable" for f in frames)
    assert ws.close_code is None and vip.close_code is None
