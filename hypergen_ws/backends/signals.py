"""SIGTERM seen by hypergen_ws before the server acts on it (uvicorn and daphne).

uvicorn (``Server.capture_signals``) and daphne (Twisted's reactor) each install a SIGTERM handler with
``signal.signal`` that starts their shutdown, which closes every socket at once: uvicorn with 1012 and no word
before it, daphne by dropping the connections. :func:`on_terminate` puts a handler in front of theirs: on SIGTERM
it first makes the server stop listening (``stop_listening``, given the server's own handler: new connections are
refused at once, so clients that reconnect go to another process instead of the one that stops), then runs a
coroutine function in the server's event loop (the drain of :mod:`hypergen_ws.delivery.shutdown`) and, when it is
done, hands the signal to the handler that was there, which shuts the server down as before. A second SIGTERM
while the first is being handled goes to the server's handler at once.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

from ..core.logs import fields

logger = logging.getLogger("hypergen_ws")

_installed: dict[int, asyncio.AbstractEventLoop] = {}


def _pass_on(previous: Any, signum: int, frame: FrameType | None) -> None:
    if callable(previous):
        previous(signum, frame)
    elif previous in (signal.SIG_DFL, None):  # the default: end the process, as without this handler
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)


def on_terminate(loop: asyncio.AbstractEventLoop, callback: Callable[[], Awaitable[Any]],
                 stop_listening: Callable[[Any], None] | None = None) -> bool:
    """On SIGTERM, call ``stop_listening(the server's handler)``, run ``await callback()`` in ``loop``, then the
    handler that was installed before; once per process (later calls return True and change nothing). False off
    the main thread, where Python cannot install signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.SIGTERM in _installed:
        return True
    previous = signal.getsignal(signal.SIGTERM)
    started = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal started
        if started or loop.is_closed():
            _pass_on(previous, signum, frame)
            return
        started = True

        def done(task: asyncio.Future[Any]) -> None:
            if not task.cancelled() and task.exception() is not None:
                logger.error("Telling the sockets to reconnect before the shutdown failed", exc_info=task.exception(),
                             extra=fields("shutdown_failed"))
            _pass_on(previous, signum, None)

        def start() -> None:
            if stop_listening is not None:
                try:
                    stop_listening(previous)
                except Exception:  # a fast path: without it, the server only listens a little longer
                    logger.debug("Could not stop listening before the shutdown", exc_info=True,
                                 extra=fields("stop_listening_failed"))
            asyncio.ensure_future(callback(), loop=loop).add_done_callback(done)

        loop.call_soon_threadsafe(start)

    signal.signal(signal.SIGTERM, handler)
    _installed[signal.SIGTERM] = loop
    return True
