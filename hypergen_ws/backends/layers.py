"""The channel layer: which kind it is, its capacities, channels for hubs, fast receive and local sends.

What kind of layer is in use is decided here, once, by :func:`layer_kind`; every other module asks this one.
The in-memory layer's fast paths touch its queues (``InMemoryChannelLayer.channels``) and are used only on that
exact class, with a WARNING logged once when it does not have the expected shape.
"""
from __future__ import annotations

import asyncio
import logging
import random
import re
import string
import time
import uuid
from copy import deepcopy
from importlib.metadata import PackageNotFoundError, version
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal, TypeVar

from channels.layers import BaseChannelLayer, InMemoryChannelLayer, channel_layers, get_channel_layer

from ..core import conf
from ..core.logs import fields
from ..core.sync import background_loop, run_inline
from .base import Store
from .engine import Engine, LocalStore
from .memory import memory_engine

logger = logging.getLogger("hypergen_ws")

LayerKind = Literal["none", "memory", "redis", "other"]
T = TypeVar("T")

#: Process-local channel names of hubs contain this after the "!" (see ``hub_channel``).
HUB_MARK = "hypergen_ws."
_HUB_PATTERN = re.compile(r"^[^!]*!" + re.escape(HUB_MARK))
_warned: set[str] = set()


def warn_fallback(what: str, package: str, detail: str = "") -> None:
    """Log once per ``what`` that a fast path falls back to the plain one, naming ``package`` and its version."""
    if what in _warned:
        return
    _warned.add(what)
    try:
        found = version(package)
    except PackageNotFoundError:
        found = "not installed"
    logger.warning("hypergen_ws: %s falls back to the plain path with %s %s%s; everything works, only slower.",
                   what, package, found, f" ({detail})" if detail else "",
                   extra=fields("fast_path_fallback", code=package))


def layer_kind(layer: object) -> LayerKind:
    """``"memory"`` for the in-memory layer, ``"redis"`` for ``channels_redis`` layers, ``"none"``, ``"other"``."""
    if layer is None:
        return "none"
    if isinstance(layer, InMemoryChannelLayer):
        return "memory"
    if type(layer).__module__.startswith("channels_redis"):
        return "redis"
    return "other"


def bypasses_layer(layer: object) -> bool:
    """Whether publishers hand frames to this process's hubs directly (no layer, or the in-memory one)."""
    return layer_kind(layer) in ("none", "memory")


def get_layer(alias: str | None = None) -> Any:
    """The channel layer hypergen_ws uses (``HYPERGEN_WS["CHANNEL_LAYER"]``), prepared by ``prepare_layer``."""
    layer = get_channel_layer(alias or conf.get("CHANNEL_LAYER"))
    if layer is not None:
        prepare_layer(layer)
    return layer


def prepare_layer(layer: Any) -> None:
    """Give the hubs' channels ``GROUP_CAPACITY`` on a layer with per-channel capacities (idempotent).

    A ``channels_redis`` ``RedisChannelLayer`` drops a group message silently (a log line at INFO) when the
    receiving process already has ``capacity`` (default 100) messages waiting; the in-memory layer does the same.
    The capacity a sender applies comes from its own ``channel_capacity`` patterns, so every process that
    publishes (servers, workers, commands) needs the pattern: it is added here, to the layer instance, and
    ``apps.ready`` makes every layer created in the process go through here.
    """
    if layer_kind(layer) == "redis":
        check_pooled_connections(layer)
    if not isinstance(layer, BaseChannelLayer):  # RedisPubSubChannelLayer: no capacity, nothing to prepare
        return
    capacities = getattr(layer, "channel_capacity", None)
    if isinstance(capacities, dict):  # InMemoryChannelLayer keeps the setting uncompiled
        capacities = layer.channel_capacity = layer.compile_capacities(capacities)
    if not isinstance(capacities, list) or any(pattern is _HUB_PATTERN for pattern, _ in capacities):
        return
    capacities.insert(0, (_HUB_PATTERN, int(conf.get("GROUP_CAPACITY"))))


