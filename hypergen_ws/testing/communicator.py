"""``ConsumerCommunicator``: a test's websocket to a ``@consumer``, speaking protocol v1 (docs/testing.rst)."""
from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from asgiref.typing import ASGIApplication
from channels.testing import WebsocketCommunicator
from django.core.exceptions import ImproperlyConfigured

from ..core import protocol
from .connection import (
    DB_BLOCKED,
    DB_HELP,
    IN_TRANSACTION,
    GivenUser,
    Headers,
    header_list,
    resolve,
    transaction_closed_by_consumers,
    websocket_application,
)

if TYPE_CHECKING:
    from ..decorators import Consumer
    from .connection import User

__all__ = ["CallResult", "ConsumerCommunicator", "SocketClosed"]

#: Seconds a communicator waits for a frame, a reply or the close before the test fails.
DEFAULT_TIMEOUT = 5.0
CLOSE_REASONS = {
    protocol.CLOSE_NORMAL: "normal closure",
    protocol.CLOSE_TOO_BIG: "message too big",
    protocol.CLOSE_TRY_AGAIN_LATER: "the client fell too far behind",
    protocol.CLOSE_PROTOCOL_VIOLATION: "protocol violation",
    protocol.CLOSE_NOT_AUTHENTICATED: "not authenticated: pass user=... or log in",
    protocol.CLOSE_PERMISSION_DENIED: "permission denied: the user lacks the consumer's perm",
    protocol.CLOSE_EXPIRED: "the connection's lifetime is over",
    protocol.CLOSE_PING_TIMEOUT: "the client answered no ping within PING_TIMEOUT",
    protocol.CLOSE_SERVICE_RESTART: "the server shuts down (service restart)",
}

NO_ROUTE = ("The websocket application has no route for {path} ({label}). autoconsumers() routes the consumers of "
            "installed apps; for a consumer elsewhere pass application=URLRouter(autoconsumers(<its module>)).")


class SocketClosed(AssertionError):
    """The server closed the socket where the test expected a frame; ``code`` is the close code."""

    def __init__(self, code: int, label: str, waiting_for: str) -> None:
        reason = CLOSE_REASONS.get(code, "")
        super().__init__(f"{label} closed the socket with code {code}{f' ({reason})' if reason else ''} while the "
                         f"test waited for {waiting_for}.")
        self.code = code


@dataclass(frozen=True, slots=True)
class CallResult:
    """What one ``call()`` got back: every frame up to and including its ``reply`` or ``error``.

    ``commands`` are the commands of the ``commands`` frames among them, in order; ``messages`` the data of
    the ``message`` frames; ``reply`` the reply frame (None after an error); ``error`` is None or
    ``{"code": ..., "message": ...}``.
    """

    frames: list[dict[str, Any]] = field(default_factory=list)
    commands: list[list[Any]] = field(default_factory=list)
    messages: list[Any] = field(default_factory=list)
    reply: dict[str, Any] | None = None
    error: dict[str, str] | None = None


