"""Clients of the chaos run: ``websockets`` clients that recover the way hypergen-ws.js does, and record it all.

A client connects through its own :class:`~tests.support.chaos.proxy.BlackholeProxy` to one of the servers,
fails over to the next after an error, reconnects with ``?hgws_seq=&hgws_epoch=`` (docs/delivery.rst), drops a
frame it already handled (the same (epoch, seq) never twice), reconnects at once when a seq is skipped, answers ``ping`` frames, honours a
``reconnect`` hint's delay, and reconnects when it hears nothing for ``silence`` seconds (a dead path). Every
decision goes to ``events``, which the checker reads: the frames handed to the application (``deliver``), the
resyncs, the connects and the losses of connection. A client can also publish: ``caller=True`` makes it call the
consumer in a loop (a call publishes its text to the group; the reply is the acknowledgement).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from .proxy import BlackholeProxy


@dataclass
class Event:
    t: float
    kind: str  # connect, lost, sync, resync, deliver, passed, hint (a reconnect frame), silence
    seq: int | None = None
    epoch: int | None = None
    ids: tuple[str, ...] = ()
    reason: str = ""


@dataclass
class Publish:
    """What one publisher was told about one message."""

    id: str
    group: str
    kind: str  # http, worker, call
    sent: float
    acked: bool | None = None  # None: no answer (a connection lost before the reply, a timeout)
    answered: float | None = None
    error: str = ""


def frame_ids(frame: dict[str, Any]) -> tuple[str, ...]:
    """The run's message ids in a frame: ``{"id": ...}`` data, or the text of ``append`` commands."""
    if frame.get("type") == "message" and isinstance(frame.get("data"), dict):
        return (str(frame["data"].get("id")),)
    if frame.get("type") == "commands":
        return tuple(str(c[1]) for c in frame.get("commands", []) if isinstance(c, list) and c[:1] == ["append"])
    return ()


