"""Publishing to groups from anywhere: sync views, async code, threads, task workers, management commands.

A payload is validated and JSON-encoded once, at the call; what crosses the channel layer is that text, one
message per subscribed process. On the in-memory layer the text is handed to the local hubs directly.
"""
from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer

from . import conf, observers, protocol
from .fanout import FRAME_TYPE, get_hub, local_hubs
from .groups import check_group_name
from .history import apublish, history_size, publish_sync


def group_send(group: str, data: Any, *, history: bool | int | None = None) -> int | None:
    """Send ``data`` (JSON) to every client in ``group`` as ``{"type": "message", "data": data}``.

    Sync: call it from views, threads, task workers and management commands. In async code use
    ``await agroup_send(...)``. ``history`` (default: what the group's consumer declares with
    ``@consumer(history=N)``) keeps the frame for recovery and stamps it with a seq, which is returned
    (None without history); ``False`` sends it without, ``True`` or a size keeps it (docs/history.rst).
    """
    _refuse_in_loop("group_send", "agroup_send")
    return publish_text_sync(_group(group), protocol.message_frame(data), history=history)


async def agroup_send(group: str, data: Any, *, history: bool | int | None = None) -> int | None:
    """Async variant of ``group_send``."""
    return await apublish_text(_group(group), protocol.message_frame(data), history=history)


def consumer_command(group: str, commands: list[list[Any]], *, history: bool | int | None = None) -> int | None:
    """Send commands (``[["hypergen.append", "messages", "<li>hi</li>"], ...]``) to every client in ``group``.

    ``history`` works as in ``group_send``.
    """
    _refuse_in_loop("consumer_command", "aconsumer_command")
    return publish_text_sync(_group(group), protocol.commands_frame(protocol.check_commands(commands)),
                             history=history)


async def aconsumer_command(group: str, commands: list[list[Any]], *,
                            history: bool | int | None = None) -> int | None:
    """Async variant of ``consumer_command``."""
    return await apublish_text(_group(group), protocol.commands_frame(protocol.check_commands(commands)),
                               history=history)


def _group(group: Any) -> str:
    if hasattr(group, "group_name") and callable(group.group_name):
        raise TypeError(
            f"Pass a group name, not the consumer {group!r}: for example {getattr(group, 'name', 'consumer')}"
            ".group_name(room_name='lobby')."
        )
    return check_group_name(group)


def _refuse_in_loop(name: str, async_name: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"{name}() was called inside a running event loop, where it would block the loop. "
        f"Use `await {async_name}(...)` in async code."
    )


def _bypasses_layer(layer: Any) -> bool:
    return layer is None or isinstance(layer, InMemoryChannelLayer)


async def apublish_text(group: str, text: str, history: bool | int | None = None) -> int | None:
    """Publish an encoded frame to ``group`` from async code; returns its seq when it is kept in history."""
    layer = get_channel_layer(conf.get("CHANNEL_LAYER"))
    size = history_size(group, history)
    observers.published(group, text)
    if size:
        return await apublish(layer, group, text, size)
    if _bypasses_layer(layer):
        own = get_hub()
        own.deliver_text(group, text)
        for hub in local_hubs():
            if hub is not own:
                hub.loop.call_soon_threadsafe(hub.deliver_text, group, text)
        return
    await layer.group_send(group, {"type": FRAME_TYPE, "text": text})


def publish_text_sync(group: str, text: str, history: bool | int | None = None) -> int | None:
    """Publish an encoded frame to ``group`` from sync code (no running loop in this thread)."""
    layer = get_channel_layer(conf.get("CHANNEL_LAYER"))
    size = history_size(group, history)
    observers.published(group, text)
    if size:
        return publish_sync(layer, group, text, size)
    if _bypasses_layer(layer):
        for hub in local_hubs():
            hub.loop.call_soon_threadsafe(hub.deliver_text, group, text)
        return
    background_loop().run(layer.group_send(group, {"type": FRAME_TYPE, "text": text}),
                          f"Publishing to group {group!r}")


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

    def run(self, coro: Coroutine[Any, Any, Any], what: str) -> Any:
        """Run ``coro`` on the loop and wait for it (``PUBLISH_TIMEOUT`` seconds at most)."""
        timeout = conf.get("PUBLISH_TIMEOUT")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise TimeoutError(
                f"{what} did not finish within {timeout} s. Is the channel layer (Redis) reachable? "
                "HYPERGEN_WS['PUBLISH_TIMEOUT'] sets the limit."
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
