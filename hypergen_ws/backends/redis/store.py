"""Group histories in Redis, next to the ``channels_redis`` layer (same hosts, same client library).

Keys per group (``<p>`` is ``HYPERGEN_WS["REDIS_PREFIX"]``, ``hgws`` by default)::

    <p>:seq:<group>    hash {"epoch": random id, "seq": last sequence number}; expires SEQUENCE_TTL after the
                       last publish
    <p>:hist:<group>   stream of the last N frames, entry id "<seq>-0", fields "t" (the frame), "ts" (ms) and,
                       for a frame published with a revision, "g" (its tag); XADD MAXLEN N; expires
                       HISTORY_TTL after the last publish

A Lua script assigns the seq and appends the entry in one atomic step (so a seq is never visible before its
entry, and rewrites the entries it supersedes: a stream entry cannot change, so the stream is rebuilt with
the same ids then); the epoch is written only when the hash is missing, the equivalent of ``SET NX``: a restarted or flushed
Redis, or an expired record, gives the group a new epoch. Groups are spread over the layer's hosts like
``channels_redis`` spreads its groups.
"""
from __future__ import annotations

import asyncio
import binascii
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from channels_redis.utils import create_pool, decode_hosts
from redis import asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

try:
    from redis.maint_notifications import MaintNotificationsConfig
except ImportError:  # redis-py before 7 has no maintenance notifications, and always checks pooled connections
    MaintNotificationsConfig = None  # type: ignore[assignment,misc]

from ...core import conf
from ..base import EMPTY_RECORD_TTL, Revision, Snapshot, history_ttl, new_epoch, sequence_ttl
from .scripts import APPEND, KEEP, READ, REDACT

T = TypeVar("T")


def layer_hosts(layer: Any) -> list[dict[str, Any]]:
    """The decoded ``hosts`` of a ``channels_redis`` layer (core or pub/sub)."""
    hosts = getattr(layer, "hosts", None)
    if isinstance(hosts, list) and all(isinstance(h, dict) for h in hosts):
        return hosts
    kwargs = getattr(layer, "_kwargs", None) or {}
    args = getattr(layer, "_args", None) or ()
    decoded: list[dict[str, Any]] = decode_hosts(kwargs.get("hosts", args[0] if args else None))
    return decoded


#: The host option that :func:`checked_host` sets.
MAINT_OPTION = "maint_notifications_config"


def checked_host(host: dict[str, Any]) -> dict[str, Any]:
    """``host`` (``channels_redis`` host options) with redis-py's check of pooled connections before use.

    redis-py 8 speaks RESP3 and switches on "maintenance notifications" (``maint_notifications_config``,
    ``enabled="auto"``) for every TCP pool; with them on, ``ConnectionPool.ensure_connection`` skips its test of
    whether an idle connection was closed by the server. So after Redis restarted, the first command on each
    idle pooled connection fails ("Connection closed by server"), whenever it comes. Turning them off (they serve
    Redis Enterprise's planned failovers only) brings the test back: a dead connection is replaced before any
    command is written to it, so nothing is lost and nothing is sent twice. A host that sets the option keeps it.
    """
    if MaintNotificationsConfig is None or MAINT_OPTION in host:
        return host
    return {**host, MAINT_OPTION: MaintNotificationsConfig(enabled=False)}


def crc_hash(name: str, ring_size: int) -> int:
    """The host index of ``name`` among ``ring_size`` hosts: CRC32, as ``channels_redis`` spreads its groups."""
    if ring_size <= 1:
        return 0
    return int((binascii.crc32(name.encode("utf8")) & 0xFFF) / (4096 / float(ring_size)))


#: Commands the store runs at once per event loop and host; the others wait for a slot (their caller's timeout
#: bounds the wait) instead of failing with redis-py's ``MaxConnectionsError`` once the pool is empty.
STORE_CALLS = 50
#: Connections each pool of the store may open: the store's calls, and room for heartbeat transactions.
STORE_POOL_SIZE = 2 * STORE_CALLS


class BoundedRedis(aioredis.Redis):
    """A client that runs at most :attr:`slots` commands at once (a herd of closes makes hundreds at a time)."""

    slots: asyncio.Semaphore

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        async with self.slots:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]  # (redis-py)


