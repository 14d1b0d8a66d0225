"""Server processes sharing Redis: the keys of their heartbeats (docs/presence.rst).

Keys on the layer's first host (``<p>`` is ``HYPERGEN_WS["REDIS_PREFIX"]``)::

    <p>:procs          sorted set: process id -> the time (s) its entries expire (now + PROCESS_TTL)
    <p>:pg:<process>   hash: group -> local sockets of that process; expires PROCESS_TTL after the last beat
    <p>:pc:<process>   hash: group -> the layer channel that process joined the group with (hub channels and
                       the control group); a live process that sweeps a dead one leaves the groups with them;
                       expires CHANNELS_TTL after the last beat when nobody swept it
    <p>:ps:<process>   string: that process's traffic counters (JSON) for the cluster-wide stats
                       (``hypergen_ws.stats.cluster``); expires PROCESS_TTL after the last beat
    <p>:instance       a random id written with SET NX; when it changes, Redis lost its data
    <p>:generation     changed by ``flush_groups()``: every process writes its presence entries again

Besides the instance id, every heartbeat reads the ``run_id`` of the Redis servers it reached (``INFO server``):
it changes when another server answers, which is what a Sentinel failover (or a restart) looks like from here,
even though the promoted replica kept the instance id. What was written just before a failover may not have
reached the replica, so the sequence numbers of histories cannot be trusted: ``declare_lost`` starts every
group's history in a new epoch and gives the instance a new id, and every process then recovers as after a
loss of data (docs/scaling.rst).
"""
from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING

from ...core.logs import fields

if TYPE_CHECKING:  # the store imports channels_redis, an optional extra
    from redis import asyncio as aioredis

    from .store import RedisStore

logger = logging.getLogger("hypergen_ws")

#: Replaces the instance id only if it is still the one this process knew (compare and set).
_REPLACE_INSTANCE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_no_info: set[int] = set()


async def server_run_id(store: RedisStore) -> str | None:
    """The ``run_id`` of every Redis server the layer's hosts reach now, joined by commas (one per host, so a
    failover of any shard is seen), or None when ``INFO`` is not allowed."""
    run_ids = []
    for redis in store.clients.all():
        try:
            info = await redis.info("server")
        except Exception as exc:
            if "ResponseError" not in type(exc).__name__:
                raise  # not reachable: the heartbeat fails and tries again
            if id(store) not in _no_info:
                _no_info.add(id(store))
                logger.warning("hypergen_ws cannot read INFO from Redis (%s): a failover to a replica will not be "
                               "noticed, so clients may miss frames published just before one", exc,
                               extra=fields("redis_info_unavailable"))
            return None
        run_ids.append(str(info.get("run_id", "")))
    return ",".join(run_ids) if all(run_ids) else None


async def declare_lost(store: RedisStore, known: bytes | None) -> bool:
    """Another Redis server answers (a failover): start every history in a new epoch, then give the instance a
    new id unless another process did it first. Returns True when this call replaced the id."""
    await store.flush()
    p = store.prefix
    redis = store.clients.get(0)
    replaced = await redis.eval(_REPLACE_INSTANCE, 1, f"{p}:instance", known or b"", secrets.token_hex(8))
    return bool(replaced)



async def read_instance(store: RedisStore) -> tuple[bytes | None, bytes | None]:
    """``(instance id, generation)``, writing an instance id first when Redis has none."""
    redis = store.clients.get(0)
    p = store.prefix
    instance, generation = await redis.mget(f"{p}:instance", f"{p}:generation")
    if instance is None:
        await redis.set(f"{p}:instance", secrets.token_hex(8), nx=True)
        instance = await redis.get(f"{p}:instance")
    return _raw(instance), _raw(generation)


def _raw(value: object) -> bytes | None:
    if value is None:
        return None
    return value if isinstance(value, bytes) else str(value).encode()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


#: Seconds the layer channels of a process are kept after its last beat, for a live process to sweep them.
CHANNELS_TTL = 3600


