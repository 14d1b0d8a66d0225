"""MAX_CONNECTIONS_PER_USER across a Redis freeze, with daphne and uvicorn sharing one real redis-server: Redis is
SIGSTOPped while a user's connects run, SIGCONTed, every socket closes, and no place stays taken in Redis; the
user can connect again on both servers (docs/security.rst)."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from redis import asyncio as aioredis

from tests.e2e.hostile import LISTEN, Browser, closed

pytestmark = pytest.mark.timeout(300)


async def try_socket(browser: Browser, server: Any) -> Any | None:
    """A socket of ``browser`` to LISTEN on ``server``, or None when the handshake failed (Redis was frozen)."""
    try:
        return await browser.socket(LISTEN, server)
    except Exception as exc:  # a handshake the server dropped while Redis did not answer
        print(f"a handshake on {server.url} failed: {type(exc).__name__}: {exc}")
        return None


async def places(redis_url: str) -> dict[str, dict[str, int]]:
    """Every user's places per server process in Redis (``<p>:uconn:<user>``; only alice's sockets are capped)."""
    client = aioredis.from_url(redis_url)
    try:
        found = {}
        async for key in client.scan_iter(match="hgws:uconn:*"):
            found[key.decode()] = {k.decode(): int(v) for k, v in (await client.hgetall(key)).items()}
        return {key: value for key, value in found.items() if value}
    finally:
        await client.aclose()


async def accepted_on(browser: Browser, server: Any) -> bool:
    """Whether a new socket of ``browser`` stays open on ``server`` (not refused with 1008); closed afterwards."""
    ws = await browser.socket(LISTEN, server)
    end = await closed(ws, timeout=0.5)
    if end.code is None:
        await ws.close()
        return True
    assert end.code == 1008, end
    return False


@pytest.mark.parametrize("run", range(2))
async def test_no_place_stays_taken_after_a_redis_freeze_during_connects(run, redis_server, live_server_factory):
    env = {"HYPERGEN_WS_OVERRIDES": json.dumps({"MAX_CONNECTIONS_PER_USER": 2, "PROCESS_HEARTBEAT_INTERVAL": 0.5})}
    daphne, uvicorn = [live_server_factory(server=kind, redis_url=redis_server.url, env=env)
                       for kind in ("daphne", "uvicorn")]
    alice = Browser(uvicorn).login("alice")
    before = await alice.socket(LISTEN, daphne)  # one place taken before the freeze
    redis_server.freeze()
    try:
        connects = [asyncio.create_task(try_socket(alice, server)) for server in (daphne, uvicorn) * 4]
        await asyncio.sleep(12)
    finally:
        redis_server.thaw()
    # Every socket closes as soon as it can, while the servers write their counts again after the freeze.
    await before.close()
    opened = 0
    for connect in asyncio.as_completed(connects):
        ws = await connect
        if ws is not None:
            opened += 1
            await ws.close()
    print(f"run {run}: {opened} of 8 handshakes completed during or after the freeze")
    deadline = time.monotonic() + 30  # a heartbeat (PROCESS_HEARTBEAT_INTERVAL 0.5 s) writes the counts again
    left = await places(redis_server.url)
    while left and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        left = await places(redis_server.url)
    assert left == {}, f"places of alice left in Redis although she holds no socket: {left}"
    for server in (daphne, uvicorn):
        assert await accepted_on(alice, server), f"alice is refused on {server.url}"
