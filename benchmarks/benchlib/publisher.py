"""The publisher: sends numbered, time-stamped messages at a steady rate or as fast as they are acknowledged.

A message is ``{"i": seq, "t": time.time_ns(), "p": padding}``. The publisher holds one websocket connection
per server ("ack connections", members of the group like every client); the copy of message ``i`` coming back
on every ack connection acknowledges it. In ``window`` mode at most ``window`` messages are unacknowledged at any
time; in ``rate`` mode messages leave on a fixed schedule whatever comes back. A lost acknowledgement (a layer
that drops messages) is waited for ``ack_timeout`` seconds, or four times the slowest acknowledgement seen so far
if that is longer, and then forgiven; publishing stops at ``max_seconds``, so a run always ends by itself.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

from benchlib.wsclient import WSClient, connect

SendFn = Callable[[dict], Awaitable[None]]


class Publisher:
    """Publishes through ``send`` and counts acknowledgements on connections to ``ack_targets``."""

    def __init__(self, ack_targets: list[tuple[str, int, str]], pad_bytes: int = 64) -> None:
        self.ack_targets = ack_targets
        self.pad = "x" * pad_bytes
        self.conns: list[WSClient] = []
        self.acks: list[int] = []
        self.warm_acks: list[int] = []
        self._event = asyncio.Event()
        self.send: SendFn = self._send_ws
        self.slowest_ack = 0.0
        #: The ``code`` of every error frame the server answered a publishing call with (e.g. ``rate_limited``).
        self.errors: list[str] = []

    async def open(self) -> None:
        """Connect the ack connections (the first one also carries ``ws`` publishing)."""
        for k, (host, port, path) in enumerate(self.ack_targets):
            self.acks.append(0)
            self.warm_acks.append(0)
            self.conns.append(await connect(host, port, path, self._on_message(k)))

    def _on_message(self, k: int):
        def on_message(payload: bytes) -> None:
            obj = json.loads(payload)
            if obj.get("type") == "error":
                self.errors.append(str(obj.get("code")))
                return
            if obj.get("type") != "message":
                return
            if obj["data"]["i"] < 0:
                self.warm_acks[k] += 1
            else:
                self.acks[k] += 1
            self._event.set()

        return on_message

    async def _send_ws(self, payload: dict) -> None:
        """Publish by sending a call frame ``{"args": [payload]}`` on the first connection."""
        self.conns[0].send_text(json.dumps({"args": [payload]}).encode())

    async def _wait(self, done: Callable[[], bool], timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), remaining)
            except asyncio.TimeoutError:
                return done()
        return True

    async def warmup(self, count: int, timeout: float = 10.0) -> int:
        """Send ``count`` warm-up messages (negative ``i``), one at a time; return how many were acknowledged."""
        acked = 0
        loop = asyncio.get_running_loop()
        for j in range(count):
            before = min(self.warm_acks)
            t0 = loop.time()
            await self.send({"i": -1 - j, "t": time.time_ns(), "p": self.pad})
            if await self._wait(lambda: min(self.warm_acks) > before, timeout):
                acked += 1
                self.slowest_ack = max(self.slowest_ack, loop.time() - t0)
        return acked

    async def publish(self, messages: int, *, rate: float = 0.0, window: int = 1, max_seconds: float = 60.0,
                      ack_timeout: float = 2.0) -> dict:
        """Publish up to ``messages`` messages within ``max_seconds``; return what was sent and when."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + max_seconds
        sent = forgiven = 0
        first_ns = last_ns = 0
        stopped_by = "count"
        sent_at: dict[int, float] = {}
        while sent < messages:
            if loop.time() >= deadline:
                stopped_by = "max_seconds"
                break
            if rate > 0:
                delay = start + sent / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                limit = window
                patience = max(ack_timeout, 4 * self.slowest_ack)
                ok = await self._wait(lambda: sent - min(self.acks) - forgiven < limit,
                                      min(patience, max(0.0, deadline - loop.time())))
                oldest = sent - limit
                if ok and oldest in sent_at:
                    self.slowest_ack = max(self.slowest_ack, loop.time() - sent_at.pop(oldest))
                if not ok:
                    if loop.time() >= deadline:
                        stopped_by = "max_seconds"
                        break
                    forgiven += 1
                sent_at[sent] = loop.time()
            t = time.time_ns()
            await self.send({"i": sent, "t": t, "p": self.pad})
            first_ns = first_ns or t
            last_ns = t
            sent += 1
        seconds = loop.time() - start
        return {"sent": sent, "first_ns": first_ns, "last_ns": last_ns, "publish_seconds": seconds,
                "publish_rate": sent / seconds if seconds > 0 else None, "ack_timeouts": forgiven,
                "slowest_ack_seconds": self.slowest_ack, "publish_errors": list(self.errors),
                "stopped_by": stopped_by, "mode": f"rate={rate}/s" if rate > 0 else f"window={window}"}

    def close(self) -> None:
        for c in self.conns:
            c.close()
