"""The one path every publish takes: sync and async code, the HTTP endpoint, the management command, hooks,
presence, and a call's own commands.

A frame arrives here encoded (once, by the caller, through :mod:`hypergen_ws.core.protocol`). This module decides,
once for all of them:

* **sequencing**: with history (``@consumer(history=N)`` or ``history=`` per call) the frame gets the group's next
  seq and is stored before anyone can see it;
* **local first**: sockets of this event loop get the frame at once, before the publish returns; so a caller
  gets the commands of its own call before the call's ``reply``, on every layer. The copy that comes back over the
  layer carries this hub's id and is skipped;
* **the timeout**: every layer and store operation of one publish together take at most ``PUBLISH_TIMEOUT``
  seconds; then ``TimeoutError`` is raised, saying that the outcome is unknown (the frame may still arrive);
* **errors**: a failing layer or Redis raises :class:`LayerUnavailable` (a ``ConnectionError``) that says what
  to check.

On the in-memory layer (one process by definition) the frame skips the layer and goes to the hub of every running
event loop; stamped frames are queued per hub under the store's lock so every hub sees them in seq order.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

from ..backends.layers import bypasses_layer, drop_idle_connections, get_layer, get_store, group_send, local_store
from ..backends.base import Revision
from ..core import conf, observers, registry
from ..core.protocol import stamp
from ..core.sync import background_loop
from ..stats import counters
from . import outage
from .hub import FRAME_TYPE, current_hub, local_hubs


class LayerUnavailable(ConnectionError):
    """The channel layer (or Redis behind it) failed while publishing; nothing may have been delivered."""


def publish_timeout() -> float:
    """``PUBLISH_TIMEOUT``: seconds one publish may take."""
    return float(conf.get("PUBLISH_TIMEOUT"))


async def apublish(group: str, text: str, *, history: bool | int | None = None,
                   revision: Revision | None = None) -> int | None:
    """Publish an encoded frame to ``group`` from async code; returns its seq when it is kept in history.

    ``group`` must be a valid group name and ``text`` an encoded server frame (a JSON object). A ``revision``
    (``@model_changes``) tags the kept frame and rewrites the entries it supersedes (``backends.base.Revision``).
    """
    layer = get_layer()
    counters.event(counters.PUBLISHED, counters.consumer_label(group))
    size = registry.history_size(group, history)
    observers.published(group, text)
    if bypasses_layer(layer):
        if size:
            return publish_memory(group, text, size, revision)
        _deliver_memory(group, text)
        return None
    timeout = publish_timeout()
    try:
        async with asyncio.timeout(timeout):  # not wait_for: on 3.11 it can swallow a cancellation
            seq = await _publish_layer(layer, group, text, size, revision)
    except TimeoutError:
        error = unknown_outcome(group, timeout)
        outage.failed("publish", error)
        raise error from None
    except (TypeError, ValueError):
        raise
    except Exception as exc:
        counters.event(counters.LAYER_ERROR, "", "send")
        await drop_idle_connections(layer)  # a restarted Redis: no dead pooled connection fails a later publish
        unavailable = LayerUnavailable(
            f"Publishing to group {group!r} failed: {type(exc).__name__}: {exc}. Is the channel layer (Redis) "
            "reachable? Retry later."
        )
        unavailable.__cause__ = exc
        outage.failed("publish", unavailable)
        raise unavailable from exc
    outage.answered()
    return seq


async def _publish_layer(layer: Any, group: str, text: str, size: int, revision: Revision | None) -> int | None:
    seq = None
    message: dict[str, Any] = {"type": FRAME_TYPE, "text": text, "ts": time.time()}
    if size:
        seq, epoch = await get_store(layer).append(group, text, size, revision)
        message = {"type": FRAME_TYPE, "text": stamp(text, seq, epoch), "seq": seq, "epoch": epoch,
                   "ts": message["ts"]}
    hub = current_hub()
    if hub is not None and hub.layer is layer and group in hub.members:
        await hub.deliver_message(group, message)
        message["origin"] = hub.id
    await group_send(layer, group, message)
    return seq


def publish_sync(group: str, text: str, *, history: bool | int | None = None,
                 revision: Revision | None = None) -> int | None:
    """Sync variant of :func:`apublish`, for threads without a running event loop."""
    layer = get_layer()
    size = registry.history_size(group, history)
    if bypasses_layer(layer):
        counters.event(counters.PUBLISHED, counters.consumer_label(group))
        observers.published(group, text)  # (over a layer, apublish() below shows it)
        if size:
            return publish_memory(group, text, size, revision)
        now = time.time()
        for hub in local_hubs():
            hub.loop.call_soon_threadsafe(hub.deliver_text, group, text, (), now)
        return None
    try:
        return background_loop().run(apublish(group, text, history=history, revision=revision),
                                     f"Publishing to group {group!r}", publish_timeout() + 1)
    except TimeoutError as exc:
        if "outcome is unknown:" in str(exc):
            raise
        raise unknown_outcome(group, publish_timeout()) from None  # (the publisher loop gave up first)


def unknown_outcome(group: str, timeout: float) -> TimeoutError:
    """The error of a publish that did not finish in time: it says that the frame may still arrive."""
    return TimeoutError(
        f"Publishing to group {group!r} did not finish within {timeout} s (HYPERGEN_WS['PUBLISH_TIMEOUT']), so its "
        "outcome is unknown: what Redis had received may still be stored and delivered once it answers, and "
        "publishing again may deliver the payload twice. Is Redis reachable?")


def _deliver_memory(group: str, text: str) -> None:
    now = time.time()
    own = current_hub()
    if own is not None:
        own.deliver_text(group, text, published=now)
    for hub in local_hubs():
        if hub is not own:
            hub.loop.call_soon_threadsafe(hub.deliver_text, group, text, (), now)


def publish_memory(group: str, text: str, size: int, revision: Revision | None = None) -> int:
    """Stamp and store a frame and queue it on every local hub in seq order (any thread); return its seq."""
    try:
        own = asyncio.get_running_loop()
    except RuntimeError:
        own = None
    drain_here = None
    now = time.time()
    store = local_store()
    with store.lock:
        seq, epoch = store.append_sync(group, text, size, revision)
        stamped = stamp(text, seq, epoch)
        for hub in local_hubs():
            hub.relay.append((group, seq, epoch, stamped, now))
            if hub.loop is own:
                drain_here = hub
            else:
                try:
                    hub.loop.call_soon_threadsafe(hub.drain_relay)
                except RuntimeError:  # the loop closed meanwhile
                    hub.relay.clear()
    if drain_here is not None:
        drain_here.drain_relay()
    return seq
