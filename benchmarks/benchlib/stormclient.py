"""A client process of ``storm.py``: many websocket clients that reconnect and recover like hypergen-ws.js.

Driven with JSON lines on stdin like ``benchlib.clientproc``. Each client keeps the last ``seq``/``epoch`` of its
group's frames and reconnects with ``?hgws_seq=&hgws_epoch=``; after a close it waits the delay of the server's
``{"type": "reconnect"}`` frame, or else the JavaScript client's backoff (250-500 ms, doubling, equal jitter).
Like the JavaScript client, it drops a frame whose seq it already handled, and when a seq is skipped it closes the
socket and reconnects at once with the last seq it handled, so the server replays what is missing (``gaps``
counts those).
Handshakes that fail (refused, no ``101``, no answer within 10 s) are counted and retried with the backoff. Every
``message`` frame carries ``{"i": n}``; a client records which ``n`` it saw.
"""
from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from typing import Any

from benchlib.common import raise_nofile_limit, run
from benchlib.wsclient import PROTOCOL_PING, connect

MAX_MESSAGES = 20_000


def backoff(attempt: int) -> float:
    capped = min(30.0, 0.5 * 2 ** attempt)
    return capped / 2 + random.random() * capped / 2


class Client:
    __slots__ = ("rec", "seq", "epoch", "seen", "hint", "attempt", "open", "recovered_at", "accepted_at",
                 "resyncs", "first", "received", "proto", "gaps", "synced")

    def __init__(self, rec: Storm) -> None:
        self.rec = rec
        self.seq: int | None = None
        self.epoch: int | None = None
        self.seen = bytearray(MAX_MESSAGES)
        self.hint: float | None = None
        self.attempt = 0
        self.open = False
        self.recovered_at = 0.0
        self.accepted_at = 0.0
        self.resyncs = 0
        self.first: int | None = None
        self.received = 0
        self.proto: Any = None
        self.gaps = 0
        self.synced = False  # this socket had its sync

    def on_message(self, payload: bytes) -> None:
        if payload == PROTOCOL_PING:
            return
        frame = json.loads(payload)
        kind = frame.get("type")
        if kind in ("sync", "resync"):  # the position the frames after it continue from
            self.synced = True
            self.seq, self.epoch = frame.get("seq"), frame.get("epoch")
            self.recovered_at = time.time()
            if kind == "resync":
                self.resyncs += 1
            return
        seq = frame.get("seq")
        if seq is not None:
            epoch = frame.get("epoch")
            if self.synced and self.seq is not None and epoch == self.epoch:
                if seq <= self.seq:
                    return  # already handled
                if seq > self.seq + 1:  # skipped: reconnect now from the last seq handled
                    if self.proto is not None:  # once per socket
                        self.gaps += 1
                        self.hint = 0.0
                        self.proto.close()
                        self.proto = None
                    return
            self.seq, self.epoch = seq, epoch
        if kind == "message":
            i = frame["data"]["i"]
            if 0 <= i < MAX_MESSAGES and not self.seen[i]:
                self.seen[i] = 1
                self.received += 1
                if self.first is None:
                    self.first = i
        elif kind == "reconnect":
            self.hint = float(frame["delay"])

    def path(self, base: str) -> str:
        if self.seq is None or self.epoch is None:
            return base
        return f"{base}?hgws_seq={self.seq}&hgws_epoch={self.epoch}"


class Storm:
    """Every client of this process and what happened to them since ``mark``."""

    def __init__(self) -> None:
        self.clients: list[Client] = []
        self.accepts: list[float] = []
        self.failures = 0
        self.failure_kinds: dict[str, int] = {}
        self.mark = 0.0
        self.stopping = False

    async def life(self, client: Client, host: str, port: int, path: str, first: asyncio.Semaphore,
                   recovers: bool) -> None:
        initial = True
        while not self.stopping:
            try:
                if initial:
                    async with first:
                        proto = await connect(host, port, client.path(path), client.on_message, 10)
                else:
                    proto = await connect(host, port, client.path(path), client.on_message, 10)
            except (OSError, asyncio.TimeoutError) as exc:
                if self.mark:
                    self.failures += 1
                    key = type(exc).__name__
                    self.failure_kinds[key] = self.failure_kinds.get(key, 0) + 1
                await asyncio.sleep(backoff(client.attempt))
                client.attempt += 1
                continue
            initial = False
            client.proto, client.synced = proto, False
            client.open = True
            client.accepted_at = now = time.time()
            if self.mark:
                self.accepts.append(now)
            if not recovers:
                client.recovered_at = now
            client.attempt = 0
            await proto.closed
            client.open, client.proto = False, None
            hint, client.hint = client.hint, None
            await asyncio.sleep(hint if hint is not None else backoff(client.attempt))
            if hint is None:
                client.attempt += 1

    def status(self, published: int | None = None) -> dict:
        mark = self.mark
        recovered = sum(1 for c in self.clients if c.open and c.recovered_at >= mark and c.accepted_at >= mark)
        out = {"clients": len(self.clients), "open": sum(1 for c in self.clients if c.open),
               "recovered": recovered if mark else sum(1 for c in self.clients if c.open),
               "last_recovered": max((c.recovered_at for c in self.clients), default=0.0),
               "failures": self.failures, "failure_kinds": self.failure_kinds,
               "resyncs": sum(c.resyncs for c in self.clients), "received": sum(c.received for c in self.clients),
               "gaps": sum(c.gaps for c in self.clients)}
        if published is not None:
            lost, losers = 0, 0
            for c in self.clients:
                start = c.first if c.first is not None else published
                missing = published - start - c.seen.count(1, start, published)
                lost += missing
                losers += missing > 0
            out.update(lost=lost, clients_with_loss=losers)
        return out


async def main() -> None:
    raise_nofile_limit()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    storm = Storm()
    tasks: list[asyncio.Task[None]] = []

    def reply(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    while line := await reader.readline():
        msg = json.loads(line)
        cmd = msg["cmd"]
        if cmd == "connect":
            first = asyncio.Semaphore(msg["concurrency"])
            host, port, path = msg["targets"][0]
            for _ in range(msg["count"]):
                client = Client(storm)
                storm.clients.append(client)
                tasks.append(loop.create_task(storm.life(client, host, port, path, first, msg["recovers"])))
            reply({"ok": True})
        elif cmd == "mark":
            storm.mark, storm.accepts, storm.failures, storm.failure_kinds = msg["at"], [], 0, {}
            reply({"ok": True})
        elif cmd == "status":
            reply(storm.status(msg.get("published")))
        elif cmd == "accepts":
            reply({"accepts": storm.accepts})
        elif cmd in ("close", "quit"):
            storm.stopping = True
            for task in tasks:
                task.cancel()
            reply({"ok": True})
            if cmd == "quit":
                break


if __name__ == "__main__":
    run(main())
