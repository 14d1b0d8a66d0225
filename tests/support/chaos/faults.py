"""The faults of the chaos run, each a coroutine that breaks one part for a while and heals it.

They act on real processes: ``kill -9`` of a server and a restart, SIGSTOP/SIGCONT of the Redis master, a restart
of the master with its data gone, a Sentinel failover, a SIGTERM restart of every server in turn (a rolling
deploy), and on one client: a blackholed connection (its proxy stops forwarding) or a client that stops reading.
"""
from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..servers import AsgiServer, RedisSentinel, RedisServer, redis_command, replication_info
from .checker import Fault
from .clients import ChaosClient
from .pyclients import PyChaosClient

KINDS = ("kill_server", "freeze_redis", "restart_redis", "failover", "blackhole", "stalled_reader",
         "rolling_restart")


@dataclass
class Cluster:
    """The parts a fault can break."""

    servers: list[AsgiServer]
    redis: list[RedisServer]  # the master and its replica, in whichever role they are now
    sentinel: RedisSentinel
    clients: list[ChaosClient | PyChaosClient]

    def master(self) -> RedisServer:
        port = self.sentinel.master_port()
        return next((r for r in self.redis if r.port == port), self.redis[0])


async def _kill_server(cluster: Cluster, rng: random.Random) -> str:
    server = rng.choice(cluster.servers)
    server.kill()
    await asyncio.sleep(rng.uniform(0.5, 2.0))
    await asyncio.to_thread(server.start)
    return server.server


async def _freeze_redis(cluster: Cluster, rng: random.Random) -> str:
    master, seconds = cluster.master(), rng.uniform(1.0, 4.0)
    master.freeze()
    try:
        await asyncio.sleep(seconds)
    finally:
        master.thaw()
    return f"{master.port} for {seconds:.1f} s"


async def _restart_redis(cluster: Cluster, rng: random.Random) -> str:
    master = cluster.master()
    master.kill()
    await asyncio.sleep(rng.uniform(0.1, 1.5))
    await asyncio.to_thread(master.start)
    return str(master.port)


def _replica_in_sync(cluster: Cluster) -> bool:
    """The replica has its link to the master up and has read everything the master wrote."""
    master = cluster.master()
    replica = next(r for r in cluster.redis if r is not master)
    info = replication_info(replica.port)
    offsets = [line.split(":", 1)[1] for line in replication_info(master.port).splitlines()
               if line.startswith("master_repl_offset:")]
    return "master_link_status:up" in info and bool(offsets) and f"slave_repl_offset:{offsets[0]}" in info


async def _failover(cluster: Cluster, rng: random.Random) -> str:
    """A planned failover (SENTINEL FAILOVER), once the replica caught up: promoting a replica that is still
    loading its first copy gives back a data set of minutes ago, which is Redis's own limit, not this one's."""
    for _ in range(200):
        if await asyncio.to_thread(_replica_in_sync, cluster):
            break
        await asyncio.sleep(0.05)
    before = cluster.master().port
    reply = await asyncio.to_thread(redis_command, cluster.sentinel.port, "SENTINEL", "FAILOVER",
                                    cluster.sentinel.master_name)
    for _ in range(100):  # up to 10 s for the promotion
        if cluster.sentinel.master_port() not in (None, before):
            break
        await asyncio.sleep(0.1)
    return f"{before} -> {cluster.sentinel.master_port()} ({reply.decode(errors='replace').strip()})"


async def _blackhole(cluster: Cluster, rng: random.Random) -> str:
    client, seconds = rng.choice(cluster.clients), rng.uniform(1.0, 9.0)
    client.proxy.blackhole()
    try:
        await asyncio.sleep(seconds)
    finally:
        client.proxy.restore()
    return f"{client.name} for {seconds:.1f} s"


async def _stalled_reader(cluster: Cluster, rng: random.Random) -> str:
    client, seconds = rng.choice(cluster.clients), rng.uniform(1.0, 8.0)
    client.pause_reading()
    try:
        await asyncio.sleep(seconds)
    finally:
        client.resume_reading()
    return f"{client.name} for {seconds:.1f} s"


async def _rolling_restart(cluster: Cluster, rng: random.Random) -> str:
    for server in cluster.servers:
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(server.start)
    return " then ".join(s.server for s in cluster.servers)


FAULTS: dict[str, Callable[[Cluster, random.Random], Awaitable[str]]] = {
    "kill_server": _kill_server, "freeze_redis": _freeze_redis, "restart_redis": _restart_redis,
    "failover": _failover, "blackhole": _blackhole, "stalled_reader": _stalled_reader,
    "rolling_restart": _rolling_restart,
}


async def inject(cluster: Cluster, rng: random.Random, kinds: list[str], until: float, cycle: bool,
                 record: list[Fault], pause: tuple[float, float] = (1.0, 4.0)) -> None:
    """Inject faults until ``until`` (time.time()): in turn when ``cycle``, else at random; each one healed
    before the next starts, with a random pause between."""
    number = 0
    while time.time() < until:
        await asyncio.sleep(rng.uniform(*pause))
        if time.time() >= until:
            break
        kind = kinds[number % len(kinds)] if cycle else rng.choice(kinds)
        number += 1
        start = time.time()
        detail = await FAULTS[kind](cluster, rng)
        record.append(Fault(kind, start, time.time(), detail))
