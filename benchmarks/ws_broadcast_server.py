"""Variant (b): a plain ``websockets`` server that fans out with ``websockets.broadcast()``.

Every connection joins one set; a frame ``{"args": [payload]}`` is decoded once, encoded once as
``{"type": "message", "data": payload}`` and broadcast to every connection, the sender included.
This is the baseline the benchmarks compare against: no framework, no channel layer.

    python benchmarks/ws_broadcast_server.py --port 8765 [--loop uvloop|asyncio]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

CLIENTS: set[ServerConnection] = set()


async def handler(ws: ServerConnection) -> None:
    CLIENTS.add(ws)
    try:
        async for message in ws:
            content = json.loads(message)
            broadcast(CLIENTS, json.dumps({"type": "message", "data": content["args"][0]}))
    except ConnectionClosed:
        pass
    finally:
        CLIENTS.discard(ws)


async def main(host: str, port: int) -> None:
    async with serve(handler, host, port, backlog=4096, max_size=2**20) as server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(main(args.host, args.port))
    else:
        asyncio.run(main(args.host, args.port))
