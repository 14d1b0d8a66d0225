"""Server processes that share Redis: heartbeats, group counts, and what to do when Redis lost its data.

Every hub (one per event loop, so one per daphne/uvicorn process) that serves a consumer on a Redis layer runs a
heartbeat every ``HEARTBEAT_INTERVAL`` seconds (and soon after its groups change). Keys, on the layer's first
host (``<p>`` is ``HYPERGEN_WS["REDIS_PREFIX"]``)::

    <p>:procs          sorted set: process id -> the time (s) its entries expire (now + PROCESS_TTL)
    <p>:pg:<process>   hash: group -> local sockets of that process; expires PROCESS_TTL after the last beat
    <p>:ps:<process>   string: that process's traffic counters (JSON, see ``set_reporter``) for the cluster-wide
                       stats; expires PROCESS_TTL after the last beat
    <p>:instance       a random id written with SET NX; when it changes, Redis lost its data
    <p>:generation     changed by ``flush_groups()``: every process writes its presence entries again

A process that misses its beats for ``PROCESS_TTL`` seconds is dead: the first live process to notice removes
its presence entries (sending the leave frames) and its group counts. When ``<p>:instance`` changes (a
restarted or flushed Redis), a process adds its layer subscriptions again, re-registers its presence entries
and sends every socket that follows a group's history a ``resync`` frame with the group's new position.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from . import conf

if TYPE_CHECKING:
    from .fanout import Hub
    from .redis_store import RedisStore

logger = logging.getLogger("hypergen_ws")


def _prefix() -> str:
    return str(conf.get("REDIS_PREFIX"))


#: Gives the report every heartbeat carries (``hypergen_ws.clusterstats``); None: heartbeats carry none.
_reporter: Callable[[], str] | None = None


def set_reporter(report: Callable[[], str] | None) -> None:
    """Make every heartbeat store ``report()`` (this process's counters as JSON) under ``<p>:ps:<process>``."""
    global _reporter
    _reporter = report


class Node:
    """This process (one hub) as seen by the others through Redis."""

    def __init__(self, hub: Hub, store: RedisStore) -> None:
        self.hub = hub
        self.store = store
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.instance: bytes | None = None
        self.generation: bytes | None = None
        self.resynced: bytes | None = None
        self._waiter: asyncio.Future[bool] | None = None
        self.beats = 0
        self.task: asyncio.Task[None] = hub.loop.create_task(self._run())

    def changed(self) -> None:
        """The local groups changed: beat soon (from any thread)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self.hub.loop:
            if not self.hub.loop.is_closed():
                self.hub.loop.call_soon_threadsafe(self.changed)
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self.beat()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                log = logger.warning if failures in (1, 10) or failures % 100 == 0 else logger.debug
                log("hypergen_ws heartbeat of %s failed (%s in a row)", self.id, failures, exc_info=True)
            interval = float(conf.get("HEARTBEAT_INTERVAL"))
            if await self._sleep(interval):
                await asyncio.sleep(min(0.25, interval))  # one beat for a burst of joins and leaves

    async def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` or until :meth:`changed`; True when woken. (A plain future and a timer, not
        ``wait_for`` on an event: that can swallow a cancellation on Python 3.11.)"""
        loop = self.hub.loop
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(seconds, lambda: waiter.done() or waiter.set_result(False))
        try:
            return bool(await waiter)
        finally:
            timer.cancel()
            self._waiter = None

    async def beat(self) -> None:
        """Check the instance id, publish this process's liveness and groups, clean up after dead processes."""
        from . import presence

        redis = self.store.clients.get(0)
        p = _prefix()
        instance, generation = await redis.mget(f"{p}:instance", f"{p}:generation")
        if instance is None:
            await redis.set(f"{p}:instance", secrets.token_hex(8), nx=True)
            instance = await redis.get(f"{p}:instance")
        lost = self.instance is not None and instance != self.instance
        flushed = self.beats > 0 and generation != self.generation
        self.generation = generation
        if not lost:
            self.instance = instance
        now = time.time()
        ttl = float(conf.get("PROCESS_TTL"))
        counts = {group: len(members) for group, members in self.hub.members.items() if members}
        report = _reporter() if _reporter is not None else None
        async with redis.pipeline(transaction=True) as pipe:
            pipe.zadd(f"{p}:procs", {self.id: now + ttl})
            pipe.delete(f"{p}:pg:{self.id}")
            if counts:
                pipe.hset(f"{p}:pg:{self.id}", mapping=counts)
                pipe.pexpire(f"{p}:pg:{self.id}", int(ttl * 1000))
            if report is not None:
                pipe.set(f"{p}:ps:{self.id}", report, px=int(ttl * 1000))
            await pipe.execute()
        self.beats += 1
        if lost or flushed or presence.needs_reassert(self.hub):
            await presence.reassert(self.hub)
        if lost:
            await self.recover(instance)
            self.instance = instance  # only now: a failed recovery is tried again at the next beat
        await sweep(self.store, now)

    async def recover(self, instance: bytes | None) -> None:
        """Redis lost its data: subscribe again, then tell history followers to resync (once per loss).

        Raises when a subscription could not be restored, so that the next beat tries again.
        """
        from .recovery import feed, resync_frame

        logger.warning("Redis lost its data (new instance id): restoring the subscriptions of %s", self.id)
        layer = self.hub.layer
        failed = []
        for group, (channel, _task) in list(self.hub._readers.items()):
            for attempt in range(3):
                try:
                    await layer.group_add(group, channel)
                    break
                except Exception:
                    if attempt == 2:
                        logger.warning("Could not subscribe to %s again; retrying at the next heartbeat", group,
                                       exc_info=True)
                        failed.append(group)
                    else:
                        await asyncio.sleep(0.2)
        if failed:
            raise RuntimeError(f"could not restore the subscriptions to {', '.join(failed)}")
        if self.resynced == instance:
            return
        for group, members in list(self.hub.members.items()):
            followers = [m for m in members if getattr(m, "hypergen", None) is not None and m.hypergen.history
                         and m.__dict__.get("_hgws_primary") == group]
            if not followers:
                continue
            snapshot = await self.store.read(group, None)
            current = feed(self.hub, group)
            current.epoch, current.expected = snapshot.epoch, snapshot.seq + 1
            text = resync_frame("history_lost", snapshot.seq, snapshot.epoch)
            for member in followers:
                member.send_text(text)
        self.resynced = instance


async def sweep(store: RedisStore, now: float | None = None) -> int:
    """Remove what dead processes left behind (presence entries with their leave frames, group counts).

    Returns how many dead processes were cleaned up.
    """
    from . import presence

    redis = store.clients.get(0)
    p = _prefix()
    dead = await redis.zrangebyscore(f"{p}:procs", "-inf", now or time.time())
    cleaned = 0
    for raw in dead:
        if not await redis.zrem(f"{p}:procs", raw):
            continue  # another process is on it
        node_id = raw.decode()
        logger.info("Process %s stopped sending heartbeats; removing its entries", node_id)
        await presence.sweep_process(store, node_id)
        await redis.delete(f"{p}:pg:{node_id}", f"{p}:ps:{node_id}")
        cleaned += 1
    return cleaned


_nodes: WeakKeyDictionary[Hub, Node] = WeakKeyDictionary()


def ensure_started(hub: Hub) -> Node | None:
    """The heartbeat of ``hub`` on a Redis layer (started on first use); None on other layers."""
    node = _nodes.get(hub)
    if node is not None:
        node.changed()
        return node
    from .stores import get_store

    store = get_store(hub.layer)
    if store.kind != "redis":
        return None
    node = _nodes[hub] = Node(hub, store)  # type: ignore[arg-type]
    return node


def node_of(hub: Hub) -> Node | None:
    """The running heartbeat of ``hub``, if any."""
    return _nodes.get(hub)


async def live_processes(store: RedisStore) -> list[str]:
    """Ids of processes whose heartbeat is current."""
    raw = await store.clients.get(0).zrangebyscore(f"{_prefix()}:procs", time.time(), "+inf")
    return [r.decode() for r in raw]


def local_node_ids() -> set[str]:
    """Ids of the heartbeats running in this process (one per event loop with sockets on Redis)."""
    return {node.id for hub, node in list(_nodes.items()) if not hub.loop.is_closed() and not node.task.done()}


async def process_reports(store: RedisStore) -> list[tuple[str, float, str | None]]:
    """Every process whose heartbeat is current: ``(id, when its entries expire, its last report or None)``."""
    redis = store.clients.get(0)
    p = _prefix()
    rows: list[tuple[str, float]] = []
    for item in await redis.zrangebyscore(f"{p}:procs", time.time(), "+inf", withscores=True):
        if isinstance(item, (tuple, list)) and len(item) == 2:
            rows.append((_text(item[0]), float(item[1])))
    if not rows:
        return []
    reports = await redis.mget([f"{p}:ps:{node_id}" for node_id, _expires in rows])
    return [(node_id, expires, None if report is None else _text(report))
            for (node_id, expires), report in zip(rows, reports)]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def changed(hub: Any) -> None:
    """Tell the heartbeat of ``hub`` (if any) that its groups changed."""
    node = _nodes.get(hub)
    if node is not None:
        node.changed()