async def beat(store: RedisStore, node_id: str, counts: dict[str, int], ttl: float, now: float,
               report: str | None = None, channels: dict[str, str] | None = None) -> None:
    """Record that process ``node_id`` lives until ``now + ttl``, with its sockets per group, its ``report`` (its
    counters, as JSON) when given, and the layer channel it joined each group with."""
    await store.clients.retrying(0, lambda redis: _beat(redis, store.prefix, node_id, counts, ttl, now, report,
                                                        channels))


async def _beat(redis: aioredis.Redis, p: str, node_id: str, counts: dict[str, int], ttl: float, now: float,
                report: str | None, channels: dict[str, str] | None) -> None:
    """One heartbeat's writes, in one transaction (they set, never add: it may run twice)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zadd(f"{p}:procs", {node_id: now + ttl})
        pipe.delete(f"{p}:pg:{node_id}", f"{p}:pc:{node_id}")
        if counts:
            pipe.hset(f"{p}:pg:{node_id}", mapping=counts)  # type: ignore[arg-type]
            pipe.pexpire(f"{p}:pg:{node_id}", int(ttl * 1000))
        if report is not None:
            pipe.set(f"{p}:ps:{node_id}", report, px=int(ttl * 1000))
        if channels:
            pipe.hset(f"{p}:pc:{node_id}", mapping=channels)  # type: ignore[arg-type]
            pipe.expire(f"{p}:pc:{node_id}", CHANNELS_TTL)
        await pipe.execute()


async def group_channels(store: RedisStore, node_id: str) -> dict[str, str]:
    """The layer channel per group that process ``node_id`` reported with its last heartbeat."""
    raw = await store.clients.get(0).hgetall(f"{store.prefix}:pc:{node_id}")
    return {_text(group): _text(channel) for group, channel in raw.items()}


async def claim_dead(store: RedisStore, now: float | None = None) -> list[str]:
    """Ids of processes whose heartbeat ran out, each claimed by this caller (removed from the process list)."""
    redis = store.clients.get(0)
    p = store.prefix
    claimed = []
    for raw in await redis.zrangebyscore(f"{p}:procs", "-inf", now or time.time()):
        name = _text(raw)
        if await redis.zrem(f"{p}:procs", name):  # 0: another process is on it
            claimed.append(name)
    return claimed


async def forget_process(store: RedisStore, node_id: str) -> None:
    """Remove a dead process's group counts, report and channels."""
    p = store.prefix
    await store.clients.get(0).delete(f"{p}:pg:{node_id}", f"{p}:ps:{node_id}", f"{p}:pc:{node_id}")


async def live_processes(store: RedisStore) -> list[str]:
    """Ids of processes whose heartbeat is current."""
    raw = await store.clients.get(0).zrangebyscore(f"{store.prefix}:procs", time.time(), "+inf")
    return [_text(r) for r in raw]


async def group_counts(store: RedisStore, node_id: str) -> dict[str, int]:
    """The sockets per group that process ``node_id`` reported with its last heartbeat."""
    raw = await store.clients.get(0).hgetall(f"{store.prefix}:pg:{node_id}")
    return {_text(group): int(count) for group, count in raw.items()}


async def process_reports(store: RedisStore) -> list[tuple[str, float, str | None]]:
    """Every process whose heartbeat is current: ``(id, when its entries expire, its last report or None)``."""
    redis = store.clients.get(0)
    p = store.prefix
    rows: list[tuple[str, float]] = []
    for item in await redis.zrangebyscore(f"{p}:procs", time.time(), "+inf", withscores=True):
        if isinstance(item, (tuple, list)) and len(item) == 2:
            rows.append((_text(item[0]), float(item[1])))
    if not rows:
        return []
    reports = await redis.mget([f"{p}:ps:{node_id}" for node_id, _expires in rows])
    return [(node_id, expires, None if report is None else _text(report))
            for (node_id, expires), report in zip(rows, reports)]