def check_pooled_connections(layer: Any) -> None:
    """Make the pools of a ``channels_redis`` layer test an idle connection before they hand it out (idempotent).

    redis-py 8 skips that test while its maintenance notifications are on, which they are by default, so after
    Redis restarted the first command on every idle pooled connection failed (``checked_host`` in
    ``backends.redis.store`` says more). Each host of the layer that does not set ``maint_notifications_config``
    itself gets them switched off, before the layer makes its pools: a copy of the host options, never the
    settings' own dict. A layer of another shape is left alone, with a WARNING once.
    """
    # The instance's own attributes only: RedisPubSubChannelLayer hands unknown ones to its layer of the running
    # event loop, and there may be none (a sync publisher).
    attrs: dict[str, Any] = getattr(layer, "__dict__", {})
    if attrs.get("_hypergen_ws_checked"):
        return
    from .redis.store import checked_host  # channels_redis is an optional extra: imported only when in use

    hosts, kwargs = attrs.get("hosts"), attrs.get("_kwargs")
    if isinstance(hosts, list) and all(isinstance(h, dict) for h in hosts):  # RedisChannelLayer
        layer.hosts = [checked_host(h) for h in hosts]
    elif isinstance(kwargs, dict) and not attrs.get("_args"):  # RedisPubSubChannelLayer(hosts=...)
        from channels_redis.utils import decode_hosts  # (the optional extra, as above)

        kwargs["hosts"] = [checked_host(h) for h in decode_hosts(kwargs.get("hosts"))]
    else:
        warn_fallback("testing idle Redis connections before use", "channels_redis",
                      f"{type(layer).__name__} keeps its hosts elsewhere; after a Redis restart a call may fail once")
        return
    layer._hypergen_ws_checked = True


async def hub_channel(layer: Any) -> str:
    """A new process-local channel for a hub: the layer's own ``new_channel()`` with ``HUB_MARK`` after "!".

    The part before "!" must stay the layer's: ``RedisChannelLayer`` reads every local channel of a process
    from one Redis list named by it, under one receive lock, so a channel with another prefix would only be
    read when a message arrived for the lock holder's prefix. The mark lets ``channel_capacity`` patterns
    (``prepare_layer``) tell hub channels from consumers' own channels.
    """
    name: str = await layer.new_channel()
    if isinstance(layer, BaseChannelLayer) and "!" in name:
        head, _, tail = name.partition("!")
        name = f"{head}!{HUB_MARK}{tail}"
    return name


def _memory_queues(layer: Any) -> dict[str, asyncio.Queue[tuple[float, dict[str, Any]]]] | None:
    """The queues of an exact ``InMemoryChannelLayer``, or None (another layer, or an unexpected shape)."""
    if type(layer) is not InMemoryChannelLayer:
        return None
    queues = getattr(layer, "channels", None)
    if not isinstance(queues, dict) or not hasattr(layer, "get_capacity"):
        warn_fallback("waiting on in-memory layer channels without a scan", "channels",
                      "InMemoryChannelLayer has no 'channels' dict")
        return None
    return queues


def names_channels_at_once(layer: Any) -> bool:
    """Whether :func:`channel_name_now` makes the channels of ``layer`` (no ``await layer.new_channel()``)."""
    return type(layer) is InMemoryChannelLayer or _is_redis_core(layer)


def _is_redis_core(layer: Any) -> bool:
    return (type(layer).__module__ == "channels_redis.core" and type(layer).__name__ == "RedisChannelLayer"
            and isinstance(getattr(layer, "client_prefix", None), str))


def channel_name_now(layer: Any) -> str | None:
    """A new name for a socket's own channel, made at once as ``await layer.new_channel()`` would make it, or None.

    The exact in-memory layer and ``channels_redis``'s ``RedisChannelLayer`` only make up a name in
    ``new_channel()`` (no queue, no subscription: the first ``receive()`` or ``send()`` makes the queue), so a
    socket can take its channel when something first asks for it. Every other layer (``RedisPubSubChannelLayer``
    subscribes in ``new_channel()``; subclasses may do anything) gets None: its sockets make their channel at
    connect, as in Channels.
    """
    if type(layer) is InMemoryChannelLayer:
        return "specific..inmemory!" + "".join(random.choice(string.ascii_letters) for _ in range(12))
    if _is_redis_core(layer):
        return f"specific.{layer.client_prefix}!{uuid.uuid4().hex}"
    return None


async def receive_channel(layer: Any, channel: str) -> dict[str, Any]:
    """``layer.receive(channel)``, without the in-memory layer's walk over every channel on every call.

    ``InMemoryChannelLayer.receive()`` scans every channel and group for expired entries before it waits, so N
    sockets that each wait on their own channel cost O(N²) to connect (about 18 s for 5,000 on a 2-core
    machine). On that exact class this waits on the channel's queue directly, as ``receive()`` would after its
    scan; every other layer (subclasses included) gets a plain ``receive()``.
    """
    queues = _memory_queues(layer)
    if queues is None:
        message: dict[str, Any] = await layer.receive(channel)
        return message
    queue = queues.get(channel)
    if queue is None:
        queue = queues[channel] = asyncio.Queue(maxsize=layer.get_capacity(channel))
    try:
        _expires, message = await queue.get()
    finally:
        if queue.empty() and queues.get(channel) is queue:
            del queues[channel]
    return message


