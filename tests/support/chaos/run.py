"""One chaos run: start everything, publish and inject faults for a while, heal, drain, check.

``await chaos_run(seed=1, duration=60, log_dir=...)`` returns the checker's :class:`Report`. Everything is a real
process: a Redis master, its replica and a Sentinel; a daphne and a uvicorn server of ``tests.e2e.chaos_app``
finding the master through the Sentinel; a worker process publishing with ``group_send``. In this process: the
clients (each behind its own blackhole proxy: ``websockets`` ones that follow hypergen-ws.js, and ones built on
the Python client, ``hypergen_ws.client``), an HTTP publisher posting to ``hypergen_ws/publish/`` of either
server, and the clients that call their consumer (each call publishes to its group).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

from ..servers import REPO_ROOT, AsgiServer, RedisSentinel, RedisServer, redis_command, replication_info
from .checker import ClientLog, Fault, Report, check
from .clients import ChaosClient, Publish
from .pyclients import PyChaosClient
from .faults import KINDS, Cluster, inject
from .proxy import BlackholeProxy

APPLICATION, SETTINGS = "tests.e2e.chaos_app:application", "tests.e2e.chaos_settings"
PUBLISH_KEY = "chaos-publish-key-0123456789abcdef"  # tests/e2e/chaos_settings.py
GROUPS = ("feed/r0", "feed/r1", "room/r2")  # room/ has presence
INFRASTRUCTURE = [k for k in KINDS if k not in ("blackhole", "stalled_reader")]
CLIENT_FAULTS = ["blackhole", "stalled_reader"]


@contextlib.asynccontextmanager
async def phase(name: str, seconds: float) -> AsyncIterator[None]:
    """Bound one phase of the run: a phase that stalls ends the run with an error naming it, not a hang."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as exc:
        raise RuntimeError(f"chaos run: the phase '{name}' stalled (not done within {seconds:.0f} s); the logs "
                           "of every process are in the run's log directory") from exc


def _path(group: str) -> str:
    kind, room = group.split("/")
    return f"/ws/tests/chaos_{kind}/{room}/"


def _wait(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"chaos run: gave up waiting for {what} after {timeout} s")
        time.sleep(0.05)


#: The Sentinel declares the master down after this long: longer than a freeze or a restart of the run, so that
#: each fault is the one it says (a failover is a fault of its own, planned with SENTINEL FAILOVER).
DOWN_AFTER_MS = 6000


def _start_redis(log_dir: Path) -> tuple[RedisServer, RedisServer, RedisSentinel]:
    master = RedisServer(log_dir=log_dir / "redis-a")
    replica = RedisServer(log_dir=log_dir / "redis-b", extra_args=["--replicaof", "127.0.0.1", str(master.port)])
    _wait(lambda: "master_link_status:up" in replication_info(replica.port), 20, "the replica syncing")
    sentinel = RedisSentinel(master.port, log_dir=log_dir / "sentinel", down_after_ms=DOWN_AFTER_MS)
    _wait(lambda: str(replica.port).encode() in redis_command(
        sentinel.port, "SENTINEL", "replicas", sentinel.master_name), 30, "the sentinel finding the replica")
    return master, replica, sentinel


async def _http_publisher(servers: list[AsgiServer], stop: asyncio.Event, out: list[Publish],
                          interval: float) -> None:
    number = 0
    while not stop.is_set():
        group = GROUPS[number % len(GROUPS)]
        server = servers[number % len(servers)]
        number += 1
        kind, room = group.split("/")
        publish = Publish(f"http:{number}", group, "http", time.time())
        out.append(publish)
        body = json.dumps({"consumer": f"tests.chaos_{kind}", "kwargs": {"room": room},
                           "data": {"id": publish.id}}).encode()
        request = urllib.request.Request(f"{server.url}/hypergen_ws/publish/", data=body, headers={
            "Authorization": f"Bearer {PUBLISH_KEY}", "Content-Type": "application/json"})

        def post() -> None:
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    publish.acked = response.status == 200
            except urllib.error.HTTPError as exc:
                publish.acked, publish.error = False, f"HTTP {exc.code}"
            except OSError as exc:  # no answer: the outcome is unknown
                publish.error = type(exc).__name__
            publish.answered = time.time()

        await asyncio.to_thread(post)
        await asyncio.sleep(interval)


async def _worker(env: dict[str, str], log_dir: Path, stop: asyncio.Event, out: list[Publish]) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.support.chaos.worker", "worker", *GROUPS, cwd=REPO_ROOT, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(log_dir / "worker.log", "wb"))  # noqa: SIM115
    assert process.stdout is not None and process.stdin is not None

    async def read() -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            row = json.loads(line)
            out.append(Publish(row["id"], row["group"], "worker", row["sent"], row["acked"], row["answered"],
                               row.get("error", "")))

    reader = asyncio.get_running_loop().create_task(read())
    await stop.wait()
    process.stdin.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), 15)
    if process.returncode is None:
        process.kill()
    await reader


