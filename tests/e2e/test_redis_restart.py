"""A redis-server killed (``kill -9``) and started again under daphne and uvicorn sharing it: every socket, with
history or without, is told once that it may have missed frames, and each server logs the outage once (a WARNING
when it starts, an INFO with the count when it ends), without a traceback."""
from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.e2e.hostile import CHAT, Browser, frames_until

pytestmark = pytest.mark.timeout(300)

LOBBY = CHAT.format(room="lobby")
COUNTER = "/ws/counter/increment/"  # a consumer without history
ENV = {"HYPERGEN_WS_OVERRIDES": json.dumps({"PUBLISH_TIMEOUT": 2, "PROCESS_HEARTBEAT_INTERVAL": 0.5})}
ROOM = {"consumer": "chat.send_message", "kwargs": {"room_name": "lobby"}}
COUNTER_GROUP = {"consumer": "counter.increment", "kwargs": {}}


def publish(server: Any, target: dict[str, Any], data: str) -> int:
    """POST ``data`` to the group of ``target`` over the HTTP endpoint; the status."""
    from testproject.settings import DEMO_PUBLISH_KEY

    request = urllib.request.Request(f"{server.url}/hypergen_ws/publish/", data=json.dumps(
        {**target, "data": data}).encode(), headers={"Authorization": f"Bearer {DEMO_PUBLISH_KEY}",
                                                     "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


class Reader:
    """Every frame a socket receives, read in the background."""

    def __init__(self, ws: Any) -> None:
        self.frames: list[dict[str, Any]] = []
        self.task = asyncio.get_running_loop().create_task(self._read(ws))

    async def _read(self, ws: Any) -> None:
        async for text in ws:
            self.frames.append(json.loads(text))

    def got(self, data: str) -> bool:
        return any(f.get("data") == data for f in self.frames)

    def resyncs(self, epoch: int | None) -> list[str]:
        """The resyncs a client reports, as the JavaScript client does: resync frames, and frames of a new epoch."""
        reported = []
        for frame in self.frames:
            if frame.get("type") == "resync":
                reported.append(frame["reason"])
                epoch = frame["epoch"]
            elif isinstance(frame.get("seq"), int):
                if epoch is not None and frame["epoch"] != epoch:
                    reported.append("epoch_changed")
                epoch = frame["epoch"]
        return reported


async def test_after_a_redis_restart_each_socket_gets_one_resync_and_each_server_logs_the_outage_once(
        redis_server, live_server_factory):
    daphne = live_server_factory(server="daphne", redis_url=redis_server.url, env=ENV)
    uvicorn = live_server_factory(server="uvicorn", redis_url=redis_server.url, env=ENV)
    epochs, readers = {}, {}
    for name, server in (("daphne", daphne), ("uvicorn", uvicorn)):
        ws = await Browser(server).login("alice").socket(LOBBY)
        seen: list[dict[str, Any]] = []
        await frames_until(ws, lambda f: seen.append(f) or {"sync", "presence"} <= {g["type"] for g in seen})
        epochs[name] = next(f["epoch"] for f in seen if f["type"] == "sync")
        readers[name] = Reader(ws)
    counter = await Browser(uvicorn).login("bob").socket(COUNTER)
    assert await asyncio.to_thread(publish, daphne, COUNTER_GROUP, "before") == 200  # over the layer to uvicorn
    await frames_until(counter, lambda f: f.get("data") == "before")
    readers["counter"] = Reader(counter)
    epochs["counter"] = None

    await asyncio.to_thread(redis_server.kill)
    for n in range(3):
        assert await asyncio.to_thread(publish, daphne, ROOM, f"while down {n}") == 503
    await asyncio.to_thread(redis_server.start)  # the same port, no data

    # Publishing through daphne until every socket has frames after the restart; uvicorn's sockets miss those
    # published before it joined its groups again, and are told so.
    n = 0
    async with asyncio.timeout(60):
        while not all(any(r.got(f"after {k}") for k in range(1, n + 1)) for r in readers.values()):
            n += 1
            for target in (ROOM, COUNTER_GROUP):
                assert await asyncio.to_thread(publish, daphne, target, f"after {n}") == 200
            await asyncio.sleep(0.2)
    for target in (ROOM, COUNTER_GROUP):
        assert await asyncio.to_thread(publish, daphne, target, "last") == 200
    async with asyncio.timeout(15):
        while not all(r.got("last") for r in readers.values()):
            await asyncio.sleep(0.05)

    for name, reader in readers.items():
        assert len(reader.resyncs(epochs[name])) == 1, (name, reader.resyncs(epochs[name]), reader.frames)
    assert readers["counter"].resyncs(None) == ["rejoined"]
    assert readers["uvicorn"].resyncs(epochs["uvicorn"]) in (["history_lost"], ["epoch_changed"])
    for server in (daphne, uvicorn):
        log = server.log_path.read_text()
        assert log.count("The channel layer (Redis) is unavailable") == 1, log
        ended = re.findall(r"The channel layer \(Redis\) answers again after .*", log)
        assert len(ended) == 1, log
        assert "Traceback" not in log, log
    assert re.search(r"\(.*publish 3\b", re.findall(r"answers again after .*", daphne.log_path.read_text())[0])
