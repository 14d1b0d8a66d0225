"""``storm.py``'s publisher: ``{"i": n}`` for n = 0, 1, 2, ... at a steady rate, from outside the server.

Run as ``python -m benchlib.storm_publisher <variant> <rate> <host> <port>`` with the benchmark project's settings
in the environment; ``start``, ``count`` and ``stop`` come as JSON lines. ``hypergen`` publishes with
``agroup_send`` to the ``storm`` consumer's group (history in Redis: the frames carry a seq), ``channels`` with
``channel_layer.group_send`` to the hand-written consumer's group, both through Redis, so they go on while the
server restarts. ``channelbox`` keeps everything in the server's memory, so its publisher is one more websocket
client of the server (``{"args": [{"i": n}]}``), reconnecting after the restart: what it could not send while the
server was down is not counted as published.
"""
from __future__ import annotations

import asyncio
import json
import sys

import django

from benchlib.common import raise_nofile_limit


async def main(variant: str, rate: float, host: str, port: int) -> None:
    raise_nofile_limit()
    django.setup()
    published = 0
    running = False

    if variant == "hypergen":
        from hypergen_ws import agroup_send

        from benchproject.consumers import storm

        group = storm.group_name()

        async def send(n: int) -> bool:
            await agroup_send(group, {"i": n})
            return True
    elif variant == "channels":
        from channels.layers import get_channel_layer

        from benchproject.handwritten import GROUP

        layer = get_channel_layer()

        async def send(n: int) -> bool:
            await layer.group_send(GROUP, {"type": "bench.message", "data": {"i": n}})
            return True
    else:
        from benchlib.wsclient import connect

        ws = None

        async def send(n: int) -> bool:
            nonlocal ws
            if ws is None or ws.closed.done():
                try:
                    ws = await connect(host, port, "/ws/box/", lambda _m: None, 2)
                except (OSError, asyncio.TimeoutError):
                    ws = None
                    return False
            ws.send_text(json.dumps({"args": [{"i": n}]}).encode())
            return True

    async def publish() -> None:
        nonlocal published
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while running:
            try:
                if await send(published):
                    published += 1
            except Exception as exc:  # noqa: BLE001 - Redis busy: try the same number again
                print(f"publish failed: {exc!r}", file=sys.stderr)
            next_at += 1 / rate
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    task = None

    def reply(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    while line := await reader.readline():
        cmd = json.loads(line)["cmd"]
        if cmd == "start":
            running = True
            task = loop.create_task(publish())
            reply({"ok": True})
        elif cmd == "count":
            reply({"published": published})
        elif cmd == "stop":
            running = False
            if task is not None:
                await task
            reply({"published": published})
        elif cmd == "quit":
            reply({"ok": True})
            break


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
