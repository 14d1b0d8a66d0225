"""Bounded resources against real servers: request bodies, rooms, dead processes, rate limits."""
from __future__ import annotations

import asyncio

import psutil
import pytest

from tests.support.bodies import MiB, post_huge_body

pytestmark = pytest.mark.timeout(180)


def rss(pid: int) -> int:
    """Resident memory of a server process, in bytes."""
    return int(psutil.Process(pid).memory_info().rss)


@pytest.mark.parametrize("server_kind", ["daphne", "uvicorn"])
@pytest.mark.parametrize(("path", "limit", "setting"), [
    ("/hypergen_ws/publish/", MiB, "PUBLISH_MAX_BODY_SIZE"),  # its own limit
    ("/accounts/login/", 2621440, "MAX_BODY_SIZE"),  # one of the project's own views: DATA_UPLOAD_MAX_MEMORY_SIZE
])
def test_a_huge_unauthenticated_post_is_refused_before_it_is_read(server_kind, path, limit, setting,
                                                                  live_server_factory):
    server = live_server_factory(server=server_kind)
    assert server.process is not None
    post_huge_body(server.port, 2 * MiB, chunked=False)  # warm up: the first request imports and allocates
    before = rss(server.process.pid)
    for chunked in (False, True):
        answer, sent = post_huge_body(server.port, 400 * MiB, chunked=chunked, path=path)
        assert answer.startswith(b"HTTP/1.1 413"), answer
        assert f"over the limit of {limit} bytes".encode() in answer and setting.encode() in answer, answer
        assert sent < 100 * MiB, f"the server read {sent // MiB} MiB of a body it had to refuse"
    grown = rss(server.process.pid) - before
    assert grown < 3 * limit, f"{server_kind} grew by {grown / MiB:.1f} MiB for two refused 400 MiB bodies"
    status, _, _ = server.get(path)  # the view still answers requests without a body
    assert status in (200, 405)


@pytest.mark.parametrize("server_kind", ["daphne", "uvicorn"])
async def test_a_client_flooding_calls_is_refused_then_closed_with_1008(server_kind, live_server_factory):
    import json

    from websockets.asyncio.client import connect as ws_connect
    from websockets.exceptions import ConnectionClosed

    from tests.e2e.wsclients import _origin

    server = live_server_factory(server=server_kind)
    url = server.ws_url + "/ws/counter/increment/"
    async with ws_connect(url, origin=_origin(url), open_timeout=30) as flooder, \
            ws_connect(url, origin=_origin(url), open_timeout=30) as honest:
        for n in range(300):  # the default limit: 20 calls/s, bursts of 40
            await flooder.send(json.dumps({"args": [], "id": n}))
        replies, limited = set(), set()
        try:
            while True:
                frame = json.loads(await flooder.recv())
                if frame["type"] == "reply":
                    replies.add(frame["id"])
                elif frame["type"] == "error":
                    assert frame["code"] == "rate_limited", frame
                    limited.add(frame["id"])
        except ConnectionClosed:
            pass
        assert flooder.close_code == 1008, flooder.close_code
        assert 40 <= len(replies) < 300 and limited and not replies & limited
        await honest.send(json.dumps({"args": [], "id": "after"}))  # another client is not affected
        while (frame := json.loads(await honest.recv())).get("type") != "reply":
            pass
        assert frame["id"] == "after"


@pytest.mark.parametrize("server_kind", ["daphne", "uvicorn"])
async def test_a_flood_from_many_anonymous_sockets_is_refused_as_it_arrives(server_kind, live_server_factory):
    """30 anonymous sockets send 100 calls each at once: the frames are counted as they arrive, so all but the
    burst their address shares are refused at once (none waits to run later), each flooder is closed with 1008, and
    a logged-in client's call still completes."""
    import json

    from websockets.asyncio.client import connect as ws_connect
    from websockets.exceptions import ConnectionClosed

    from tests.e2e.hostile import Browser
    from tests.e2e.wsclients import _origin

    burst = 10  # of the bucket every anonymous socket from 127.0.0.1 shares; it refills once an hour
    env = {"HYPERGEN_WS_OVERRIDES": json.dumps({"ANONYMOUS_RATE_LIMIT": "1/h", "ANONYMOUS_RATE_BURST": burst})}
    server = live_server_factory(server=server_kind, env=env)
    path = "/ws/counter/increment/"
    honest = await Browser(server).login("alice").socket(path)
    flooders = [await ws_connect(server.ws_url + path, origin=_origin(server.ws_url + path), open_timeout=30,
                                 max_queue=None) for _ in range(30)]

    async def send_all(ws) -> None:
        for n in range(100):
            await ws.send(json.dumps({"args": [], "id": n}))

    async def answers(ws) -> tuple[int, list[str], int | None]:
        replies, errors = 0, []
        try:
            while True:
                frame = json.loads(await ws.recv())
                if frame["type"] == "reply":
                    replies += 1
                elif frame["type"] == "error":
                    errors.append(frame["code"])
        except ConnectionClosed:
            pass
        return replies, errors, ws.close_code

    readers = [asyncio.ensure_future(answers(ws)) for ws in flooders]
    await asyncio.gather(*(send_all(ws) for ws in flooders))
    await honest.send(json.dumps({"args": [], "id": "honest"}))
    while (frame := json.loads(await asyncio.wait_for(honest.recv(), 60))).get("id") != "honest":
        pass
    assert frame["type"] == "reply", frame
    results = await asyncio.wait_for(asyncio.gather(*readers), 60)
    ran = sum(replies for replies, _errors, _code in results)
    assert ran <= burst + 1, f"{ran} of 3,000 flooded calls ran"
    # Each flooder: 40 refusals (its own burst), then closed; what it sent after that was dropped unanswered.
    assert [errors for _replies, errors, _code in results] == [["rate_limited"] * 40] * 30
    assert [code for _replies, _errors, code in results] == [1008] * 30
    await honest.close()


