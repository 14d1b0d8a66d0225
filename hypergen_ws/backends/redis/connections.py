"""Sockets per user across server processes: ``MAX_CONNECTIONS_PER_USER`` on Redis (docs/security.rst).

Keys on the layer's first host, next to the heartbeats (``<p>`` is ``HYPERGEN_WS["REDIS_PREFIX"]``)::

    <p>:uconn:<user>      hash: process id -> the user's open sockets in that process (counted ones only);
                          a field goes with the process's last socket of the user, the key with the last field
    <p>:puser:<process>   set: the users with a field of that process (to clean up after it)

Each admission is one atomic script: it adds up the fields of the processes whose heartbeat is current (a killed
process stops counting when its heartbeat runs out, and the sweep removes its fields) and takes a place only
under the limit. Both keys expire :data:`CONNECTIONS_TTL` after the last admission or heartbeat renewal, so
nothing stays when every process is gone.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .scripts import CONN_ADMIT, CONN_REASSERT, CONN_RELEASE, CONN_SWEEP

if TYPE_CHECKING:  # the store imports channels_redis, an optional extra
    from .store import RedisStore

#: Seconds the keys of a process's counts live without a renewal (each process renews its own far more often).
CONNECTIONS_TTL = 3600


def _user_key(store: RedisStore, user: str) -> str:
    return f"{store.prefix}:uconn:{user}"


def _process_key(store: RedisStore, node_id: str) -> str:
    return f"{store.prefix}:puser:{node_id}"


async def admit(store: RedisStore, node_id: str, user: str, limit: int) -> tuple[bool, int]:
    """Take one of ``user``'s ``limit`` places for a socket of process ``node_id``: ``(admitted, the user's
    sockets across live processes, this one included when admitted)``."""
    p = store.prefix
    admitted, total = await store.clients.get(0).eval(
        CONN_ADMIT, 3, _user_key(store, user), _process_key(store, node_id), f"{p}:procs",
        node_id, limit, CONNECTIONS_TTL * 1000, user, repr(time.time()))
    return bool(int(admitted)), int(total)


async def release(store: RedisStore, node_id: str, user: str) -> int:
    """Give back a place of ``user`` in process ``node_id``; returns that process's sockets of the user left."""
    left = await store.clients.get(0).eval(CONN_RELEASE, 2, _user_key(store, user), _process_key(store, node_id),
                                           node_id, user)
    return int(left)


async def reassert(store: RedisStore, node_id: str, counts: dict[str, int]) -> None:
    """Replace every count of process ``node_id`` with ``counts`` (user key -> sockets) and renew their TTLs."""
    args: list[str | int] = [node_id, CONNECTIONS_TTL * 1000, f"{store.prefix}:uconn:"]
    for user, count in counts.items():
        if count > 0:
            args += [user, count]
    key = _process_key(store, node_id)
    await store.clients.retrying(0, lambda client: client.eval(CONN_REASSERT, 1, key, *args))


async def sweep_process(store: RedisStore, node_id: str) -> None:
    """Remove the counts of a dead process."""
    await store.clients.get(0).eval(CONN_SWEEP, 1, _process_key(store, node_id), node_id,
                                    f"{store.prefix}:uconn:")


async def counts(store: RedisStore, user: str) -> dict[str, int]:
    """The fields of ``user``: process id -> sockets (for tests and operators)."""
    raw = await store.clients.get(0).hgetall(_user_key(store, user))
    return {(k.decode() if isinstance(k, bytes) else str(k)): int(v) for k, v in raw.items()}
