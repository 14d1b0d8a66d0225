"""A logout racing reconnects, across server processes: sockets of the user that were connecting while the logout
ran do not stay open, in any process.

Two servers (daphne and uvicorn, ``tests/e2e/gate_app.py``) share a real redis-server. The other browser's
sockets connect in a loop to the ``gated`` consumer, whose connects wait in their permission check: when the
logout runs, every one of them is under way (its consumer exists, its user is not counted yet). The browser that
logs out keeps connecting to the chat, on both servers, while its logout request runs. In one process:
tests/test_revocation.py.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from tests.e2e.hostile import CHAT, LISTEN, Browser, closed, frames_until
from tests.gate_consumers import gated, open_gate, waiting

pytestmark = pytest.mark.timeout(240)
GATED = gated.reverse()
LOBBY = CHAT.format(room="lobby")  # only for users who may chat: a socket without a login is refused with 4401


@pytest.fixture
def servers(redis_server, live_server_factory, tmp_path):
    env = {"HGWS_TEST_GATE": str(tmp_path / "gate")}
    return [live_server_factory("tests.e2e.gate_app:application", server=kind, redis_url=redis_server.url,
                                env=env, migrate=True) for kind in ("daphne", "uvicorn")]


async def until(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.02)


async def end_of(attempt: asyncio.Task[Any]) -> int | None:
    """How a socket that connected ended: its close code, None while it is still open (1 s after the end)."""
    try:
        ws = await attempt
    except ConnectionClosed as exc:  # (closed during the handshake)
        return exc.rcvd.code if exc.rcvd else 1006
    return (await closed(ws, timeout=3)).code


async def test_sockets_connecting_while_a_logout_runs_do_not_stay_open(servers, tmp_path):
    daphne, uvicorn = servers
    gate = tmp_path / "gate"
    laptop, phone = Browser(daphne).login("alice"), Browser(uvicorn).login("alice")
    bob = Browser(uvicorn).login("bob")
    bystanders = [await bob.socket(LISTEN, daphne), await bob.socket(LISTEN, uvicorn)]  # servers in service
    # The phone's sockets connect one after another, on both servers; each waits at the gate (for less than
    # daphne's handshake timeout, some 4 s, after which daphne would drop it).
    phone_sockets: list[asyncio.Task[Any]] = []
    for i in range(12):
        phone_sockets.append(asyncio.create_task(phone.socket(GATED, (daphne, uvicorn)[i % 2])))
        await asyncio.sleep(0.01)
    await until(lambda: waiting(gate) == len(phone_sockets), "the phone's connects at the gate", timeout=3)
    # The laptop connects in a loop, on both servers, while its logout request runs (in a thread).
    laptop_sockets: list[asyncio.Task[Any]] = []
    logout = asyncio.create_task(asyncio.to_thread(laptop.logout))
    i = 0
    while not logout.done():
        laptop_sockets.append(asyncio.create_task(laptop.socket(LOBBY, (daphne, uvicorn)[i % 2])))
        i += 1
        await asyncio.sleep(0.02)
    await logout
    open_gate(gate)
    phone_ends = await asyncio.gather(*(end_of(t) for t in phone_sockets))
    laptop_ends = await asyncio.gather(*(end_of(t) for t in laptop_sockets))
    print(f"{len(laptop_sockets)} sockets of the laptop connected during its logout; their close codes (None: "
          f"open): {dict(Counter(laptop_ends))}; the phone's: {dict(Counter(phone_ends))}")
    assert phone_ends == [4401] * len(phone_sockets), "the other browser's connects under way close"
    assert None not in laptop_ends, "no socket of the browser that logged out stays open"
    assert set(laptop_ends) <= {4401}, laptop_ends
    # The phone is still logged in: a connect after the logout is a new one, and stays.
    after = await phone.socket(GATED, uvicorn)
    await after.send(json.dumps({"args": ["after"], "id": 1}))
    await frames_until(after, lambda f: f.get("type") == "reply")
    for ws in (after, *bystanders):
        assert (await closed(ws, timeout=0.2)).code is None
        await ws.close()