class ConsumerCommunicator:
    """A websocket to a ``@consumer`` in a test, through the project's routing and middleware.

    ::

        async with ConsumerCommunicator(send_message, user=ann, room_name="lobby") as comm:
            result = await comm.call("hello")
            assert result.commands == [["hypergen.append", "messages", ANY]]

    ``consumer`` is a decorated function or a label (``"chat.send_message"``); the URL kwargs give its URL.
    ``application`` defaults to the websocket application of ``ASGI_APPLICATION`` (routes, session and auth
    middleware, origin check: the communicator sends ``Origin: http://testserver``). ``user=`` puts that user
    into the scope, over whatever the session says; without it the middleware decides (anonymous, unless
    ``headers`` carry a session cookie). ``query`` is added to the URL; ``timeout`` bounds every wait.
    The server's heartbeat ``{"type": "ping"}`` frames are answered with a ``pong`` by the communicator and never
    reach ``receive()``; ``answer_pings=False`` hands them to the test instead, unanswered (docs/testing.rst).
    """

    def __init__(self, consumer: Consumer | str, *, user: User | None = None,
                 application: ASGIApplication | None = None,
                 headers: Headers | None = None, query: str | Mapping[str, Any] | None = None,
                 timeout: float = DEFAULT_TIMEOUT, answer_pings: bool = True, **url_kwargs: Any) -> None:
        self.consumer = resolve(consumer)
        self.answer_pings = answer_pings
        self.label = self.consumer.label
        self.url_kwargs = url_kwargs
        self.path = self.consumer.reverse(**url_kwargs)
        query_string = urlencode(query) if isinstance(query, Mapping) else (query or "")
        self.application = application if application is not None else websocket_application()
        self.timeout = timeout
        self.comm = WebsocketCommunicator(self.application, self.path + (f"?{query_string}" if query_string else ""),
                                          headers=header_list(headers))
        if user is not None:
            self.comm.scope["user"] = GivenUser(user)
        #: Whether the server accepted the handshake (a denied socket is accepted, then closed with 4401/4403).
        self.accepted = False
        #: The code the server closed the socket with, once the test has seen the close; None before.
        self.close_code: int | None = None
        #: The reason the server gave with the close ("" when it gave none); None before the close.
        self.close_reason: str | None = None
        self._pending: deque[dict[str, Any]] = deque()
        self._next_id = 0
        self._started = False
        self._done = False

    def __repr__(self) -> str:
        return f"<ConsumerCommunicator {self.label} {self.path}>"

    @property
    def connected(self) -> bool:
        """Accepted, and not closed by the server (as far as the test has received)."""
        return self.accepted and self.close_code is None

    # ---- connect and disconnect -------------------------------------------------------------------------------
    async def connect(self) -> bool:
        """Open the socket; returns ``connected``. ``async with`` does this for you."""
        if self._started:
            raise RuntimeError(f"{self!r} was connected already; make a new communicator for a new socket.")
        self._started = True
        alias = await sync_to_async(transaction_closed_by_consumers)()  # the thread consumers' sync code runs in
        if alias is not None:
            raise RuntimeError(IN_TRANSACTION.format(alias=alias))
        with self._explained():
            accepted, detail = await self.comm.connect(self.timeout)
        if not accepted:
            self.close_code = int(detail)
            if self.close_code == protocol.CLOSE_NO_ROUTE:  # autoconsumers()' last route: no consumer has the path
                raise ImproperlyConfigured(NO_ROUTE.format(path=self.path, label=self.label))
            return False
        self.accepted = True
        # A denied socket is accepted and closed in one go: the close is already there.
        while self.close_code is None and not self.comm.output_queue.empty():
            self._take(self.comm.output_queue.get_nowait())
        return self.connected

    async def disconnect(self, code: int = protocol.CLOSE_NORMAL) -> None:
        """Close the socket from the client's side and wait for the consumer to finish."""
        if self._done or not self._started:
            return
        self._done = True
        future = self.comm.future
        if future.done():
            if not future.cancelled():  # cancelled: a wait timed out, and the test failed already
                future.result()  # raise what the consumer raised, if anything
            return
        with self._explained():
            await self.comm.disconnect(code, self.timeout)

    async def __aenter__(self) -> ConsumerCommunicator:
        await self.connect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        try:
            await self.disconnect()
        except Exception:
            if exc is None:
                raise  # else the test's own failure is the one to see

    # ---- sending ----------------------------------------------------------------------------------------------
    async def call(self, *args: Any, **meta: Any) -> CallResult:
        """Call the consumer's function with ``args`` (and ``meta``) and wait for its reply or error.

        The result holds every frame that arrived meanwhile; a call's own commands reach the caller before its
        reply on every layer.
        """
        self._next_id += 1
        call_id = self._next_id
        frame: dict[str, Any] = {"args": list(args), "id": call_id}
        if meta:
            frame["meta"] = meta
        await self.send(frame)
        frames: list[dict[str, Any]] = []
        while True:
            received = await self.receive(waiting_for=f"the reply to call {call_id} {args!r}")
            frames.append(received)
            if received.get("id") == call_id and received.get("type") in ("reply", "error"):
                break
        commands = [c for f in frames if f.get("type") == "commands" for c in f.get("commands", [])]
        messages = [f.get("data") for f in frames if f.get("type") == "message"]
        last = frames[-1]
        if last["type"] == "reply":
            return CallResult(frames, commands, messages, reply=last)
        return CallResult(frames, commands, messages, error={"code": last.get("code", ""),
                                                             "message": last.get("message", "")})

    async def send(self, frame: Any) -> None:
        """Send one frame as it is: ``str`` as a text frame, ``bytes`` as a binary one, anything else as JSON."""
        if self.close_code is not None:
            raise SocketClosed(self.close_code, self.label, "nothing: the test sent a frame after the close")
        with self._explained():
            if isinstance(frame, bytes):
                await self.comm.send_input({"type": "websocket.receive", "bytes": frame})
            else:
                text = frame if isinstance(frame, str) else json.dumps(frame)
                await self.comm.send_input({"type": "websocket.receive", "text": text})

    # ---- receiving --------------------------------------------------------------------------------------------
    async def receive(self, timeout: float | None = None, *, waiting_for: str = "a frame") -> dict[str, Any]:
        """The next frame, decoded; fails when none arrives within ``timeout`` or the server closes."""
        if self._pending:
            return self._pending.popleft()
        if self.close_code is not None:
            raise SocketClosed(self.close_code, self.label, waiting_for)
        wait = self.timeout if timeout is None else timeout
        while not self._pending:
            try:
                with self._explained():
                    output = await self._output(wait)
            except TimeoutError:
                raise AssertionError(f"{self.label} sent nothing within {wait} s while the test waited for "
                                     f"{waiting_for}.") from None
            code = self._take(output)
            if code is not None and not self._pending:
                raise SocketClosed(code, self.label, waiting_for)
        return self._pending.popleft()

    async def receive_of(self, kind: str, timeout: float | None = None) -> dict[str, Any]:
        """The next frame of type ``kind``; frames of other types before it are dropped."""
        skipped: list[dict[str, Any]] = []
        while True:
            try:
                frame = await self.receive(timeout, waiting_for=f"a {kind!r} frame")
            except AssertionError as exc:
                if skipped:
                    exc.args = (f"{exc.args[0]} Frames of other types that came meanwhile: {skipped!r}",)
                raise
            if frame.get("type") == kind:
                return frame
            skipped.append(frame)

    async def receive_message(self, timeout: float | None = None) -> Any:
        """The data of the next ``message`` frame (``group_send``); frames of other types before it are dropped."""
        return (await self.receive_of("message", timeout)).get("data")

    async def receive_commands(self, timeout: float | None = None) -> list[list[Any]]:
        """The commands of the next ``commands`` frame; frames of other types before it are dropped."""
        commands: list[list[Any]] = (await self.receive_of("commands", timeout)).get("commands", [])
        return commands

    async def receive_all(self, quiet: float = 0.2) -> list[dict[str, Any]]:
        """Every frame until none arrives for ``quiet`` seconds, decoded, frames already received first; ``[]``
        when nothing comes. A close ends the list (``close_code`` has the code). Fails when frames keep coming
        without such a pause for the communicator's ``timeout``."""
        frames = list(self._pending)
        self._pending.clear()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while self.close_code is None:
            with self._explained():
                if await self.comm.receive_nothing(quiet):
                    break
            self._take(self.comm.output_queue.get_nowait())
            frames.extend(self._pending)
            self._pending.clear()
            if loop.time() > deadline:
                raise AssertionError(
                    f"{self.label} kept sending for {self.timeout} s without a pause of {quiet} s while the test "
                    f"waited for it to fall quiet; {len(frames)} frames came, the last "
                    f"{frames[-1] if frames else None!r}. Pass a shorter quiet=, or a longer timeout=.")
        return frames

    async def assert_nothing(self, timeout: float = 0.1) -> None:
        """Fail if a frame (or the close) arrives within ``timeout`` seconds, or a received one is waiting. A ping
        the communicator answers is not a frame of the test's."""
        if not self._pending:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while not self._pending:
                remaining = deadline - loop.time()
                with self._explained():
                    if remaining <= 0 or await self.comm.receive_nothing(remaining):
                        return
                output = self.comm.output_queue.get_nowait()
                if output.get("type") == "websocket.close":
                    self._take(output)
                    raise AssertionError(f"Expected nothing from {self.label}, but it closed the socket with code "
                                         f"{self.close_code}.")
                self._take(output)
        raise AssertionError(f"Expected nothing from {self.label}, but it sent {self._pending.popleft()!r}.")

    async def wait_closed(self, timeout: float | None = None) -> int:
        """Wait for the server to close the socket; returns the close code. Frames that arrive first are kept
        for ``receive()``."""
        wait = self.timeout if timeout is None else timeout
        while self.close_code is None:
            try:
                with self._explained():
                    self._take(await self._output(wait))
            except TimeoutError:
                raise AssertionError(f"{self.label} did not close the socket within {wait} s.") from None
        return self.close_code

    # ---- internals --------------------------------------------------------------------------------------------
    async def _output(self, wait: float) -> dict[str, Any]:
        """The next ASGI message the consumer sends. Unlike Channels' ``receive_output()``, an exception that ends
        the consumer is raised as soon as it happens, not after ``wait``; TimeoutError when nothing comes."""
        queue, future = self.comm.output_queue, self.comm.future
        if queue.empty() and future.done():
            future.result()  # raise what the consumer raised, if anything
            raise AssertionError(f"{self.label} ended without closing the socket.")
        get = asyncio.ensure_future(queue.get())
        try:
            await asyncio.wait((get, future), timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not get.done():
                get.cancel()
        if get.done() and not get.cancelled():
            output: dict[str, Any] = get.result()
            return output
        if future.done():
            future.result()
            raise AssertionError(f"{self.label} ended without closing the socket.")
        future.cancel()  # as Channels does: the test failed, the consumer stops
        try:
            await future
        except asyncio.CancelledError:
            pass
        raise TimeoutError
    def _take(self, output: dict[str, Any]) -> int | None:
        """Keep a frame for ``receive()``, or note the close; returns the close code when it was the close."""
        kind = output.get("type")
        if kind == "websocket.close":
            self.close_code = int(output.get("code") or protocol.CLOSE_NORMAL)
            self.close_reason = str(output.get("reason") or "")
            return self.close_code
        if kind == "websocket.send":
            text = output.get("text")
            if text is None:
                raise AssertionError(f"{self.label} sent a binary frame ({output.get('bytes')!r}); protocol v1 "
                                     "frames are JSON text.")
            if text == protocol.PING and self.answer_pings:
                self.comm.input_queue.put_nowait({"type": "websocket.receive", "text": protocol.PONG})
                return None
            self._pending.append(json.loads(text))
            return None
        raise AssertionError(f"{self.label} sent an unexpected ASGI message {output!r}.")

    @contextmanager
    def _explained(self) -> Iterator[None]:
        """Turn the errors a test setup causes into ones that say what to change."""
        try:
            yield
        except RuntimeError as exc:
            if DB_BLOCKED in str(exc):
                raise RuntimeError(DB_HELP) from exc
            raise
        except ValueError as exc:
            if str(exc).startswith("No route found"):  # a router without autoconsumers()' last route
                raise ImproperlyConfigured(NO_ROUTE.format(path=self.path, label=self.label)) from exc
            raise
