"""A TCP proxy in front of one client's connections that can blackhole them (stop forwarding without closing).

Each client has its own proxy; ``upstream`` says which server the next connection goes to (the client chooses
it, for fail-over). ``blackhole()`` stops forwarding in both directions, the way a dead network path does: the
bytes wait in the buffers, nobody sees a close. ``restore()`` lets them through again; ``cut()`` drops every
connection at once without a close frame (what TCP does when the path stayed dead too long).
"""
from __future__ import annotations

import asyncio
import contextlib


class BlackholeProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._open = asyncio.Event()
        self._open.set()
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()

    async def start(self) -> BlackholeProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    @property
    def blackholed(self) -> bool:
        return not self._open.is_set()

    def blackhole(self) -> None:
        """Stop forwarding, in both directions, on every open connection and the next ones."""
        self._open.clear()

    def restore(self) -> None:
        self._open.set()

    def cut(self) -> None:
        """Abort every connection (an RST, no close frame) and forward again."""
        for client, upstream in list(self._pairs):
            for writer in (client, upstream):
                transport = writer.transport
                if transport is not None:
                    transport.abort()
        self._pairs.clear()
        self._open.set()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._pairs.discard(pair)
            for w in pair:
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await self._open.wait()
                data = await reader.read(65536)
                if not data:
                    break
                await self._open.wait()  # read while open, held here while blackholed
                writer.write(data)
                await writer.drain()
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()
