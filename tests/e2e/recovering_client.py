"""A ``websockets`` client that recovers like hypergen-ws.js does (docs/delivery.rst).

It reconnects with ``?hgws_seq=<last seq>&hgws_epoch=<epoch>``, trying the next server of its list after a
failure (fail-over), drops frames it already handled, reconnects at once when a seq is skipped, and records
``resync`` frames (and live frames of a new epoch) as resync events. It answers the server's pings, waits the
delay of a ``reconnect`` frame before it reconnects, and with ``liveness`` gives a socket up that said nothing for
that many seconds (docs/protocol.rst, "Heartbeat").
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException


class RecoveringClient:
    def __init__(self, servers: list[str], path: str, liveness: float | None = None) -> None:
        self.servers = servers
        self.path = path
        self.liveness = liveness
        #: the delays of the reconnect frames, the close codes of the sockets, and the commands of commands frames
        self.hints: list[float] = []
        self.closes: list[int | None] = []
        self.commands: list[Any] = []
        self.pings = 0
        self._hint: float | None = None
        self.index = 0
        self.last_seq: int | None = None
        self.epoch: int | None = None
        self.synced = False
        self.messages: list[Any] = []
        self.resyncs: list[dict[str, Any]] = []
        self.presence: list[dict[str, Any]] = []
        self.connects: list[str] = []
        #: frames the server sent twice (seq already handled), and seqs skipped (each a reconnect)
        self.duplicates = 0
        self.gaps = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return (f"<RecoveringClient {len(self.messages)} messages, last {self.messages[-3:]}, seq {self.last_seq}, "
                f"epoch {self.epoch}, {len(self.resyncs)} resyncs, {self.gaps} gaps, {len(self.connects)} connects>")

    def url(self) -> str:
        url = self.servers[self.index % len(self.servers)] + self.path
        if self.last_seq is not None and self.epoch is not None:
            url += f"?hgws_seq={self.last_seq}&hgws_epoch={self.epoch}"
        return url

    def start(self) -> RecoveringClient:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while not self._stop.is_set():
            url = self.url()
            try:
                async with connect(url, open_timeout=5, ping_interval=None, close_timeout=1) as ws:
                    self.connects.append(url)
                    self.synced = False
                    try:
                        while True:
                            async with asyncio.timeout(self.liveness):
                                raw = await ws.recv()
                            frame = json.loads(raw)
                            if frame.get("type") == "ping":
                                self.pings += 1
                                await ws.send('{"type":"pong"}')
                            elif not self._on_frame(frame):
                                break  # a skipped seq: reconnect now, the server replays
                    finally:
                        self.closes.append(ws.close_code)
            except (OSError, asyncio.TimeoutError, WebSocketException):
                self.index += 1  # fail over to the next server
            hint, self._hint = self._hint, None
            await asyncio.sleep(0.05 if hint is None else hint)

    def _on_frame(self, frame: dict[str, Any]) -> bool:
        kind = frame.get("type")
        if kind in ("sync", "resync"):
            self.synced = True
            self.last_seq, self.epoch = frame.get("seq"), frame.get("epoch")
            if kind == "resync":
                self.resyncs.append(frame)
            return True
        seq, epoch = frame.get("seq"), frame.get("epoch")
        if isinstance(seq, int) and isinstance(epoch, int):
            if self.synced and self.last_seq is not None and self.epoch is not None:
                if epoch != self.epoch:
                    self.resyncs.append({"type": "resync", "reason": "epoch_changed", "seq": seq, "epoch": epoch})
                elif seq <= self.last_seq:
                    self.duplicates += 1
                    return True
                elif seq > self.last_seq + 1:
                    self.gaps += 1
                    return False
            self.last_seq, self.epoch = seq, epoch
        if kind == "reconnect":
            self.hints.append(frame["delay"])
            self._hint = frame["delay"]
        elif kind == "message":
            self.messages.append(frame["data"])
        elif kind == "commands":
            self.commands.extend(frame["commands"])
        elif kind == "presence":
            self.presence.append(frame)
        return True


async def wait_for(condition: Any, timeout: float, what: Any = "") -> None:
    """Poll ``condition()`` every 50 ms until it is true; fail after ``timeout`` seconds (``what`` may be a
    callable that describes the state then)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what() if callable(what) else what}")
        await asyncio.sleep(0.05)
