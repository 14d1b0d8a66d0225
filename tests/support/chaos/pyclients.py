"""Clients of the chaos run built on the Python client (:func:`hypergen_ws.client.connect`), beside the
``websockets`` ones that follow hypergen-ws.js (:mod:`.clients`).

The Python client recovers by itself (docs/clients.rst): it reconnects with its position, drops what it handled
already, and yields ``resync`` frames. This wrapper only reads ``conn.frames()`` and records what the application
got, as :class:`~.clients.Event` rows the checker reads; a lost connection points the client's proxy at the next
server (a load balancer that takes a dead server out). The Python client does not hand its ``sync`` frames over, so
the first frame stands for the first sync; a ``resync`` the client makes itself (``epoch_changed`` for a live frame
of a new epoch, ``rolled_back``) carries the seq of the frame that follows it, and is recorded at the position
before that frame.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from hypergen_ws.client import connect

from .clients import Event, Publish, frame_ids
from .proxy import BlackholeProxy


@dataclass
class PyChaosClient:
    name: str
    group: str
    path: str
    servers: list[int]
    proxy: BlackholeProxy
    origin: str
    caller: bool = False
    silence: float = 6.0
    events: list[Event] = field(default_factory=list)
    publishes: list[Publish] = field(default_factory=list)
    index: int = 0
    _reading: asyncio.Event = field(default_factory=asyncio.Event)
    _conn: Any = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _pending: dict[str, Any] | None = None  # a resync waiting to see the frame after it

    @property
    def synced(self) -> bool:
        conn = self._conn
        return conn is not None and conn.state == "open" and conn.position.synced

    def start(self) -> PyChaosClient:
        self._reading.set()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._run()))
        return self

    async def stop(self) -> None:
        self.caller = False
        self._reading.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        self._flush()

    def pause_reading(self) -> None:
        """Stop taking frames from ``conn.frames()`` (they queue in the client, up to its ``frame_limit``)."""
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    def log(self, kind: str, **values: Any) -> None:
        self.events.append(Event(time.time(), kind, **values))

    async def _run(self) -> None:
        self.proxy.upstream_port = self.servers[0]
        half = self.silence / 2  # the client gives a socket up after ping_interval + ping_timeout of silence
        conn = self._conn = connect(f"ws://127.0.0.1:{self.proxy.port}{self.path}", headers={"Origin": self.origin},
                                    backoff_base=0.05, backoff_max=2.0, ping_interval=half, ping_timeout=half,
                                    open_timeout=30)
        await conn.open()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._fail_over(conn)))
        if self.caller:
            self._tasks.append(loop.create_task(self._call_loop(conn)))
        async for frame in conn.frames():
            await self._reading.wait()
            self._on_frame(frame)

    async def _fail_over(self, conn: Any) -> None:
        state = conn.state
        while True:
            await asyncio.sleep(0.02)
            if conn.state != state:
                if conn.state == "reconnecting":
                    self.index += 1
                    self.proxy.upstream_port = self.servers[self.index % len(self.servers)]
                    self.log("lost", reason="python client reconnecting")
                elif conn.state == "open":
                    self.log("connect", reason=str(self.proxy.upstream_port))
                state = conn.state

    def _on_frame(self, frame: dict[str, Any]) -> None:
        seq, epoch = frame.get("seq"), frame.get("epoch")
        if self._pending is not None:
            resync, self._pending = self._pending, None
            after = isinstance(seq, int) and seq == resync.get("seq") and epoch == resync.get("epoch")
            self._resync(resync, seq - 1 if after and isinstance(seq, int) else resync.get("seq"))
        if frame.get("type") == "resync":
            if frame.get("reason") in ("epoch_changed", "rolled_back"):
                self._pending = frame  # maybe the client's own, before the frame it is about
            else:
                self._resync(frame, frame.get("seq"))
            return
        if isinstance(seq, int) and not any(e.kind in ("sync", "resync") for e in self.events):
            self.log("sync", seq=seq - 1, epoch=epoch)  # the first frame stands for the client's first sync
        self.log("deliver", seq=seq if isinstance(seq, int) else None,
                 epoch=epoch if isinstance(epoch, int) else None, ids=frame_ids(frame))

    def _resync(self, frame: dict[str, Any], seq: Any) -> None:
        self.log("resync", seq=seq if isinstance(seq, int) else None,
                 epoch=frame.get("epoch") if isinstance(frame.get("epoch"), int) else None,
                 reason=str(frame.get("reason", "")))

    def _flush(self) -> None:
        if self._pending is not None:
            resync, self._pending = self._pending, None
            self._resync(resync, resync.get("seq"))

    async def _call_loop(self, conn: Any) -> None:
        number = 0
        while self.caller:
            await asyncio.sleep(0.1)
            if not self.synced:
                continue
            number += 1
            publish = Publish(f"{self.name}:{number}", self.group, "call", time.time())
            self.publishes.append(publish)
            try:
                result = await conn.call(publish.id, timeout=10)
            except Exception as exc:  # Disconnected (it may have run), a timeout: the outcome is unknown
                publish.error = type(exc).__name__
            else:
                publish.acked = result.error is None
                publish.error = "" if result.error is None else str(result.error.get("code"))
            publish.answered = time.time()