async def send_local(layer: Any, channel: str, message: dict[str, Any]) -> None:
    """``layer.send(channel, message)`` to a channel of this process, without crossing the layer again.

    On the exact in-memory layer the message goes onto the channel's queue without the layer's scan; on
    ``channels_redis``'s ``RedisPubSubChannelLayer`` into the queue of the channel's subscription. Any other layer
    (``RedisChannelLayer`` included, or another shape of these) gets a plain ``send()``.
    """
    queues = _memory_queues(layer)
    if queues is not None:
        queue = queues.get(channel)
        if queue is None:
            queue = queues[channel] = asyncio.Queue(maxsize=layer.get_capacity(channel))
        if queue.full():
            logger.warning("Dropped a %r message for a local socket: its channel is full", message.get("type"),
                           extra=fields("local_message_dropped", code=str(message.get("type"))))
            return
        queue.put_nowait((time.time() + float(layer.expiry), deepcopy(message)))
        return
    if layer_kind(layer) == "redis" and type(layer).__name__ == "RedisPubSubChannelLayer":
        inner = layer._get_layer() if hasattr(layer, "_get_layer") and hasattr(layer, "serialize") else None
        queue = getattr(inner, "channels", {}).get(channel) if inner is not None else None
        if isinstance(queue, asyncio.Queue):
            queue.put_nowait(layer.serialize(message))
            return
        if inner is None:
            warn_fallback("handing channel-layer messages to local sockets", "channels_redis",
                          "RedisPubSubChannelLayer has no per-loop layer with channel queues")
    # RedisChannelLayer: one of its receivers blocks on Redis for all of them, so a message put into its local
    # buffer could wait for that receiver's timeout; a plain send wakes it at once.
    await layer.send(channel, message)


def release_channel(layer: Any, channel: str) -> None:
    """Forget what ``layer`` keeps in this process for a process-local ``channel`` nobody receives on any more.

    ``RedisChannelLayer`` keeps a queue per local channel (``receive_buffer``) and drops it only when a waiting
    ``receive()`` is cancelled; the receiver that happens to hold its receive lock when it is cancelled leaves its
    queue behind, so a server that opens and closes sockets grows by a queue or two per socket for good. Only an
    empty queue is dropped. Other layers keep nothing of the kind.
    """
    if layer_kind(layer) != "redis" or "!" not in channel:
        return
    buffers = getattr(layer, "receive_buffer", None)
    if buffers is None:
        return  # RedisPubSubChannelLayer: its channels are unsubscribed by the layer itself
    if not isinstance(buffers, dict):
        warn_fallback("forgetting the receive queues of closed sockets", "channels_redis",
                      "RedisChannelLayer.receive_buffer is not a dict")
        return
    queue = buffers.get(channel)
    if queue is not None and getattr(queue, "empty", lambda: False)():
        del buffers[channel]


async def drop_idle_connections(layer: Any) -> None:
    """Close the idle pooled Redis connections of ``layer`` and of its history store in this event loop.

    After Redis restarted, a connection that sat idle in a pool is dead, and the first command sent on it fails,
    whenever that is (seconds or minutes later). Called when Redis failed or restarted, this leaves no such
    connection behind: the next command opens a fresh one. Connections in use are left to fail on their own. Does
    nothing on other layers; on a ``channels_redis`` layer of another shape it logs a WARNING once.
    """
    if layer_kind(layer) != "redis":
        return
    clients: list[Any] = []
    ring_size = getattr(layer, "ring_size", None)
    if callable(getattr(layer, "connection", None)) and isinstance(ring_size, int):  # RedisChannelLayer
        clients = [layer.connection(index) for index in range(ring_size)]
    elif hasattr(layer, "_get_layer"):  # RedisPubSubChannelLayer: one client per shard, made on first use
        shards = getattr(layer._get_layer(), "_shards", None)
        clients = [c for c in (getattr(shard, "_redis", None) for shard in shards or ()) if c is not None]
        if shards is None:
            warn_fallback("dropping dead Redis connections after a restart", "channels_redis",
                          "RedisPubSubChannelLayer has no per-loop shards")
    store = get_store(layer)
    clients.extend(getattr(store, "loop_clients", lambda: [])())
    for client in clients:
        pool = getattr(client, "connection_pool", None)
        if pool is None:
            continue
        try:
            await pool.disconnect(inuse_connections=False)
        except Exception:  # closing a dead socket may fail: it is closed all the same
            logger.debug("Closing idle Redis connections failed", exc_info=True,
                         extra=fields("redis_disconnect_failed"))


def _connection_closed(exc: BaseException) -> bool:
    """Whether ``exc`` is redis-py's ``ConnectionError`` (a connection Redis closed, or could not be opened)."""
    return type(exc).__name__ == "ConnectionError" and type(exc).__module__.startswith("redis")


#: Group sends hypergen_ws makes at once per event loop on a ``channels_redis`` layer (each holds a pooled
#: connection; the layer's pools hold 100 by default, and its receivers need some); the others wait their turn.
LAYER_SENDS = 50
_send_slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


