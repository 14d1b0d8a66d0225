"""What a server keeps for rooms nobody is in any more: RSS and Redis keys after one user opened N rooms.

One logged-in user opens N distinct chat rooms one after the other (``history=50``, ``presence=True``): connect,
wait for the presence list, close. The script prints the server's RSS before and after, per room, and, on Redis,
the keys left and how many of them have no expiry. With ``--kill`` a second server process with sockets in every
room is killed with ``kill -9``, and the script reports what it left in Redis once a live process swept it.

The server runs the test project with ``DEBUG=False`` (``DJANGO_DEBUG=0``), as in production, unless ``--debug``
is given: with ``DEBUG=True`` Django also keeps a log of every SQL query (``connection.queries``, up to 9,000
queries per database connection, one connection per worker thread), which grows with the rooms opened until it is
full. The output says which one was measured (``"debug"``).

.. code-block:: shell

   python benchmarks/rooms.py --rooms 10000 --layer memory
   python benchmarks/rooms.py --rooms 10000 --layer redis --kill
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.hostile import CHAT, Browser  # noqa: E402
from tests.support.servers import AsgiServer, RedisServer  # noqa: E402


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def redis_keys(url: str) -> tuple[int, int, dict[str, int]]:
    """(keys, keys without expiry, keys by kind)."""
    from redis import Redis

    kinds: dict[str, int] = {}
    without = 0
    with Redis.from_url(url) as client:
        keys = list(client.scan_iter(count=1000))
        for key in keys:
            name = key.decode()
            kind = ":".join(name.split(":")[:2]) if name.startswith(("hgws:", "asgi:")) else name.split(":")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
            if client.ttl(key) == -1:
                without += 1
    return len(keys), without, dict(sorted(kinds.items()))


async def open_rooms(browser: Browser, server: AsgiServer, names: list[str], keep: bool = False) -> list:
    kept = []
    for name in names:
        ws = await browser.socket(CHAT.format(room=name), server)
        while json.loads(await ws.recv()).get("event") != "list":
            pass
        if keep:
            kept.append(ws)
        else:
            await ws.close()
    return kept


def migrated_db(directory: Path) -> Path:
    import os
    import subprocess

    path = directory / "rooms.sqlite3"
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="testproject.settings", HYPERGEN_WS_DB=str(path))
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=env, check=True)
    return path


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=2000)
    parser.add_argument("--layer", choices=["memory", "redis"], default="memory")
    parser.add_argument("--server", choices=["daphne", "uvicorn"], default="daphne")
    parser.add_argument("--kill", action="store_true", help="also kill -9 a second process with sockets in rooms")
    parser.add_argument("--passes", type=int, default=1,
                        help="open N new rooms this many times; RSS is reported after each pass")
    parser.add_argument("--baseline", action="store_true",
                        help="first open and close as many sockets of one room (what a connection costs anyway)")
    parser.add_argument("--debug", action="store_true",
                        help="run the server with DEBUG=True (adds Django's SQL query log to the figures)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hgws-rooms-"))
    db = migrated_db(work)
    redis = RedisServer(log_dir=work / "redis") if args.layer == "redis" else None
    url = redis.url if redis else None
    env = {"DJANGO_DEBUG": "1" if args.debug else "0"}
    server = AsgiServer(server=args.server, redis_url=url, db=db, log_dir=work / "server", env=env)
    result: dict[str, object] = {"rooms": args.rooms, "layer": args.layer, "server": args.server,
                                 "debug": args.debug}
    try:
        assert server.process is not None
        browser = Browser(server).login("alice")
        await open_rooms(browser, server, [f"warm-{n}" for n in range(200)])
        if args.baseline:
            first = rss_mib(server.process.pid)
            await open_rooms(browser, server, ["same"] * args.rooms)
            result["one_room_bytes_per_socket"] = round((rss_mib(server.process.pid) - first) * 2**20 / args.rooms)
        before = rss_mib(server.process.pid)
        start = time.monotonic()
        passes = []
        for number in range(args.passes):
            first = rss_mib(server.process.pid)
            await open_rooms(browser, server, [f"room-{number}-{n}" for n in range(args.rooms)])
            await asyncio.sleep(2)
            passes.append({"rss_after_mib": round(rss_mib(server.process.pid), 1),
                           "bytes_per_room": round((rss_mib(server.process.pid) - first) * 2**20 / args.rooms)})
        result["seconds"] = round(time.monotonic() - start, 1)
        after = rss_mib(server.process.pid)
        result.update(rss_before_mib=round(before, 1), rss_after_mib=round(after, 1),
                      bytes_per_room=round((after - before) * 2**20 / (args.rooms * args.passes)), passes=passes)
        if url:
            keys, without, kinds = redis_keys(url)
            result.update(redis_keys=keys, redis_keys_without_expiry=without, redis_kinds=kinds)
            if args.kill:
                victim = AsgiServer(server=args.server, redis_url=url, db=db, log_dir=work / "victim", env=env)
                assert victim.process is not None
                sockets = await open_rooms(Browser(victim).login("bob"), victim,
                                           [f"room-0-{n}" for n in range(min(args.rooms, 1000))], keep=True)
                result["keys_with_victim"] = redis_keys(url)[2]
                victim.kill()
                for ws in sockets:
                    ws.transport.abort()
                await asyncio.sleep(16)  # PROCESS_TTL (10 s) + a heartbeat of the live process (3 s)
                keys, without, kinds = redis_keys(url)
                result.update(keys_after_kill=keys, keys_after_kill_without_expiry=without, kinds_after_kill=kinds)
    finally:
        server.stop()
        if redis:
            redis.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
