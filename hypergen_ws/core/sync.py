"""The bridge from sync code (views, threads, task workers, management commands) to async publishing.

One event loop in a daemon thread serves every sync caller of the process, so a worker keeps one connection
pool to Redis however often it publishes. Sync functions refuse to run inside a running event loop, where they
would block it, and name their async twin instead.
"""
from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def refuse_in_loop(name: str, async_name: str | None = None) -> None:
    """Raise ``RuntimeError`` naming ``async_name`` when called inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"{name}() was called inside a running event loop, where it would block the loop. "
        f"Use `await {async_name or 'a' + name}(...)` in async code."
    )


def run_inline(coro: Coroutine[Any, Any, T], what: str) -> T:
    """Run a coroutine that never suspends (in-memory work) to its end in this thread."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError(f"{what} waited for I/O where none was expected; call its async variant instead.")


class BackgroundLoop:
    """One event loop in a daemon thread for every sync publisher of this process.

    Reusing one loop keeps one connection pool to Redis per process: no "event loop is closed" errors and no
    leaked connections, however many times a worker publishes. A forked child gets its own.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="hypergen_ws-publisher", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], what: str, timeout: float) -> T:
        """Run ``coro`` on the loop and wait for it (``timeout`` seconds at most)."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise TimeoutError(
                f"{what} did not finish within {timeout} s (HYPERGEN_WS['PUBLISH_TIMEOUT']); it may still take "
                "effect, so its outcome is unknown. Is the channel layer (Redis) reachable?"
            ) from None


_background: BackgroundLoop | None = None
_background_lock = threading.Lock()


def background_loop() -> BackgroundLoop:
    """The process's publisher loop, started on first use (and again after a fork)."""
    global _background
    with _background_lock:
        if _background is None or _background.pid != os.getpid() or not _background.thread.is_alive():
            _background = BackgroundLoop()
        return _background
