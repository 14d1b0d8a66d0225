"""The Python websocket client: ``async with connect(url, token=...) as conn`` (docs/clients.rst).

It speaks protocol v1 like the JavaScript client: calls with ids whose results come back with their commands,
group frames in order and once (``seq``/``epoch`` recovery: a gap is filled by reconnecting with the last seq, or
reported as a ``resync`` frame), reconnects with exponential backoff and jitter, answers the server's ``ping``
frames, waits the delay of a ``reconnect`` frame when a server shuts down, and refreshes its token through
``get_token`` when the server says it expires. It does not reconnect after 4401, 4403 or 4404: those raise.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ..core import protocol
from ..core.logs import fields
from .errors import CallResult, ConnectionClosed, Disconnected, HypergenClientError, NoRoute, closed_for_good
from .frames import RECOVERING, FrameHandler, TokenSource
from .position import Position, backoff

__all__ = ["Connection", "connect"]

logger = logging.getLogger("hypergen_ws")



def _websockets() -> Any:
    try:
        import websockets.asyncio.client  # here: an optional dependency (the extra "client")
        import websockets.exceptions
    except ImportError:
        raise ImportError('hypergen_ws.client.connect() needs the websockets package: pip install websockets, '
                          'or the extra "client" (pip install "/path/to/hypergen_ws[client]").') from None
    return websockets


def connect(url: str, token: str | None = None, *, get_token: TokenSource | None = None,
            headers: Mapping[str, str] | None = None, backoff_base: float = 0.5, backoff_factor: float = 2.0,
            backoff_max: float = 30.0, healthy_after: float = 5.0, open_timeout: float = 10.0,
            call_timeout: float | None = 30.0, ping_interval: float | None = 25.0, ping_timeout: float = 10.0,
            frame_limit: int = 10_000) -> Connection:
    """A connection to the consumer at ``url`` (``ws://`` or ``wss://``), to use as ``async with``.

    ``token`` goes in the handshake's ``Authorization: Bearer`` header; ``get_token`` (sync or async, returning
    a token) is asked for one before every connect and when the server says the token expires. ``headers`` are
    sent with every handshake (an ``Origin`` for a consumer that needs no token). The backoff is
    ``min(backoff_max, backoff_base * backoff_factor ** attempt)`` seconds, half of it random, and starts over
    once a socket stayed open ``healthy_after`` seconds. A socket on which nothing arrives for ``ping_interval +
    ping_timeout`` seconds (the server's ``PING_INTERVAL`` and ``PING_TIMEOUT``) is taken as lost;
    ``ping_interval=None`` (a server with ``PING_INTERVAL = None``) watches no silence. At most ``frame_limit`` frames
    wait for :meth:`Connection.frames`; beyond that they are dropped for a ``resync`` frame.
    """
    if not url.startswith(("ws://", "wss://")):
        raise ValueError(f"url={url!r}: give the consumer's websocket URL, ws://host/ws/app/name/ or wss://...")
    return Connection(url, token=token, get_token=get_token, headers=dict(headers or {}),
                      backoff=(backoff_base, backoff_factor, backoff_max), healthy_after=healthy_after,
                      open_timeout=open_timeout, call_timeout=call_timeout,
                      liveness=None if ping_interval is None else ping_interval + ping_timeout,
                      frame_limit=frame_limit)


class Connection(FrameHandler):
    """One consumer's socket that reconnects until closed; made by :func:`connect`."""

    def __init__(self, url: str, *, token: str | None, get_token: TokenSource | None, headers: dict[str, str],
                 backoff: tuple[float, float, float], healthy_after: float, open_timeout: float,
                 call_timeout: float | None, liveness: float | None, frame_limit: int) -> None:
        self.url = url
        #: ``"connecting"``, ``"open"``, ``"reconnecting"`` or ``"closed"``.
        self.state = "connecting"
        #: The position in the group's frames (``last_seq``, ``epoch``), as the JS client keeps it.
        self.position = Position()
        #: The code of the last close (None while the first socket is open).
        self.close_code: int | None = None
        self._token, self._get_token, self._headers = token, get_token, headers
        self._backoff, self._healthy_after, self._open_timeout = backoff, healthy_after, open_timeout
        self._call_timeout, self._liveness, self._frame_limit = call_timeout, liveness, frame_limit
        self._ws: Any = None
        self._task: asyncio.Task[None] | None = None
        self._opened = asyncio.Event()
        self._frames: deque[dict[str, Any]] = deque()
        self._arrived = asyncio.Event()
        self._pending: dict[int, tuple[CallResult, asyncio.Future[CallResult]]] = {}
        self._queue: list[tuple[int, str]] = []  # calls not sent yet, in order
        self._sent: set[int] = set()  # calls sent on the current socket, waiting for their reply
        self._next_id = 1
        self._error: HypergenClientError | None = None
        self._hint: float | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---- the public API ---------------------------------------------------------------------------------------
    async def __aenter__(self) -> Connection:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect; returns once the first socket is open. Raises :class:`NoRoute` for a refused handshake, the
        refusal of a socket closed before it opened, or ``TimeoutError`` after ``open_timeout`` seconds. A
        hypergen_ws server refuses a socket by accepting it and closing it with 4401/4403 at once: that raises
        :class:`NotAuthenticated` / :class:`PermissionDenied` from the next :meth:`call` or :meth:`frames`."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        waiter = asyncio.ensure_future(self._opened.wait())
        done, _ = await asyncio.wait({waiter, self._task}, timeout=self._open_timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._opened.is_set():
            return
        error = self._error
        await self.close()
        if error is not None:
            raise error
        raise TimeoutError(f"Could not open a websocket to {self.url} within {self._open_timeout} s (open_timeout); "
                           "is the server up, and is the URL a consumer's?")

    async def close(self) -> None:
        """Close for good: the socket closes with 1000, waiting calls fail with :class:`Disconnected`, and
        :meth:`frames` ends."""
        if self.state == "closed" and self._task is None:
            return
        self.state = "closed"
        ws, task, self._task = self._ws, self._task, None
        if ws is not None:
            await ws.close(1000, "closed by client")
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._fail_pending(ConnectionClosed(f"the connection to {self.url} was closed"))
        for pending in list(self._tasks):
            pending.cancel()
        self._arrived.set()

    async def call(self, *args: Any, meta: Mapping[str, Any] | None = None,
                   timeout: float | None = None) -> CallResult:
        """Call the consumer with ``args``; the :class:`CallResult` has the frames up to the reply (or the error
        frame: then ``.error`` is set). Raises :class:`Disconnected` when the socket is lost before the reply
        (the call may or may not have run), ``TimeoutError`` after ``timeout`` (default ``call_timeout``)."""
        if self.state == "closed":
            raise self._error or ConnectionClosed(f"the connection to {self.url} is closed; connect again")
        call_id, self._next_id = self._next_id, self._next_id + 1
        frame: dict[str, Any] = {"args": list(args), "id": call_id}
        if meta is not None:
            frame["meta"] = dict(meta)
        text = protocol.encode(frame, "call arguments")
        future: asyncio.Future[CallResult] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = (CallResult(), future)
        if self._ws is not None and self.state == "open" and not self._queue:
            await self._send(call_id, text)
        else:
            self._queue.append((call_id, text))
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout if timeout is not None
                                          else self._call_timeout)
        except TimeoutError:
            raise TimeoutError(f"No reply to call {call_id} on {self.url} within the timeout") from None
        finally:
            self._pending.pop(call_id, None)
            self._sent.discard(call_id)
            self._queue = [(i, t) for i, t in self._queue if i != call_id]

    async def frames(self) -> AsyncIterator[dict[str, Any]]:
        """Every frame the server sends other than replies, call errors and the protocol's own (``sync``,
        ``ping``, ``token``, ``reconnect``): group messages and commands, presence, ``resync``; in order and
        once, across reconnects. Ends when the connection is closed; raises the refusal that ended it."""
        while True:
            while self._frames:
                yield self._frames.popleft()
            if self.state == "closed":
                if self._error is not None:
                    raise self._error
                return
            self._arrived.clear()
            await self._arrived.wait()

    # ---- the socket's life ------------------------------------------------------------------------------------
    async def _run(self) -> None:
        ws_lib = _websockets()
        attempt = 0
        while self.state != "closed":
            delay: float | None = None
            opened_at = None
            try:
                token = await self._current_token()
                headers = {**self._headers, **({"Authorization": f"Bearer {token}"} if token else {})}
                self._hint = None
                ws = await ws_lib.asyncio.client.connect(
                    self.position.url(self.url), additional_headers=headers, subprotocols=[protocol.SUBPROTOCOL],
                    open_timeout=self._open_timeout, max_size=None)
            except ws_lib.exceptions.InvalidStatus as exc:
                status = exc.response.status_code
                if status in (403, 404):
                    self._error = NoRoute(
                        f"The server refused the handshake to {self.url} with HTTP {status}: no consumer has that "
                        "path (`manage.py hypergen_ws_consumers` lists the routes), or its origin check refused it "
                        "(a client without a token must send an Origin the server trusts).", status)
                    break
            except (OSError, TimeoutError, ws_lib.exceptions.InvalidHandshake, ws_lib.exceptions.ConnectionClosed):
                pass
            else:
                opened_at = time.monotonic()
                code, reason = await self._serve(ws)
                self.close_code = code
                final = closed_for_good(code, reason, self.url)
                self._fail_pending(final, only_sent=final is None)  # calls not sent yet wait for the next socket
                if final is not None or self.state == "closed":
                    self._error = final
                    break
                if code == RECOVERING:
                    delay = 0.0
                elif code == protocol.CLOSE_SERVICE_RESTART:
                    delay = self._reconnect_hint()  # the server said when: its clients spread their reconnects
                if time.monotonic() - opened_at >= self._healthy_after or code == protocol.CLOSE_EXPIRED:
                    attempt = 0
            if self.state == "closed":
                break
            self.state = "reconnecting"
            if delay is None:
                delay = backoff(attempt, *self._backoff)
                attempt += 1
            await asyncio.sleep(delay)
        self.state = "closed"
        self._fail_pending(self._error or ConnectionClosed(f"the connection to {self.url} was closed"))
        self._arrived.set()

    async def _serve(self, ws: Any) -> tuple[int, str]:
        """Read one socket until it closes; returns its close code and reason."""
        exceptions = _websockets().exceptions
        self._ws = ws
        self.position.reset_socket()
        self.state = "open"
        self._opened.set()
        try:
            while self._queue:
                call_id, text = self._queue.pop(0)
                await self._send(call_id, text)
            while True:
                try:
                    async with asyncio.timeout(self._liveness):
                        message = await ws.recv()
                except TimeoutError:
                    logger.warning("hypergen_ws client: %s said nothing for %s s; reconnecting",
                                   self.url, self._liveness, extra=fields("client_server_silent"))
                    await ws.close(RECOVERING, "server silent")
                    return RECOVERING, "server silent"
                if isinstance(message, str):
                    if not await self._on_text(ws, message):
                        return RECOVERING, "recovering a missed frame"
        except exceptions.ConnectionClosed:
            pass
        finally:
            self._ws = None
        code = ws.close_code if ws.close_code is not None else 1006
        return code, ws.close_reason or ""

    async def _send(self, call_id: int, text: str) -> None:
        self._sent.add(call_id)
        await self._ws.send(text)  # a socket that closes meanwhile fails the call in _serve

    def _fail_pending(self, error: HypergenClientError | None, *, only_sent: bool = False) -> None:
        for call_id, (_, future) in list(self._pending.items()):
            if only_sent and call_id not in self._sent:
                continue  # not sent yet: it goes on the next socket
            self._sent.discard(call_id)
            if not future.done():
                future.set_exception(error or Disconnected(
                    f"the socket to {self.url} was lost before the reply to call {call_id}; it may or may not "
                    "have run"))
