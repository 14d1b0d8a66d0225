"""Real servers for tests: a ``redis-server`` and ASGI processes (daphne or uvicorn).

Both are plain context managers that know nothing about pytest, so benchmarks and scripts can use them too;
``tests/support/fixtures.py`` wraps them in fixtures. Every server listens on ``127.0.0.1`` only, on a free port,
and writes its output to a log file whose path is part of every error message.
"""
from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Literal, Self

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_APPLICATION = "testproject.asgi:application"
DEFAULT_SETTINGS = "testproject.settings"
#: ``HYPERGEN_WS["MAX_MESSAGE_SIZE"]``'s default: the servers read no larger websocket message.
MAX_MESSAGE_SIZE = 1024 * 1024

ServerKind = Literal["daphne", "uvicorn"]


class ServerStartError(RuntimeError):
    """A server process did not come up; the message names its log file and ends with its last lines."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 40) -> str:
    """Return the last ``lines`` lines of a log file, or a note that it is missing."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


class _Process:
    """A child process in its own session, with its output in a log file; shared by the servers below."""

    name = "server"

    def __init__(self, log_dir: Path | str | None) -> None:
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="hypergen_ws-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path = self.log_dir / f"{self.name}.log"
        self._log: IO[bytes] | None = None
        self._starts = 0

    # -- process handling -------------------------------------------------------------------------------------

    def _spawn(self, args: list[str], env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        self._starts += 1
        self.log_path = self.log_dir / f"{self.name}-{self._starts}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap()
        self._log.write(f"$ {' '.join(args)}\n".encode())
        self._log.flush()
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self.process is not None and self.process.poll() is None

    def _signal(self, sig: int) -> None:
        if self.running:
            assert self.process is not None
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """SIGKILL the process (a crash: no cleanup, no goodbye to clients) and wait for it."""
        self._signal(signal.SIGKILL)
        self._reap(5)

    def freeze(self) -> None:
        """SIGSTOP the process: it holds its connections open and answers nothing (a hung server)."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT a frozen process."""
        self._signal(signal.SIGCONT)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the process, wait up to ``timeout`` seconds, then SIGKILL it."""
        self._signal(signal.SIGTERM)
        try:
            self._reap(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def _reap(self, timeout: float) -> None:
        if self.process is not None:
            self.process.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _failure(self, what: str) -> ServerStartError:
        code = self.process.poll() if self.process else None
        state = f"exited with {code}" if code is not None else "still running"
        return ServerStartError(
            f"{what} ({self.name} {state}). Log: {self.log_path}\n--- last lines ---\n{log_tail(self.log_path)}"
        )

    def describe(self) -> str:
        """One line for failure reports: what it is, where it listens, where its log is."""
        return f"{self.name} {self!r}: log {self.log_path}"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class RedisServer(_Process):
    """A throwaway ``redis-server`` on 127.0.0.1 with no persistence (``--save "" --appendonly no``).

    ``with RedisServer() as redis: ...`` starts it and waits until it answers ``PING``. ``restart()`` comes back
    on the same port with an empty data set; ``kill()`` simulates a crash.
    """

    name = "redis"

    def __init__(self, port: int | None = None, *, executable: str = "redis-server",
                 log_dir: Path | str | None = None, start: bool = True, timeout: float = 15,
                 extra_args: Sequence[str] = ()) -> None:
        super().__init__(log_dir)
        self.executable = shutil.which(executable) or executable
        #: More command-line options, e.g. ``["--replicaof", "127.0.0.1", "6379"]`` for a replica.
        self.extra_args = list(extra_args)
        self.port = port or free_port()
        self._fixed_port = port is not None
        self.timeout = timeout
        if start:
            self.start()

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``, ready for ``REDIS_URL`` or ``channels_redis`` hosts."""
        return f"redis://127.0.0.1:{self.port}/0"

    def __repr__(self) -> str:
        return f"<RedisServer {self.url} {'running' if self.running else 'stopped'}>"

    def start(self) -> None:
        """Start the server (on a new free port if the chosen one was taken meanwhile) and wait for PING."""
        for attempt in range(3):
            data_dir = self.log_dir / "data"
            data_dir.mkdir(exist_ok=True)
            self._spawn([
                self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(data_dir), "--daemonize", "no", "--protected-mode", "no",
                *self.extra_args,
            ])
            try:
                self._wait_ready()
                return
            except ServerStartError:
                self.kill()
                if self._fixed_port or attempt == 2 or "Address already in use" not in log_tail(self.log_path):
                    raise
                self.port = free_port()

    def restart(self) -> None:
        """Stop and start again on the same port; every key is gone afterwards."""
        self.stop()
        self.start()

    def ping(self, timeout: float = 1.0) -> bool:
        """Send ``PING`` over a raw socket; True when the answer is ``+PONG``."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise self._failure(f"redis-server did not start on port {self.port}")
            if self.ping():
                return
            time.sleep(0.05)
        raise self._failure(f"redis-server did not answer PING on port {self.port} within {self.timeout}s")


class RedisSentinel(_Process):
    """A Redis Sentinel on 127.0.0.1 that monitors one master as ``master_name``, with quick failure detection.

    Runs ``redis-sentinel`` when it is installed, else ``redis-server --sentinel`` (the same program). One sentinel
    with quorum 1 is enough to fail over: it is its own majority. ``down_after_ms`` is how long the master must be
    unreachable before the sentinel fails over to a replica.
    """

    name = "sentinel"

    def __init__(self, master_port: int, *, master_name: str = "hgws", down_after_ms: int = 1000,
                 log_dir: Path | str | None = None, timeout: float = 15) -> None:
        super().__init__(log_dir)
        self.master_name = master_name
        self.port = free_port()
        self.timeout = timeout
        self.config = self.log_dir / f"sentinel-{self.port}.conf"  # the sentinel rewrites it: a file of its own
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\n"
            f"dir {self.log_dir}\n"
            f"sentinel monitor {master_name} 127.0.0.1 {master_port} 1\n"
            f"sentinel down-after-milliseconds {master_name} {down_after_ms}\n"
            f"sentinel failover-timeout {master_name} 10000\n"
            f"sentinel parallel-syncs {master_name} 1\n"
        )
        sentinel = shutil.which("redis-sentinel")
        self.command = [sentinel, str(self.config)] if sentinel else [
            shutil.which("redis-server") or "redis-server", str(self.config), "--sentinel"]
        self._spawn(self.command)
        deadline = time.monotonic() + timeout
        while not self.ping():
            if not self.running or time.monotonic() > deadline:
                raise self._failure(f"redis sentinel did not answer PING on port {self.port}")
            time.sleep(0.05)

    def __repr__(self) -> str:
        return f"<RedisSentinel 127.0.0.1:{self.port} {self.master_name} {'running' if self.running else 'stopped'}>"

    def ping(self, timeout: float = 1.0) -> bool:
        """Send ``PING``; True when the answer is ``+PONG``."""
        return redis_command(self.port, "PING", timeout=timeout).startswith(b"+PONG")

    def master_port(self) -> int | None:
        """The port of the master the sentinel names now (``SENTINEL get-master-addr-by-name``)."""
        reply = redis_command(self.port, "SENTINEL", "get-master-addr-by-name", self.master_name)
        lines = reply.split(b"\r\n")
        return int(lines[4]) if len(lines) > 4 and lines[4].isdigit() else None


def redis_command(port: int, *args: str, timeout: float = 1.0) -> bytes:
    """One Redis command over a raw socket, its raw reply (b"" when the server cannot be reached)."""
    payload = f"*{len(args)}\r\n".encode() + b"".join(f"${len(a)}\r\n{a}\r\n".encode() for a in args)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(payload)
            return sock.recv(4096)
    except OSError:
        return b""


def replication_info(port: int) -> str:
    """``INFO replication`` of the redis-server on ``port`` (empty when it cannot be reached)."""
    return redis_command(port, "INFO", "replication").decode(errors="replace")


class AsgiServer(_Process):
    """An ASGI application served by daphne or uvicorn in a child process on 127.0.0.1.

    ``application`` is an import path (``module:attribute``), by default the test project. ``env`` overrides the
    environment of the child; ``redis_url`` and ``db`` are shortcuts for ``REDIS_URL`` and ``HYPERGEN_WS_DB``
    (a SQLite file several processes can share); when not given, they are removed from the inherited environment.
    The child runs from the repository root with it on
    ``PYTHONPATH`` and the current interpreter. ``start()`` waits until an HTTP ``GET /`` gets any answer.
    """

    def __init__(self, application: str = DEFAULT_APPLICATION, *, server: ServerKind = "daphne",
                 port: int | None = None, env: Mapping[str, str] | None = None, redis_url: str | None = None,
                 db: Path | str | None = None, settings: str = DEFAULT_SETTINGS,
                 log_dir: Path | str | None = None, uvicorn_ws: str = "websockets-sansio",
                 server_args: Sequence[str] = (), start: bool = True, timeout: float = 30) -> None:
        if server not in ("daphne", "uvicorn"):
            raise ValueError(f"server must be 'daphne' or 'uvicorn', not {server!r}")
        self.name = server
        super().__init__(log_dir)
        self.application = application
        self.server = server
        self.port = port or free_port()
        self.uvicorn_ws = uvicorn_ws
        #: More command-line options of the server, after the documented ones (a later option wins).
        self.server_args = list(server_args)
        self.timeout = timeout
        self.env = self._child_env(env or {}, redis_url, db, settings)
        if start:
            self.start()

    @staticmethod
    def _child_env(overrides: Mapping[str, str], redis_url: str | None, db: Path | str | None,
                   settings: str) -> dict[str, str]:
        env = dict(os.environ)
        env["DJANGO_SETTINGS_MODULE"] = settings
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        # Nothing leaks in from the developer's shell: no URL means the in-memory layer, no db the default file.
        env.pop("REDIS_URL", None)
        env.pop("HYPERGEN_WS_DB", None)
        if redis_url is not None:
            env["REDIS_URL"] = redis_url
        if db is not None:
            env["HYPERGEN_WS_DB"] = str(db)
        env.update(overrides)
        return env

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT`` (no trailing slash): append a consumer's ``reverse()``."""
        return f"ws://127.0.0.1:{self.port}"

    def __repr__(self) -> str:
        return f"<AsgiServer {self.server} {self.application} {self.url} {'running' if self.running else 'stopped'}>"

    def command(self) -> list[str]:
        """The command line that serves the application, started the way docs/security.rst says: websocket
        messages limited to ``MAX_MESSAGE_SIZE``'s default (1 MiB; daphne's own default), then ``server_args``."""
        if self.server == "daphne":
            return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), *self.server_args,
                    self.application]
        return [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(self.port),
                "--ws", self.uvicorn_ws, "--lifespan", "off", "--ws-max-size", str(MAX_MESSAGE_SIZE),
                *self.server_args, self.application]

    def start(self) -> None:
        """Start the process and wait until it answers HTTP; raises ``ServerStartError`` naming the log."""
        self._spawn(self.command(), env=self.env, cwd=REPO_ROOT)
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise

    def restart(self) -> None:
        """Stop (SIGTERM) and start again on the same port, with the same environment."""
        self.stop()
        self.start()

    def get(self, path: str = "/", timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
        """A plain HTTP GET against the server: ``(status, headers, body)``; redirects are not followed."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Host": "127.0.0.1"})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise self._failure(f"{self.server} serving {self.application} exited during start-up")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                self.get("/", timeout=5)
                return
            except OSError:  # includes http.client errors on a half-started server
                time.sleep(0.1)
            except http.client.HTTPException:
                time.sleep(0.1)
        raise self._failure(f"{self.server} did not answer GET / on port {self.port} within {self.timeout}s")
