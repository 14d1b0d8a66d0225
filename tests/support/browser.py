"""Headless Debian Chromium driven by Playwright's sync API from a thread of its own.

Why a thread: the sync API keeps its event loop marked as *running* in the thread that started it, between calls
too. Started in pytest's main thread by a session fixture, that breaks every later ``async def`` test
(pytest-asyncio: "Runner.run() cannot be called from a running event loop") and makes Django refuse ORM calls in
every later sync test (``SynchronousOnlyOperation``). So Playwright lives in one worker thread; tests get
:class:`Remote` proxies whose attribute reads and method calls run in that thread and return proxies again.
Tests use them like the sync API objects (``page.goto(...)``, ``page.locator("#x").inner_text()``,
``with page.expect_websocket() as info: ...``); callbacks passed to Playwright (``page.on("console", fn)``)
run in the worker thread and receive proxies too. Use :func:`expect` from this module, not Playwright's.

Browser tests are plain ``def`` tests: an ``async def`` test may not block its event loop on the browser.
Never run ``playwright install``: the browser is Debian's ``/usr/bin/chromium``.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


def _is_playwright_object(value: object) -> bool:
    return type(value).__module__.startswith("playwright.") and not isinstance(value, BaseException)


class PlaywrightThread:
    """Owns the Playwright driver and one Chromium; runs every call on them in its worker thread."""

    def __init__(self) -> None:
        self._calls: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], Future[Any]] | None]
        self._calls = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="playwright", daemon=True)
        self._thread.start()
        self._playwright: Any = None
        self._browser: Any = None
        self._callbacks: dict[int, Callable[..., Any]] = {}

    def _work(self) -> None:
        while (item := self._calls.get()) is not None:
            func, args, kwargs, future = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(func(*args, **kwargs))
                except BaseException as exc:  # handed to the calling thread
                    future.set_exception(exc)

    def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``func(*args, **kwargs)`` in the worker thread and return its result (or raise its error)."""
        if threading.current_thread() is self._thread:
            return func(*args, **kwargs)
        if not self._thread.is_alive():
            raise RuntimeError("the Playwright thread has stopped")
        future: Future[Any] = Future()
        self._calls.put((func, args, kwargs, future))
        return future.result()

    def launch(self, executable_path: str = CHROMIUM_PATH, *, headless: bool = True,
               args: tuple[str, ...] = CHROMIUM_ARGS, **options: Any) -> Remote:
        """Start Playwright and Chromium; returns a proxy of the ``Browser``."""

        def start() -> Any:
            from playwright.sync_api import sync_playwright

            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(
                executable_path=executable_path, headless=headless, args=list(args), **options
            )
            return self._browser

        return self.wrap(self.call(start))

    def close(self) -> None:
        """Close the browser and the driver, then end the worker thread."""

        def stop() -> None:
            try:
                if self._browser is not None:
                    self._browser.close()
            finally:
                if self._playwright is not None:
                    self._playwright.stop()

        try:
            if self._thread.is_alive():
                self.call(stop)
        finally:
            self._calls.put(None)
            self._thread.join(timeout=30)

    # -- proxies ----------------------------------------------------------------------------------------------

    def wrap(self, value: Any) -> Any:
        """Turn Playwright objects (also inside lists, tuples and dicts) into proxies."""
        if _is_playwright_object(value):
            return Remote(self, value)
        if isinstance(value, (list, tuple)):
            return type(value)(self.wrap(v) for v in value)
        if isinstance(value, dict):
            return {k: self.wrap(v) for k, v in value.items()}
        return value

    def unwrap(self, value: Any) -> Any:
        """Turn proxies back into Playwright objects and callbacks into ones that receive proxies."""
        if isinstance(value, Remote):
            return object.__getattribute__(value, "_target")
        if isinstance(value, (list, tuple)):
            return type(value)(self.unwrap(v) for v in value)
        if isinstance(value, dict):
            return {k: self.unwrap(v) for k, v in value.items()}
        if callable(value) and not isinstance(value, type):
            return self._callback(value)
        return value

    def _callback(self, func: Callable[..., Any]) -> Callable[..., Any]:
        # The same function must map to the same wrapper, or remove_listener() could not find it.
        key = id(func)
        if key not in self._callbacks:

            def callback(*args: Any, **kwargs: Any) -> Any:
                return self.unwrap(func(*self.wrap(args), **self.wrap(kwargs)))

            callback.__wrapped__ = func  # type: ignore[attr-defined]
            self._callbacks[key] = callback
        return self._callbacks[key]


class Remote:
    """A proxy of a Playwright sync API object that lives in the :class:`PlaywrightThread`."""

    __slots__ = ("_runner", "_target")

    def __init__(self, runner: PlaywrightThread, target: Any) -> None:
        object.__setattr__(self, "_runner", runner)
        object.__setattr__(self, "_target", target)

    def __getattr__(self, name: str) -> Any:
        runner: PlaywrightThread = object.__getattribute__(self, "_runner")
        target = object.__getattribute__(self, "_target")
        value = runner.call(getattr, target, name)
        if callable(value) and not _is_playwright_object(value):

            def method(*args: Any, **kwargs: Any) -> Any:
                return runner.wrap(runner.call(value, *runner.unwrap(args), **runner.unwrap(kwargs)))

            method.__name__ = name
            return method
        return runner.wrap(value)

    def __setattr__(self, name: str, value: Any) -> None:
        runner: PlaywrightThread = object.__getattribute__(self, "_runner")
        runner.call(setattr, object.__getattribute__(self, "_target"), name, runner.unwrap(value))

    def __enter__(self) -> Any:
        runner: PlaywrightThread = object.__getattribute__(self, "_runner")
        target = object.__getattribute__(self, "_target")
        return runner.wrap(runner.call(type(target).__enter__, target))

    def __exit__(self, *exc_info: Any) -> Any:
        runner: PlaywrightThread = object.__getattribute__(self, "_runner")
        target = object.__getattribute__(self, "_target")
        return runner.call(type(target).__exit__, target, *exc_info)

    def __iter__(self) -> Iterator[Any]:
        runner: PlaywrightThread = object.__getattribute__(self, "_runner")
        return iter(runner.wrap(runner.call(list, object.__getattribute__(self, "_target"))))

    def __eq__(self, other: object) -> bool:
        other_target = object.__getattribute__(other, "_target") if isinstance(other, Remote) else other
        return bool(object.__getattribute__(self, "_target") is other_target)

    def __hash__(self) -> int:
        return id(object.__getattribute__(self, "_target"))

    def __str__(self) -> str:
        runner: PlaywrightThread = object.__getattribute__(self, "_runner")
        return str(runner.call(str, object.__getattribute__(self, "_target")))

    def __repr__(self) -> str:
        runner: PlaywrightThread = object.__getattribute__(self, "_runner")
        return f"<Remote {runner.call(repr, object.__getattribute__(self, '_target'))}>"


def expect(actual: Any, message: str | None = None) -> Any:
    """Playwright's ``expect()`` for proxies: ``expect(page.locator("#out")).to_have_text("hi")``."""
    if not isinstance(actual, Remote):
        raise TypeError("expect() takes a page, locator or response from the browser fixtures")
    runner: PlaywrightThread = object.__getattribute__(actual, "_runner")

    def make() -> Any:
        from playwright.sync_api import expect as playwright_expect

        return playwright_expect(runner.unwrap(actual), message)

    return runner.wrap(runner.call(make))