def redis_keys(url: str) -> dict[str, tuple[int, int]]:
    """Every key of the redis-server: name -> (type initial, milliseconds to live, -1 for none)."""
    from redis import Redis

    with Redis.from_url(url) as client:
        return {key.decode(): (client.type(key).decode()[0], client.pttl(key)) for key in client.scan_iter(count=1000)}


async def test_rooms_nobody_is_in_any_more_leave_nothing_in_redis_but_short_lived_records(redis_server,
                                                                                          live_server_factory):
    from hypergen_ws.backends.base import EMPTY_RECORD_TTL
    from tests.e2e.hostile import CHAT, Browser, frames_until

    server = live_server_factory(server="daphne", redis_url=redis_server.url)
    alice = Browser(server).login("alice")
    rooms = [f"room-{n}" for n in range(300)]
    for room in rooms:
        ws = await alice.socket(CHAT.format(room=room))
        await frames_until(ws, lambda f: f.get("event") == "list")
        await ws.close()
    talked = await alice.socket(CHAT.format(room="lobby"))  # a room that exists: the message is stored
    await frames_until(talked, lambda f: f.get("event") == "list")
    await talked.send('{"args": ["kept for a while"], "id": 1}')
    await frames_until(talked, lambda f: f.get("id") == 1)
    await talked.close()
    from tests.e2e.wsclients import wait_until

    # The last leaves reach Redis asynchronously: wait until no presence entry is left.
    assert await asyncio.to_thread(wait_until, lambda: not any(
        k.startswith(("hgws:presence:", "hgws:pcount:")) for k in redis_keys(redis_server.url)), 15)
    keys = redis_keys(redis_server.url)
    per_room = {k: v for k, v in keys.items() if "room-" in k}
    assert set(per_room) == {f"hgws:seq:hgws.chat.send_message.room_name.{room}" for room in rooms}, per_room
    assert all(0 < ttl <= EMPTY_RECORD_TTL * 1000 for _kind, ttl in per_room.values()), "each goes within a minute"
    lasting = sorted(k for k, (_kind, ttl) in keys.items() if ttl == -1)
    assert lasting == ["hgws:instance", "hgws:procs"], lasting
    assert keys["hgws:seq:hgws.chat.send_message.room_name.lobby"][1] > EMPTY_RECORD_TTL * 1000, \
        "a room with history keeps it"


async def test_a_killed_process_is_swept_from_redis_with_its_group_memberships(redis_server, live_server_factory):
    import json
    import time

    from tests.e2e.hostile import CHAT, Browser, frames_until
    from tests.e2e.wsclients import wait_until

    env = {"HYPERGEN_WS_OVERRIDES": json.dumps({"PROCESS_HEARTBEAT_INTERVAL": 0.5, "PROCESS_TTL": 2.0})}
    survivor = live_server_factory(server="daphne", redis_url=redis_server.url, env=env)
    victim = live_server_factory(server="uvicorn", redis_url=redis_server.url, env=env)
    rooms = [f"room-{n}" for n in range(30)]
    watcher = await Browser(survivor).login("alice").socket(CHAT.format(room="room-0"))
    await frames_until(watcher, lambda f: f.get("event") == "list")
    bob = Browser(victim).login("bob")
    sockets = []
    for room in rooms:
        ws = await bob.socket(CHAT.format(room=room))
        await frames_until(ws, lambda f: f.get("event") == "list")
        sockets.append(ws)
    await frames_until(watcher, lambda f: f.get("event") == "join" and f.get("username") == "bob")

    def victim_channels() -> dict[str, str]:
        from redis import Redis

        with Redis.from_url(redis_server.url) as client:  # the heartbeat keys of the process with room-5
            keys = [k for k in client.scan_iter("hgws:pc:*") if client.hget(k, "hgws.chat.send_message.room_name.room-5")]
            return {g.decode(): c.decode() for g, c in client.hgetall(keys[0]).items()} if keys else {}

    assert await asyncio.to_thread(wait_until, lambda: len(victim_channels()) == 31, 10)  # 30 rooms + control
    channels = victim_channels()
    victim.kill()  # kill -9: no leave, no goodbye
    killed = time.monotonic()
    for ws in sockets:
        ws.transport.abort()

    def swept() -> bool:
        from redis import Redis

        with Redis.from_url(redis_server.url) as client:
            return not any(client.zscore(f"asgi:group:{group}", channel) is not None
                           for group, channel in channels.items())

    assert await asyncio.to_thread(wait_until, swept, 30), "the dead process is still a member of its groups"
    print(f"memberships of the killed process removed {time.monotonic() - killed:.1f} s after kill -9")
    await frames_until(watcher, lambda f: f.get("event") == "leave" and f.get("username") == "bob", timeout=30)
    keys = redis_keys(redis_server.url)
    presence = sorted(k for k in keys if k.startswith(("hgws:presence:", "hgws:pcount:")))
    assert presence == ["hgws:pcount:hgws.chat.send_message.room_name.room-0",
                        "hgws:presence:hgws.chat.send_message.room_name.room-0"], presence  # the watcher's
    for kind in ("hgws:pc:", "hgws:pg:", "hgws:pgroups:"):  # the live process's own heartbeat keys only
        assert len([k for k in keys if k.startswith(kind)]) == 1, (kind, sorted(keys))
    groups = [k for k in keys if k.startswith("asgi:group:hgws.chat.send_message.room_name.")]
    assert groups == ["asgi:group:hgws.chat.send_message.room_name.room-0"], groups
