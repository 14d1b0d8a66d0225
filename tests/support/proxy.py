"""A TCP proxy that can blackhole its connections: the network dies without a close.

One proxy listens on a free port of 127.0.0.1 and forwards every connection to ``127.0.0.1:<upstream_port>``, both
ways. ``upstream_port`` may change at any time: a connection goes to the port it had when it was accepted (a
client that fails over points its proxy at the next server, then connects).

* ``blackhole()`` stops forwarding, in both directions, on every open connection and the next ones, the way a
  dead network path does: the bytes wait in the buffers, nobody sees a close or a FIN, and a connection opened
  meanwhile is accepted and held without reaching the server (like a laptop whose Wi-Fi went away).
* ``restore()`` lets everything through again: what waited arrives late, as TCP would deliver it once the path
  came back, and held connections go on to the server.
* ``cut()`` drops every connection at once without a close frame (an RST: what TCP does when the path stayed dead
  too long) and forwards again.

Two ways to run it:

* in the running event loop: ``proxy = await BlackholeProxy(port).start()`` ... ``await proxy.close()``;
* in an event loop of its own thread, for sync tests (a browser) and async ones alike:
  ``with BlackholeProxy(port) as proxy: ...``. ``blackhole()``, ``restore()`` and ``cut()`` may then be called from
  any thread.
"""
from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

__all__ = ["BlackholeProxy"]


class BlackholeProxy:
    """A proxy on ``127.0.0.1:<port>`` in front of ``127.0.0.1:<upstream_port>``."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0  # known once started
        self._open = asyncio.Event()
        self._open.set()
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._held: set[asyncio.StreamWriter] = set()  # accepted while blackholed, not yet connected upstream
        self._loop: asyncio.AbstractEventLoop | None = None  # set when it runs in a thread of its own
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:<port>``."""
        return f"ws://127.0.0.1:{self.port}"

    @property
    def blackholed(self) -> bool:
        return not self._open.is_set()

    # In the running event loop.

    async def start(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def close(self) -> None:
        self._cut()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    # In a thread of its own.

    def __enter__(self) -> Self:
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="blackhole-proxy", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.start(), loop).result(10)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        loop, thread = self._loop, self._thread
        assert loop is not None and thread is not None, "the proxy was not entered with `with`"
        asyncio.run_coroutine_threadsafe(self.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()

    # Faults (from the proxy's loop, or from any thread when it runs in its own).

    def blackhole(self) -> None:
        """Stop forwarding, in both directions, on every open connection and the next ones; close none."""
        self._call(self._open.clear)

    def restore(self) -> None:
        """Forward again: what waited goes through, held connections go on to the server."""
        self._call(self._open.set)

    def cut(self) -> None:
        """Abort every connection (an RST, no close frame) and forward again."""
        self._call(self._cut)

    def _call(self, func: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None or not loop.is_running() or _running_loop() is loop:
            func()
            return
        done = threading.Event()

        def run() -> None:
            try:
                func()
            finally:
                done.set()
        loop.call_soon_threadsafe(run)
        assert done.wait(10), "the proxy's event loop does not answer"

    def _cut(self) -> None:
        for pair in list(self._pairs):
            for writer in pair:
                _abort(writer)
        self._pairs.clear()
        for writer in list(self._held):
            _abort(writer)
        self._held.clear()
        self._open.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = self.upstream_port
        if not self._open.is_set():
            self._held.add(writer)
            try:
                await self._open.wait()  # a dead path: the server sees nothing of it yet
            finally:
                self._held.discard(writer)
            if writer.transport.is_closing():  # cut meanwhile
                return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            _abort(writer)
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._pairs.discard(pair)
            for w in pair:
                _abort(w)

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
            _abort(writer)


def _abort(writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    if transport is not None:
        transport.abort()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