@dataclass
class ChaosClient:
    name: str
    group: str  # the label-free key of the group, e.g. "feed/r0"
    path: str
    servers: list[int]  # ports
    proxy: BlackholeProxy
    caller: bool = False
    call_interval: float = 0.1
    silence: float = 6.0
    events: list[Event] = field(default_factory=list)
    publishes: list[Publish] = field(default_factory=list)
    last_seq: int | None = None
    epoch: int | None = None
    synced: bool = False
    #: The highest seq handed over in each of the last 8 epochs, and whether frames were dropped as handed over
    #: once while the position was behind that mark (hypergen-ws.js: never the same (epoch, seq) twice).
    handled: dict[int, int] = field(default_factory=dict)
    doubt: bool = False
    index: int = 0
    _reading: asyncio.Event = field(default_factory=asyncio.Event)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _ws: ClientConnection | None = None
    _calls: dict[int, Publish] = field(default_factory=dict)
    _delay: float = 0.0
    _pending_pongs: list[str] = field(default_factory=list)

    def start(self) -> ChaosClient:
        self._reading.set()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._run()))
        if self.caller:
            self._tasks.append(loop.create_task(self._call_loop()))
        return self

    async def stop(self) -> None:
        self._stop.set()
        self._reading.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def pause_reading(self) -> None:
        """Stop reading the socket (a client that hangs); frames pile up until the server gives up on it."""
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    def log(self, kind: str, **values: Any) -> None:
        self.events.append(Event(time.time(), kind, **values))

    def url(self) -> str:
        url = f"ws://127.0.0.1:{self.proxy.port}{self.path}"
        if self.last_seq is not None and self.epoch is not None:
            url += f"?hgws_seq={self.last_seq}&hgws_epoch={self.epoch}"
        return url

    async def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self.proxy.upstream_port = self.servers[self.index % len(self.servers)]
            try:
                async with connect(self.url(), open_timeout=5, ping_interval=None, close_timeout=1,
                                   max_queue=64) as ws:
                    self._ws, failures = ws, 0
                    self.synced = False
                    self.log("connect", reason=str(self.proxy.upstream_port))
                    await self._read(ws)
            except (OSError, asyncio.TimeoutError, WebSocketException) as exc:
                failures += 1
                self.index += 1  # fail over to the next server
                code = exc.rcvd.code if isinstance(exc, ConnectionClosed) and exc.rcvd is not None else None
                self.log("lost", reason=type(exc).__name__ if code is None else f"close {code}")
            finally:
                self._ws = None
                self.synced = False
                self._fail_calls("connection lost")
            delay, self._delay = self._delay, 0.0
            await asyncio.sleep(delay or min(2.0, 0.05 * 2 ** min(failures, 6)) * random.uniform(0.5, 1.0))

    async def _read(self, ws: ClientConnection) -> None:
        while True:
            await self._reading.wait()
            try:
                raw = await asyncio.wait_for(ws.recv(), self.silence)
            except TimeoutError:
                self.log("silence")
                return
            if not self._on_frame(json.loads(raw)):
                return  # a skipped seq, or a reconnect hint: reconnect now
            for frame in self._pending_pongs:
                await ws.send(frame)
            self._pending_pongs.clear()

    def _on_frame(self, frame: dict[str, Any]) -> bool:
        kind = frame.get("type")
        if kind == "ping":
            self._pending_pongs.append('{"type":"pong"}')
            return True
        if kind == "reconnect":  # a server that shuts down: the close with 1012 follows (hypergen-ws.js waits)
            self._delay = float(frame.get("delay", 0) or 0)
            self.log("hint", reason=f"reconnect in {self._delay:.2f} s")
            return True
        if kind in ("reply", "error") and isinstance(frame.get("id"), int):
            publish = self._calls.pop(frame["id"], None)
            if publish is not None:
                publish.acked, publish.answered = kind == "reply", time.time()
                publish.error = "" if kind == "reply" else str(frame.get("code"))
            return True
        if kind in ("sync", "resync"):
            self.synced = True
            self.last_seq, self.epoch = frame.get("seq"), frame.get("epoch")
            self.doubt = self.doubt and kind == "sync"
            self.log(kind, seq=self.last_seq, epoch=self.epoch, reason=str(frame.get("reason", "")))
            return True
        seq, epoch = frame.get("seq"), frame.get("epoch")
        if isinstance(seq, int) and isinstance(epoch, int):
            if self.synced and seq <= self.handled.get(epoch, -1):  # handed over once (hypergen-ws.js _track)
                if epoch == self.epoch and self.last_seq is not None and seq == self.last_seq + 1:
                    self.last_seq, self.doubt = seq, True
                    self.log("passed", seq=seq, epoch=epoch)  # the position moves; nothing is handed over
                return True
            if self.synced and self.last_seq is not None and self.epoch is not None:
                if epoch != self.epoch:  # a live frame of a new epoch: the client resyncs (hypergen-ws.js does)
                    # the position before this frame, which is handed over next
                    self.log("resync", seq=seq - 1, epoch=epoch, reason="epoch_changed_live")
                elif seq <= self.last_seq:
                    return True  # already handled
                elif seq > self.last_seq + 1:
                    return False  # a skipped seq: reconnect, the server replays from last_seq
                elif self.doubt:  # frames of a range handed over before were dropped: say they may be missing
                    self.log("resync", seq=seq - 1, epoch=epoch, reason="rolled_back")
            self.last_seq, self.epoch, self.doubt = seq, epoch, False
            if self.synced:
                self.handled[epoch] = max(self.handled.pop(epoch, seq), seq)
                while len(self.handled) > 8:
                    del self.handled[next(iter(self.handled))]
        self.log("deliver", seq=seq if isinstance(seq, int) else None,
                 epoch=epoch if isinstance(epoch, int) else None, ids=frame_ids(frame))
        return True

    def _fail_calls(self, why: str) -> None:
        for publish in self._calls.values():
            publish.error = why
        self._calls.clear()

    async def _call_loop(self) -> None:
        number = 0
        while not self._stop.is_set() and self.caller:
            await asyncio.sleep(self.call_interval)
            ws = self._ws
            if ws is None or not self.synced or self._calls:
                continue  # one call at a time, so a caller's frames are published in order
            number += 1
            publish = Publish(f"{self.name}:{number}", self.group, "call", time.time())
            self.publishes.append(publish)
            self._calls[number] = publish
            with contextlib.suppress(WebSocketException, OSError):
                await ws.send(json.dumps({"args": [publish.id], "id": number}))
            for _ in range(int(10 / 0.05)):  # wait for the answer (or the loss of the connection)
                if number not in self._calls:
                    break
                await asyncio.sleep(0.05)
            else:
                self._calls.pop(number, None)
                publish.error = "no answer within 10 s"
