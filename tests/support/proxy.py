"""A TCP proxy that can blackhole its connections: the network dies without a close.

``with BlackholeProxy(server_port) as proxy:`` listens on a free port of 127.0.0.1 and forwards every connection to
the server, both ways, in an event loop of its own thread (so sync browser tests and async tests can use it alike).
``proxy.blackhole()`` stops forwarding: whatever either side sends from then on is dropped, no connection is
closed, and a connection opened meanwhile is accepted and held without reaching the server, like a laptop whose
Wi-Fi went away. ``proxy.restore()`` brings the path back for new connections; those that lived through the
blackhole stay dead (their bytes are lost, so their websocket framing could not go on), until an end closes them.
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

from .servers import free_port


class BlackholeProxy:
    """A proxy on ``127.0.0.1:<port>`` in front of ``127.0.0.1:<target_port>``."""

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self.holes = 0  # connections that were open, or opened, during a blackhole
        self._dark = False
        self._live: set[int] = set()
        self._dead: set[int] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="blackhole-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._next = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:<port>``."""
        return f"ws://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", self.port), self._loop).result(10)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def blackhole(self) -> None:
        """Stop forwarding, in both directions, on every connection; close none."""
        def dark() -> None:
            self._dark = True
            self.holes += len(self._live)
            self._dead.update(self._live)
        self._call(dark)

    def restore(self) -> None:
        """Forward new connections again (the ones that lived through the blackhole stay dead)."""
        def light() -> None:
            self._dark = False
        self._call(light)

    def _call(self, func: Callable[[], None]) -> None:
        done = threading.Event()

        def run() -> None:
            func()
            done.set()
        self._loop.call_soon_threadsafe(run)
        assert done.wait(10), "the proxy's event loop does not answer"

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._next += 1
        key = self._next
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        live = self._live
        self._writers.add(client_writer)
        if self._dark:
            self._dead.add(key)
            self.holes += 1
            await self._drain(client_reader)  # held: nothing reaches a server
            client_writer.close()
            self._writers.discard(client_writer)
            return
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.close()
            self._writers.discard(client_writer)
            return
        self._writers.add(server_writer)
        live.add(key)
        try:
            await asyncio.gather(self._pipe(key, client_reader, server_writer),
                                 self._pipe(key, server_reader, client_writer))
        finally:
            live.discard(key)
            for writer in (client_writer, server_writer):
                writer.close()
                self._writers.discard(writer)

    async def _pipe(self, key: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward until EOF; once the connection is dead, drop what comes (and close nothing on EOF either)."""
        try:
            while data := await reader.read(65536):
                if key in self._dead:
                    continue
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        if key in self._dead:
            await asyncio.Event().wait()  # a dead path carries no FIN either: held until the proxy closes
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass

    @staticmethod
    async def _drain(reader: asyncio.StreamReader) -> None:
        try:
            while await reader.read(65536):
                pass
        except (ConnectionError, OSError):
            pass
