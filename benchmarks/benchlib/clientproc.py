"""A client process: holds many websocket connections and records when each published message arrives.

Driven by the orchestrating script through JSON lines on stdin, answering with one JSON line on stdout per
command. Run as ``python -m benchlib.clientproc`` (``benchmarks/`` on ``sys.path``).

Every frame ``{"type": "message", "data": {"i": seq, "t": publish_time_ns, ...}}`` counts as one delivery; its
latency is ``time.time_ns()`` at arrival minus ``t`` (publisher and clients share the machine's clock).
Warm-up messages carry a negative ``i`` and are counted apart.
"""
from __future__ import annotations

import array
import asyncio
import json
import sys
import time

from benchlib.common import raise_nofile_limit, run
from benchlib.wsclient import WSClient, connect


class Recorder:
    """Counts and latencies of every connection of this process."""

    def __init__(self) -> None:
        self.conns: list[WSClient] = []
        self.seen: list[bytearray] = []
        self.messages = 0
        self.reset()

    def reset(self) -> None:
        self.latencies = array.array("q")
        self.received = self.warm = self.dupes = self.unknown = 0
        self.other: dict[str, int] = {}
        self.first_ns = self.last_ns = 0
        self.seen = [bytearray(self.messages) for _ in self.conns]

    def handler(self, index: int):
        loads, now = json.loads, time.time_ns

        def on_message(payload: bytes) -> None:
            t = now()
            obj = loads(payload)
            if obj.get("type") != "message":
                key = str(obj.get("type"))
                self.other[key] = self.other.get(key, 0) + 1
                return
            data = obj["data"]
            i = data["i"]
            if i < 0:
                self.warm += 1
                return
            seen = self.seen[index]
            if i >= len(seen):
                self.unknown += 1
                return
            if seen[i]:
                self.dupes += 1
                return
            seen[i] = 1
            self.received += 1
            self.latencies.append(t - data["t"])
            if not self.first_ns:
                self.first_ns = t
            self.last_ns = t

        return on_message


async def connect_all(rec: Recorder, targets: list[list], count: int, concurrency: int, timeout: float) -> dict:
    sem = asyncio.Semaphore(concurrency)
    errors: dict[str, int] = {}
    retries = 0
    slots: list[WSClient | None] = [None] * count

    async def one(k: int) -> None:
        nonlocal retries
        host, port, path = targets[k % len(targets)]
        index = len(rec.conns) + k
        async with sem:
            for attempt in range(3):
                try:
                    slots[k] = await connect(host, port, path, rec.handler(index), timeout)
                    return
                except (OSError, asyncio.TimeoutError) as exc:
                    key = f"{type(exc).__name__}: {exc}"[:120]
                    if attempt == 2:
                        errors[key] = errors.get(key, 0) + 1
                    else:
                        retries += 1
                        await asyncio.sleep(0.2)

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(count)))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    # keep indexes stable: failed slots get a closed placeholder so handler indexes still match
    for conn in slots:
        rec.conns.append(conn if conn is not None else _DEAD)
        rec.seen.append(bytearray(rec.messages))
    ok = sum(1 for c in slots if c is not None)
    return {"ok": ok, "failed": count - ok, "retries": retries, "errors": errors, "seconds": seconds, "cpu": cpu}


class _Dead:
    closed = None
    close_code = None

    def close(self) -> None:
        pass


_DEAD = _Dead()


def status(rec: Recorder) -> dict:
    live = [c for c in rec.conns if c is not _DEAD]
    closed = sum(1 for c in live if c.closed.done())
    codes: dict[str, int] = {}
    for c in live:
        if c.closed.done():
            codes[str(c.close_code)] = codes.get(str(c.close_code), 0) + 1
    return {"received": rec.received, "warm": rec.warm, "dupes": rec.dupes, "unknown": rec.unknown,
            "other": rec.other, "open": len(live) - closed, "closed": closed, "close_codes": codes,
            "cpu": time.process_time(), "first_ns": rec.first_ns, "last_ns": rec.last_ns}


async def main() -> None:
    raise_nofile_limit()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    rec = Recorder()

    def reply(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    while True:
        line = await reader.readline()
        if not line:
            break
        msg = json.loads(line)
        cmd = msg["cmd"]
        if cmd == "arm":
            rec.messages = msg["messages"]
            rec.reset()
            reply({"ok": True})
        elif cmd == "connect":
            reply(await connect_all(rec, msg["targets"], msg["count"], msg["concurrency"], msg["timeout"]))
        elif cmd == "status":
            reply(status(rec))
        elif cmd == "report":
            with open(msg["path"], "wb") as fh:
                rec.latencies.tofile(fh)
            reply(status(rec))
        elif cmd == "close":
            for c in rec.conns:
                c.close()
            await asyncio.sleep(0.2)
            reply({"ok": True})
        elif cmd == "quit":
            reply({"ok": True})
            break


if __name__ == "__main__":
    run(main())