async def group_send(layer: Any, group: str, message: dict[str, Any]) -> None:
    """``layer.group_send(group, message)``, at most :data:`LAYER_SENDS` at once per event loop on Redis: a herd of
    closes publishes hundreds of presence frames at a time, and past the pool's size redis-py fails them all
    with ``MaxConnectionsError`` instead of waiting. The caller's timeout bounds the wait."""
    if layer_kind(layer) != "redis":
        await layer.group_send(group, message)
        return
    loop = asyncio.get_running_loop()
    slots = _send_slots.get(loop)
    if slots is None:
        for old in [other for other in _send_slots if other.is_closed()]:
            del _send_slots[old]
        slots = _send_slots[loop] = asyncio.Semaphore(LAYER_SENDS)
    async with slots:
        await layer.group_send(group, message)


async def group_add(layer: Any, group: str, channel: str) -> None:
    """``layer.group_add(group, channel)``, once more on fresh connections when Redis had closed the one it used
    (adding a member twice changes nothing). The caller's timeout bounds both."""
    await _once_more_if_closed(layer, lambda: layer.group_add(group, channel))


async def group_discard(layer: Any, group: str, channel: str) -> None:
    """``layer.group_discard(group, channel)``, retried like :func:`group_add` (removing twice changes nothing)."""
    await _once_more_if_closed(layer, lambda: layer.group_discard(group, channel))


async def _once_more_if_closed(layer: Any, operation: Callable[[], Awaitable[None]]) -> None:
    """Run ``operation``; when Redis had closed the connection it used, drop the idle ones and run it again."""
    try:
        await operation()
    except Exception as exc:
        if not _connection_closed(exc):
            raise
        await drop_idle_connections(layer)
        await operation()


def install_layer_hook() -> None:
    """Prepare every channel layer this process creates (called from ``AppConfig.ready``).

    Covers processes that send plain ``{"type": "x.y"}`` messages to hypergen_ws groups without ever going
    through hypergen_ws code, so they too give the hubs' channels their capacity. ``channel_layers.make_backend``
    is the public factory of channels' layer manager; it is wrapped, not replaced.
    """
    make_backend = channel_layers.make_backend
    if getattr(make_backend, "_hypergen_ws", False):
        return

    def make_prepared_backend(name: str) -> Any:
        layer = make_backend(name)
        try:
            prepare_layer(layer)
        except Exception:  # never let this break layer creation
            logger.warning("Could not set the capacity of hypergen_ws channels on layer %r", name, exc_info=True,
                           extra=fields("layer_capacity_failed", code=name))
        return layer

    make_prepared_backend._hypergen_ws = True  # type: ignore[attr-defined]  # marks the wrapper as ours
    channel_layers.make_backend = make_prepared_backend


def run_sync(coro: Coroutine[Any, Any, T], what: str) -> T:
    """Run a store or layer coroutine from sync code: in this thread on the memory engine (it never waits), else
    on the process's background loop, for ``PUBLISH_TIMEOUT`` seconds at most."""
    if get_engine().kind == "memory":
        return run_inline(coro, what)
    return background_loop().run(coro, what, float(conf.get("PUBLISH_TIMEOUT")))


def get_engine(layer: Any = None) -> Engine:
    """The engine that goes with the channel layer (the default one when None), chosen once per layer: Redis for
    ``channels_redis``, else this process's memory engine."""
    if layer is None:
        layer = get_channel_layer(conf.get("CHANNEL_LAYER"))
    kind = layer_kind(layer)
    if kind != "redis":
        if kind == "other" and "store" not in _warned:
            _warned.add("store")
            logger.warning("History keeps its seq numbers in each process with %s: they are consistent only in a "
                           "single process. Use channels_redis (or the in-memory layer) for history.",
                           type(layer).__name__, extra=fields("history_not_shared", code=type(layer).__name__))
        return memory_engine()
    engine: Engine | None = getattr(layer, "_hypergen_ws_engine", None)
    if engine is None:
        from .redis.engine import RedisEngine  # channels_redis is an optional extra: imported only when in use

        engine = RedisEngine.for_layer(layer)
        layer._hypergen_ws_engine = engine
    return engine


def get_store(layer: Any = None) -> Store:
    """The history store of the engine that goes with the channel layer (:func:`get_engine`)."""
    return get_engine(layer).store


def local_store() -> LocalStore:
    """This process's own history store: the memory engine's (publishers on the in-memory layer, or none, use it
    from any thread; ``clean_expired()`` and tests reach it here)."""
    return memory_engine().store


def forget_local_state() -> None:
    """Forget the history, presence and connection counts this process keeps (``hypergen_ws.testing.reset()``)."""
    memory_engine().clear()
