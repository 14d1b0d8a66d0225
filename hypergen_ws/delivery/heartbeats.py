"""Server processes that share Redis: heartbeats, group counts, and what to do when Redis lost its data.

Every hub (one per event loop, so one per daphne/uvicorn process) that serves a consumer on a Redis layer runs a
heartbeat every ``PROCESS_HEARTBEAT_INTERVAL`` seconds (and soon after its groups change); the keys are described in
:mod:`hypergen_ws.backends.redis.heartbeats`.

A process that misses its beats for ``PROCESS_TTL`` seconds is dead: the first live process to notice removes
what it left (its group counts, and through the listeners its presence entries, with leave frames). When Redis
lost its data (a restart or a flush), a process adds its layer subscriptions again, lets the listeners write
their entries again, and sends every socket that follows a group's history a ``resync`` frame with the group's
new position.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..backends.engine import Engine
from ..backends.layers import drop_idle_connections, get_layer, group_discard
from ..core import conf
from ..core.logs import fields
from ..core.protocol import resync_frame
from ..stats import counters
from . import outage
from .hub import Hub

logger = logging.getLogger("hypergen_ws")


class HeartbeatListener(Protocol):
    """A feature that keeps state per process in the engine (presence, the connection cap)."""

    def needs_reassert(self, hub: Hub) -> bool:
        """Whether ``hub``'s entries must be written again at the next beat (a write failed)."""

    async def reassert(self, hub: Hub, process: str) -> None:
        """Write the entries of ``hub`` (as ``process``) again (Redis lost them, or ``flush_groups()`` removed
        them)."""

    async def process_died(self, engine: Engine, process: str) -> None:
        """Clean up after a dead process."""


#: Features that keep per-process state in the engine; added when a consumer that uses them is declared.
listeners: list[HeartbeatListener] = []


def add_listener(listener: HeartbeatListener) -> None:
    """Register ``listener`` once."""
    if listener not in listeners:
        listeners.append(listener)


#: Gives the report every heartbeat carries (``hypergen_ws.stats.cluster``); None: heartbeats carry none.
_reporter: Callable[[], str] | None = None


def set_reporter(report: Callable[[], str] | None) -> None:
    """Make every heartbeat store ``report()`` (this process's counters as JSON) for the cluster-wide stats."""
    global _reporter
    _reporter = report