async def chaos_run(*, seed: int, duration: float, log_dir: Path, clients_per_group: int = 3,
                    python_clients_per_group: int = 1,
                    faults: list[str] | None = None, cycle: bool = False, drain: float = 30.0,
                    say=print) -> tuple[Report, list[Fault]]:  # type: ignore[no-untyped-def]
    """Run for ``duration`` seconds of faults and publishing; returns the report and the faults injected."""
    rng = random.Random(seed)
    say(f"chaos run: seed {seed}, {duration:.0f} s, logs in {log_dir}")
    kinds = faults or list(KINDS)
    master, replica, sentinel = await asyncio.to_thread(_start_redis, log_dir)
    env = {"REDIS_SENTINELS": f"127.0.0.1:{sentinel.port}", "REDIS_MASTER_NAME": sentinel.master_name}
    servers = [AsgiServer(APPLICATION, server=kind, settings=SETTINGS, env=env, db=log_dir / "chaos.sqlite3",
                          log_dir=log_dir / kind, start=False) for kind in ("daphne", "uvicorn")]
    clients: list[ChaosClient | PyChaosClient] = []
    publishes: list[Publish] = []
    record: list[Fault] = []
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        async with phase("starting the servers", 120):
            await asyncio.gather(*(asyncio.to_thread(s.start) for s in servers))
        ports = [s.port for s in servers]
        for g, group in enumerate(GROUPS):
            for n in range(clients_per_group):
                proxy = await BlackholeProxy(ports[0]).start()
                client = ChaosClient(f"c{g}.{n}", group, _path(group), ports[(g + n) % 2:] + ports[:(g + n) % 2],
                                     proxy, caller=n == 0)
                clients.append(client.start())
            for n in range(python_clients_per_group):  # hypergen_ws.client, the first one calling
                proxy = await BlackholeProxy(ports[0]).start()
                clients.append(PyChaosClient(f"p{g}.{n}", group, _path(group), ports[n % 2:] + ports[:n % 2], proxy,
                                             servers[0].url, caller=n == 0).start())
        deadline = time.monotonic() + 30
        while not all(c.synced for c in clients):
            if time.monotonic() > deadline:
                raise RuntimeError(f"chaos run: not every client connected within 30 s; logs in {log_dir}")
            await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        tasks.append(loop.create_task(_worker(servers[0].env, log_dir, stop, publishes)))
        tasks.append(loop.create_task(_http_publisher(servers, stop, publishes, 0.05)))
        cluster = Cluster(servers, [master, replica], sentinel, clients)
        until = time.time() + duration
        infra = [k for k in kinds if k in INFRASTRUCTURE]
        client_faults = [k for k in kinds if k in CLIENT_FAULTS]
        async with phase("publishing and injecting faults", duration + 180):
            await asyncio.gather(
                inject(cluster, rng, infra, until, cycle, record) if infra else asyncio.sleep(duration),
                inject(cluster, random.Random(seed + 1), client_faults, until, cycle, record, (2.0, 6.0))
                if client_faults else asyncio.sleep(0))
        stop.set()
        stopped = time.time()
        for client in clients:
            client.caller = False
        async with phase("stopping the publishers", 60):
            await asyncio.gather(*tasks)
        async with phase("draining", drain + 30):
            await _drain(clients, publishes, drain)
        async with phase("stopping the clients", 60):
            for client in clients:
                await client.stop()
        everything = publishes + [p for c in clients for p in c.publishes]
        _dump(log_dir, clients, everything, record)
        report = check([ClientLog(c.name, c.group, c.events) for c in clients], everything, record, until=stopped)
        return report, record
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        for client in clients:
            await client.stop()
            await client.proxy.close()
        for process in (*servers, sentinel, replica, master):
            await asyncio.to_thread(process.stop, 5)


def _dump(log_dir: Path, clients: list[ChaosClient | PyChaosClient], publishes: list[Publish],
          faults: list[Fault]) -> None:
    """Write what every client saw (``clients/<name>.jsonl``, one event a line), what every publisher was told
    (``publishes.jsonl``) and the faults (``faults.jsonl``), so that a broken promise can be read event by event."""
    (log_dir / "clients").mkdir(parents=True, exist_ok=True)
    for client in clients:
        with open(log_dir / "clients" / f"{client.name}.jsonl", "w") as out:
            out.writelines(json.dumps(vars(e)) + "\n" for e in client.events)
    for name, rows in (("publishes", publishes), ("faults", faults)):
        with open(log_dir / f"{name}.jsonl", "w") as out:
            out.writelines(json.dumps(vars(r)) + "\n" for r in rows)


async def _drain(clients: list[ChaosClient | PyChaosClient], publishes: list[Publish], seconds: float) -> None:
    """Wait until every client follows its group and nothing more arrives for two seconds (at most ``seconds``)."""
    deadline, quiet_since, last = time.monotonic() + seconds, time.monotonic(), -1
    while time.monotonic() < deadline:
        count = sum(len(c.events) for c in clients)
        if count != last:
            last, quiet_since = count, time.monotonic()
        elif all(c.synced for c in clients) and time.monotonic() - quiet_since > 2:
            return
        await asyncio.sleep(0.1)