def bounded_client(host: dict[str, Any]) -> BoundedRedis:
    """A client of ``host`` whose pool holds :data:`STORE_POOL_SIZE` connections (or what the host sets) and
    that runs half as many commands at once."""
    pool = create_pool(checked_host(host))
    if "max_connections" not in host:
        pool.max_connections = max(pool.max_connections, STORE_POOL_SIZE)
    client = BoundedRedis(connection_pool=pool)
    client.slots = asyncio.Semaphore(max(1, min(STORE_CALLS, pool.max_connections // 2)))
    return client


class RedisClients:
    """One ``redis.asyncio.Redis`` per (event loop, host), like ``channels_redis`` keeps its own."""

    def __init__(self, hosts: list[dict[str, Any]], hasher: Callable[[str], int] | None = None) -> None:
        self.hosts = hosts
        self._hasher = hasher
        self._clients: dict[tuple[asyncio.AbstractEventLoop, int], aioredis.Redis] = {}

    def index(self, name: str) -> int:
        """The host a group (or any name) lives on: the layer's own ``consistent_hash`` where it has one."""
        if self._hasher is not None:
            return self._hasher(name)
        return crc_hash(name, len(self.hosts))

    def get(self, index: int = 0) -> aioredis.Redis:
        """The client for host ``index`` in the running event loop."""
        loop = asyncio.get_running_loop()
        client = self._clients.get((loop, index))
        if client is None:
            for key in [k for k in self._clients if k[0].is_closed()]:
                del self._clients[key]
            client = self._clients[(loop, index)] = bounded_client(self.hosts[index])
        return client

    async def retrying(self, index: int, operation: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        """``operation(client)``, once more on a fresh connection when the first one failed with a
        ``ConnectionError`` (a connection Redis closed). Only for operations that may run twice: reads, and
        writes that set rather than add. The caller's timeout bounds both."""
        client = self.get(index)
        try:
            return await operation(client)
        except RedisConnectionError:
            await client.connection_pool.disconnect(inuse_connections=False)
            return await operation(client)

    def all(self) -> list[aioredis.Redis]:
        """A client per host, in the running event loop."""
        return [self.get(i) for i in range(len(self.hosts))]

    def made(self) -> list[aioredis.Redis]:
        """The clients already made in the running event loop."""
        loop = asyncio.get_running_loop()
        return [client for (owner, _), client in list(self._clients.items()) if owner is loop]


class RedisStore:
    """Histories in Redis; see the module docstring for the keys."""

    kind: Literal["redis"] = "redis"

    def __init__(self, hosts: list[dict[str, Any]], prefix: str, hasher: Callable[[str], int] | None = None) -> None:
        self.clients = RedisClients(hosts, hasher)
        self.prefix = prefix

    @classmethod
    def for_layer(cls, layer: Any) -> RedisStore:
        """The store for a ``channels_redis`` layer (groups on the hosts the layer puts them on)."""
        hasher = getattr(layer, "consistent_hash", None)
        return cls(layer_hosts(layer), str(conf.get("REDIS_PREFIX")), hasher if callable(hasher) else None)

    def loop_clients(self) -> list[aioredis.Redis]:
        """This store's Redis clients in the running event loop (to drop their idle connections)."""
        return self.clients.made()

    def keys(self, group: str) -> list[str]:
        """``[<p>:seq:<group>, <p>:hist:<group>]``."""
        return [f"{self.prefix}:seq:{group}", f"{self.prefix}:hist:{group}"]

    async def append(self, group: str, text: str, size: int, revision: Revision | None = None) -> tuple[int, int]:
        client = self.clients.get(self.clients.index(group))
        args: list[str | int] = [new_epoch(), text, int(time.time() * 1000), max(1, size), int(history_ttl() * 1000),
                int(sequence_ttl() * 1000), revision.tag if revision is not None else ""]
        for tag, new in (revision.rewrites.items() if revision is not None else ()):
            args += [tag, new or ""]
        seq, epoch = await client.eval(APPEND, 2, *self.keys(group), *args)
        return int(seq), int(epoch)

    async def redact(self, group: str, seq: int) -> bool:
        # (it may run twice: a redacted entry is redacted again)
        changed = await self.clients.retrying(self.clients.index(group), lambda client: client.eval(
            REDACT, 1, self.keys(group)[1], f"{seq}-0"))
        return bool(changed)

    async def read(self, group: str, after: int | None) -> Snapshot:
        start = "" if after is None else f"{after + 1}-0"
        args: list[str | int] = [*self.keys(group), new_epoch(), start, int(EMPTY_RECORD_TTL * 1000)]
        # (a second run finds the record the first one may have made: it may run twice)
        epoch, seq, raw = await self.clients.retrying(self.clients.index(group),
                                                      lambda client: client.eval(READ, 2, *args))
        entries = []
        for entry_id, fields in raw:
            values = dict(zip(fields[::2], fields[1::2], strict=False))
            entry_seq = int(entry_id.split(b"-")[0])
            entries.append((entry_seq, int(values[b"ts"]) / 1000, values[b"t"].decode()))
        return Snapshot(int(seq), int(epoch), entries)

    async def keep_alive(self, groups: list[str]) -> None:
        by_host: dict[int, list[str]] = {}
        for group in groups:
            by_host.setdefault(self.clients.index(group), []).append(f"{self.prefix}:seq:{group}")
        for index, keys in by_host.items():
            for i in range(0, len(keys), 1000):
                chunk = keys[i:i + 1000]
                await self.clients.retrying(index, lambda client: client.eval(
                    KEEP, len(chunk), *chunk, int(EMPTY_RECORD_TTL * 1000)))

    async def forget_empty(self, group: str) -> None:
        """Nothing: other processes may have members; the record's short TTL removes it (``keep_alive``)."""

    async def flush(self, group: str | None = None) -> None:
        if group is not None:
            await self.clients.get(self.clients.index(group)).delete(*self.keys(group))
            return
        for client in self.clients.all():
            for pattern in (f"{self.prefix}:seq:*", f"{self.prefix}:hist:*"):
                batch = [key async for key in client.scan_iter(match=pattern, count=500)]
                for i in range(0, len(batch), 500):
                    await client.delete(*batch[i:i + 500])

    async def groups(self) -> list[str]:
        """Groups that have a history record."""
        cut = len(self.prefix) + 5
        out = []
        for client in self.clients.all():
            out.extend([key.decode()[cut:] async for key in client.scan_iter(match=f"{self.prefix}:seq:*")])
        return out
