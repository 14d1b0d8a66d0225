"""The engine port: one interface for the state the server processes share (docs/architecture.rst).

An engine holds a group's history (its :class:`~hypergen_ws.backends.base.Store`), who is present in a group,
how many sockets each user has open, and the process heartbeats with their sweep. There are two:
:class:`hypergen_ws.backends.memory.MemoryEngine` (one process: the in-memory layer, no layer, or a layer of
another kind) and :class:`hypergen_ws.backends.redis.engine.RedisEngine` (``channels_redis``: every process that
shares the Redis). ``backends.layers.get_engine`` chooses it once per channel layer, and each hub holds the one of
its layer; features and delivery use only this interface and never ask which kind it is.

A *process* is one hub's id: the id of its heartbeat on Redis, the hub's own id in memory
(``delivery.heartbeats.process_id``).
"""
from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Literal, Protocol

from .base import Store


class Presence(Protocol):
    """Who is present in a group: an entry per user and process, and a count per user across processes.

    An entry is the JSON text of ``{"id", "user_id", "username", "count", "since"}`` (``features.presence``).
    """

    async def join(self, group: str, process: str, key: str, entry: str) -> int:
        """Write ``process``'s entry of user ``key``; return the user's sockets in ``group`` across processes."""

    async def leave(self, group: str, process: str, key: str, entry: str, last_in_group: bool) -> int:
        """Update (``entry``) or remove (``""``) ``process``'s entry of ``key``; return the user's sockets left."""

    async def reassert(self, group: str, process: str, entries: dict[str, str]) -> None:
        """Replace ``process``'s entries of ``group`` (user key -> entry) and count every user again."""

    async def absent(self, group: str, keys: list[str]) -> list[str]:
        """Those of the users ``keys`` who have no socket left in ``group`` in any process."""

    async def entries(self, group: str, live: Collection[str]) -> list[tuple[str, str, dict[str, Any]]]:
        """The entries of ``group`` of live processes (and of those in ``live``, which count as live before their
        first heartbeat): ``(user key, process, entry)``."""

    async def sweep_process(self, process: str) -> list[tuple[str, dict[str, Any]]]:
        """Remove a dead process's entries; return ``(group, entry)`` of the users left without a socket."""

    async def flush(self) -> None:
        """Forget every entry and the group counts of every process; each process writes its own again
        (``flush_groups()``)."""


class ConnectionCounts(Protocol):
    """The sockets each user has open, per process (``MAX_CONNECTIONS_PER_USER``)."""

    async def admit(self, process: str, user: str, limit: int) -> tuple[bool, int]:
        """Take one of ``user``'s ``limit`` places for a socket of ``process``: ``(admitted, the user's sockets
        across live processes, this one included when admitted)``."""

    async def release(self, process: str, user: str) -> int:
        """Give back a place of ``user`` in ``process``; return that process's sockets of the user left."""

    async def reassert(self, process: str, counts: dict[str, int]) -> None:
        """Replace every count of ``process`` with ``counts`` (user key -> sockets)."""

    async def sweep_process(self, process: str) -> None:
        """Remove the counts of a dead process."""


class Processes(Protocol):
    """The server processes that share the engine, as their heartbeats tell (``delivery.heartbeats``)."""

    @property
    def beats(self) -> bool:
        """Whether processes must beat for the others to see them (False: one process, nobody to tell)."""

    async def live(self) -> list[str]:
        """The processes whose heartbeat is current."""

    async def group_counts(self, process: str) -> dict[str, int]:
        """The sockets per group ``process`` reported with its last heartbeat."""

    async def reports(self) -> list[tuple[str, float, str | None]]:
        """Every live process: ``(id, when its entries expire, its last report or None)``."""

    async def server_run_id(self) -> str | None:
        """An id of the servers that hold the shared state now (another one: a failover), or None."""

    async def read_instance(self) -> tuple[bytes | None, bytes | None]:
        """``(instance id, generation)``: a new instance means the shared state was lost, a new generation that
        ``flush_groups()`` ran."""

    async def declare_lost(self, known: bytes | None) -> bool:
        """Start every history in a new epoch and give the instance a new id (after a failover)."""

    async def beat(self, process: str, counts: dict[str, int], ttl: float, now: float, report: str | None,
                   channels: dict[str, str]) -> None:
        """Record that ``process`` lives until ``now + ttl``, with its sockets per group, its report and the layer
        channel it joined each group with."""

    async def claim_dead(self, now: float | None = None) -> list[str]:
        """The processes whose heartbeat ran out, each claimed by this caller."""

    async def group_channels(self, process: str) -> dict[str, str]:
        """The layer channel per group ``process`` reported with its last heartbeat."""

    async def forget(self, process: str) -> None:
        """Remove a dead process's group counts, report and channels."""


class LocalStore(Store, Protocol):
    """The history store of this process (the in-memory layer's, or no layer's), used from any thread."""

    #: Held while a publisher assigns a seq and queues the frame for every local hub (``delivery.publishing``).
    lock: Any
    #: Whether a group has a member in this process (its record is kept while it has).
    pinned: Callable[[str], bool]

    def append_sync(self, group: str, text: str, size: int, revision: Any = None) -> tuple[int, int]:
        """``append``, from any thread."""

    def flush_sync(self, group: str | None = None) -> None:
        """``flush``, from any thread."""

    def clean_expired(self) -> int:
        """Drop the entries older than ``HISTORY_TTL``; return how many went."""


class Engine(Protocol):
    """The state the server processes share: history, presence, connection counts, process heartbeats."""

    @property
    def kind(self) -> Literal["memory", "redis"]:
        """For logs and for running a coroutine from sync code (``backends.layers.run_sync``); never for a
        decision a feature makes."""

    @property
    def store(self) -> Store:
        """The groups' histories."""

    @property
    def presence(self) -> Presence:
        """Who is present in each group."""

    @property
    def connections(self) -> ConnectionCounts:
        """The sockets of each user."""

    @property
    def processes(self) -> Processes:
        """The server processes and their heartbeats."""
