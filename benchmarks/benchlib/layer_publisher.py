"""A publisher process that publishes through the channel layer, as a task worker or a view would.

Run as ``python -m benchlib.layer_publisher <variant> <targets-json>`` with the benchmark project's settings in
the environment; driven with JSON lines like the client processes (``open``, ``warmup``, ``publish``,
``close``). ``channels`` sends ``channel_layer.group_send("bench", {"type": "bench.message", "data": ...})``;
``hypergen`` sends ``await agroup_send(fanout.group_name(), payload)``. Acknowledgements come back on one
websocket connection per server (see ``benchlib.publisher``).
"""
from __future__ import annotations

import asyncio
import json
import sys

import django

from benchlib.common import raise_nofile_limit
from benchlib.publisher import Publisher


async def main(variant: str, targets: list[list]) -> None:
    raise_nofile_limit()
    django.setup()
    from channels.layers import get_channel_layer

    if variant == "channels":
        from benchproject.handwritten import GROUP

        layer = get_channel_layer()

        async def send(payload: dict) -> None:
            await layer.group_send(GROUP, {"type": "bench.message", "data": payload})
    else:
        from hypergen_ws import agroup_send

        from benchproject.consumers import fanout

        group = fanout.group_name()

        async def send(payload: dict) -> None:
            await agroup_send(group, payload)

    pad = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    publisher = Publisher([tuple(t) for t in targets], pad)
    publisher.send = send
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def reply(obj) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    while line := await reader.readline():
        msg = json.loads(line)
        cmd = msg.pop("cmd")
        if cmd == "open":
            await publisher.open()
            reply({"ok": True})
        elif cmd == "warmup":
            reply(await publisher.warmup(**msg))
        elif cmd == "publish":
            reply(await publisher.publish(**msg))
        elif cmd == "close":
            publisher.close()
            reply({"ok": True})
        elif cmd == "quit":
            reply({"ok": True})
            break


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