class ProcessHeartbeat:
    """This process (one hub) as seen by the others through an engine whose processes beat (Redis)."""

    def __init__(self, hub: Hub, engine: Engine) -> None:
        self.hub = hub
        self.engine = engine
        self.store = engine.store
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.instance: bytes | None = None
        self.generation: bytes | None = None
        self.resynced: bytes | None = None
        #: The ``run_id`` of the Redis server of the last beat: another one means a failover (or a restart).
        self.run_id: str | None = None
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
                async with asyncio.timeout(3 * float(conf.get("PUBLISH_TIMEOUT"))):  # a frozen Redis: try again
                    await self.beat()
                failures = 0
                outage.answered()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if outage.failed("heartbeat", exc):  # logged once, as the outage
                    log = logger.debug
                else:
                    log = logger.warning if failures in (1, 10) or failures % 100 == 0 else logger.debug
                log("hypergen_ws heartbeat of %s failed (%s in a row)", self.id, failures, exc_info=True,
                    extra=fields("heartbeat_failed", code=failures))
                await drop_idle_connections(self.hub.layer)  # none is left to fail once Redis is back
            interval = float(conf.get("PROCESS_HEARTBEAT_INTERVAL"))
            if await self._sleep(interval):
                await asyncio.sleep(min(0.25, interval))  # one beat for a burst of joins and leaves

    async def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` or until :meth:`changed`; True when woken. (A plain future and a timer, not
        ``wait_for`` on an event: that can swallow a cancellation on Python 3.11.)"""
        loop = self.hub.loop
        waiter = self._waiter = loop.create_future()
        def wake() -> None:
            if not waiter.done():
                waiter.set_result(False)

        timer = loop.call_later(seconds, wake)
        try:
            return bool(await waiter)
        finally:
            timer.cancel()
            self._waiter = None

    async def beat(self) -> None:
        """Check the instance id, publish this process's liveness and groups, clean up after dead processes."""
        processes = self.engine.processes
        run_id = await processes.server_run_id()
        if run_id is not None and self.run_id is not None and run_id != self.run_id and self.instance is not None \
                and (await processes.read_instance())[0] == self.instance:
            # Another server, with the data of the last one (a promoted replica, or a restart from a dump): what
            # was written just before may be missing, so no history can be trusted. (A server that lost the data
            # has a new instance id: its histories are new already, and flushing them again would give each
            # group a second new epoch, and each client a second resync, within a beat.)
            logger.warning("Another Redis server answers (a failover or a restart): histories start a new epoch "
                           "and clients resync", extra=fields("redis_server_changed"))
            await processes.declare_lost(self.instance)
        if run_id is not None:
            self.run_id = run_id
        instance, generation = await processes.read_instance()
        lost = self.instance is not None and instance != self.instance
        flushed = self.beats > 0 and generation != self.generation
        self.generation = generation
        if not lost:
            self.instance = instance
        now = time.time()
        counts = {group: len(members) for group, members in self.hub.members.items() if members}
        report = _reporter() if _reporter is not None else None
        channels = {group: channel for group, (channel, _task) in self.hub.subscriptions.items()}
        await processes.beat(self.id, counts, float(conf.get("PROCESS_TTL")), now, report, channels)
        self.beats += 1
        followed = [group for group in self.hub.feeds if group in counts]
        if followed:  # rooms of history consumers nothing was published to yet keep their record (and epoch)
            await self.engine.store.keep_alive(followed)
        for listener in listeners:
            if lost or flushed or listener.needs_reassert(self.hub):
                await listener.reassert(self.hub, self.id)
        if lost:
            await drop_idle_connections(self.hub.layer)  # Redis restarted: its old connections are dead
            await self.recover(instance)
            self.instance = instance  # only now: a failed recovery is tried again at the next beat
        await sweep(self.engine, now, self.hub.layer)

    async def recover(self, instance: bytes | None) -> None:
        """Redis lost its data: subscribe again, then tell every local socket, once per loss, that it may have
        missed frames (until now this process was in none of its groups on the channel layer).

        A socket that follows a group's history gets a ``resync`` (``history_lost``) with the group's new position,
        unless a frame of the new history has reached it already (its client then resynced on its own, as for
        any frame of a new epoch: one resync per loss, not two). Every other socket (groups without history) gets a
        ``resync`` (``rejoined``) without a position. Raises when a subscription could not be restored or a
        position not read, before any socket was told, so that the next beat tries again.
        """
        logger.warning("Redis lost its data (new instance id): restoring the subscriptions of %s", self.id,
                       extra=fields("redis_data_lost"))
        failed: list[str] = []
        for _attempt in range(3):
            failed = await self.hub.resubscribe()
            if not failed:
                break
            await asyncio.sleep(0.2)
        if failed:
            raise ConnectionError(f"could not restore the subscriptions to {', '.join(failed)}")
        if self.resynced == instance:
            return
        snapshots = {}
        for group, members in list(self.hub.members.items()):
            if any(_follows(m, group) for m in members):
                snapshots[group] = await self.engine.store.read(group, None)
        # Nothing below awaits: every socket is told once, or none is (and the next beat tries again).
        told: set[int] = set()  # the connections told, by their state (a socket stands in several groups)
        for group, snapshot in snapshots.items():
            followers = [m for m in self.hub.members.get(group, ()) if _follows(m, group)]
            told.update(id(m.state) for m in followers)
            current = self.hub.feed(group)
            if current.epoch == snapshot.epoch:
                continue  # a frame of the new history reached them: each client resynced then (epoch_changed)
            current.move_to(snapshot.epoch, snapshot.seq + 1)
            text = resync_frame("history_lost", snapshot.seq, snapshot.epoch)
            for member in followers:
                counters.event(counters.RECOVERY, member.label, "resynced.history_lost")
                member.send_text(text)
        rejoined = resync_frame("rejoined", None, None)
        for members in list(self.hub.members.values()):
            for member in list(members):
                if id(member.state) not in told:
                    told.add(id(member.state))
                    counters.event(counters.RECOVERY, member.label, "resynced.rejoined")
                    member.send_text(rejoined)
        self.resynced = instance


def _follows(member: Any, group: str) -> bool:
    """Whether ``member`` follows the history of ``group`` (its frames carry the group's seq)."""
    return bool(member.keeps_history) and member.state.primary_group == group


async def sweep(engine: Engine, now: float | None = None, layer: Any = None) -> int:
    """Remove what dead processes left behind: their group memberships on the channel layer (so nothing is sent
    to their inboxes any more, which then expire), group counts, and presence entries through the listeners.

    Returns how many dead processes were cleaned up.
    """
    layer = layer if layer is not None else get_layer()
    cleaned = 0
    for node_id in await engine.processes.claim_dead(now):
        logger.info("Process %s stopped sending heartbeats; removing its entries", node_id,
                    extra=fields("process_dead", code=node_id))
        for group, channel in (await engine.processes.group_channels(node_id)).items():
            try:
                await group_discard(layer, group, channel)
            except Exception:
                logger.warning("Could not remove the dead process %s from group %s", node_id, group, exc_info=True,
                               extra=fields("dead_process_cleanup_failed", group=group, code=node_id))
        await engine.processes.forget(node_id)  # before the listeners' leave frames: seen after them, all is gone
        for listener in listeners:
            await listener.process_died(engine, node_id)
        cleaned += 1
    return cleaned


_nodes: dict[Hub, ProcessHeartbeat] = {}


def ensure_started(hub: Hub) -> ProcessHeartbeat | None:
    """The heartbeat of ``hub`` when its engine's processes beat (Redis; started on first use), else None."""
    node = _nodes.get(hub)
    if node is not None:
        node.changed()
        return node
    if hub.bypass_layer or not hub.engine.processes.beats:
        return None
    for old in [h for h in _nodes if h.loop.is_closed()]:
        del _nodes[old]
    node = _nodes[hub] = ProcessHeartbeat(hub, hub.engine)
    hub.on_change = lambda _hub: node.changed()
    return node


def node_of(hub: Hub) -> ProcessHeartbeat | None:
    """The running heartbeat of ``hub``, if any."""
    return _nodes.get(hub)


def local_node_ids() -> set[str]:
    """Ids of the heartbeats running in this process (one per event loop with sockets on Redis)."""
    return {node.id for hub, node in list(_nodes.items()) if not hub.loop.is_closed() and not node.task.done()}


def process_id(hub: Hub) -> str:
    """The id ``hub`` has in the engine: its heartbeat's (started here if its engine's processes beat), or the
    hub's own id (one process)."""
    node = ensure_started(hub)
    return hub.id if node is None else node.id


async def flushed(hub: Hub) -> None:
    """``flush_groups()`` emptied the engine: ``hub``'s entries are written again, at its next heartbeat when it
    beats (soon), else now."""
    if ensure_started(hub) is not None:
        return  # (woken: it beats soon, and sees the new generation)
    for listener in listeners:
        await listener.reassert(hub, hub.id)
