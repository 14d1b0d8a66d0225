"""Processes, ports, machine facts and result files shared by every benchmark script."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
HOST = "127.0.0.1"  # loopback only, always

#: The variants the scripts compare, with the websocket path their clients use.
VARIANTS = {
    "channels": "/ws/bench/",  # (a) hand-written AsyncJsonWebsocketConsumer
    "websockets": "/",  # (b) plain websockets server with websockets.broadcast()
    "hypergen": "/ws/benchproject/fanout/",  # (c) hypergen_ws @consumer
    "channelbox": "/ws/box/",  # (d) ChannelBox (channel-box on Starlette), always on uvicorn
}
#: Variants that run on a server of their own whatever ``--server`` says.
FIXED_SERVER = {"websockets": "websockets", "channelbox": "uvicorn"}
#: Variants run only when asked for: (c) with the Prometheus metrics on (HYPERGEN_WS["METRICS"] = True; the
#: other hypergen variant runs with them off).
EXTRA_VARIANTS = {"hypergen-metrics": VARIANTS["hypergen"]}
ALL_VARIANTS = {**VARIANTS, **EXTRA_VARIANTS}
#: connect.py only, when asked for: the server's own floor, a bare ASGI application (benchmarks/bare_asgi.py) on
#: the same server as the Django variants. It does no fan-out, so fanout.py does not offer it.
CONNECT_VARIANTS = {**VARIANTS, "asgi": "/"}


def raise_nofile_limit() -> int:
    """Raise the soft open-files limit to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def run(coro) -> str:
    """Run ``coro`` on uvloop when it is installed, else on the default asyncio loop; return the loop's name."""
    try:
        import uvloop
    except ImportError:
        import asyncio

        asyncio.run(coro)
        return "asyncio"
    uvloop.run(coro)
    return "uvloop"


def free_port() -> int:
    """A TCP port that is free on the loopback interface right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    """Facts about the machine and the software, stored with every result."""
    cpu_model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        mem_gb = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        mem_gb = None
    dists = ["django", "channels", "channels_redis", "daphne", "uvicorn", "websockets", "uvloop", "twisted",
             "redis", "hypergen-ws"]
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "memory_gb": mem_gb,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "versions": {d: _version(d) for d in dists},
        "redis_server": _redis_server_version(),
        "hypergen_ws_source": _git_state(),
    }


def _git_state() -> str | None:
    """``<commit>`` of the repository, ``+ uncommitted changes`` when hypergen_ws/ differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_DIR, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "hypergen_ws"], cwd=REPO_DIR,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head} + uncommitted changes" if dirty else head or None


def _redis_server_version() -> str | None:
    exe = shutil.which("redis-server")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for part in out.split():
        if part.startswith("v="):
            return part[2:]
    return out.strip() or None


def subprocess_env(**extra: str) -> dict:
    """Environment for child processes: ``benchmarks/`` and the repository on ``sys.path``."""
    env = dict(os.environ)
    paths = [str(BENCH_DIR), str(REPO_DIR)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def process_cpu_seconds(ps) -> float:
    """CPU seconds of a ``psutil.Process``: nanosecond resolution from its Linux CPU clock when readable,
    else psutil's tick-resolution ``cpu_times()``."""
    try:
        return time.clock_gettime(((~ps.pid) << 3) | 2)  # CPUCLOCK_SCHED of the whole process (Linux)
    except (OSError, OverflowError, AttributeError):
        t = ps.cpu_times()
        return t.user + t.system


class ServerProcess:
    """A server started in a subprocess, with its log in a temporary file and psutil readings of its cost."""

    def __init__(self, name: str, cmd: list[str], port: int, env: dict | None = None) -> None:
        self.name, self.cmd, self.port = name, cmd, port
        self.log = tempfile.NamedTemporaryFile("w+b", prefix=f"bench-{name}-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(cmd, env=env or subprocess_env(), stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=str(BENCH_DIR))
        import psutil

        self.ps = psutil.Process(self.proc.pid)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the port accepts TCP connections; raise with the log tail if the process dies first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    time.sleep(0.3)  # let the server finish its start-up work after listen()
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not listen on {HOST}:{self.port} within {timeout}s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system, every thread, exited ones included) of the server and its children."""
        total = process_cpu_seconds(self.ps)
        for child in self.ps.children(recursive=True):
            try:
                total += process_cpu_seconds(child)
            except Exception:  # noqa: BLE001 - a child may vanish between listing and reading
                pass
        return total

    def rss(self) -> int:
        """Resident set size in bytes."""
        return self.ps.memory_info().rss

    def log_text(self) -> str:
        """Everything the process logged so far."""
        self.log.flush()
        try:
            return Path(self.log.name).read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate (then kill after 5 s) this process only, and remove its log."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass


def start_redis() -> ServerProcess:
    """A private redis-server on a free loopback port, no persistence; raise if redis-server is missing."""
    exe = shutil.which("redis-server")
    if not exe:
        raise RuntimeError("redis-server is not on PATH (apt-get install redis-server)")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    cmd = [exe, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--daemonize", "no",
           "--dir", workdir, "--protected-mode", "yes", "--loglevel", "warning", "--maxclients", "10000"]
    server = ServerProcess("redis", cmd, port)
    server.wait_ready(20)
    return server


def server_command(variant: str, server: str, port: int, baseline_loop: str = "uvloop",
                   uvicorn_ws: str = "auto") -> list[str]:
    """The command line that serves ``variant`` on ``port`` (``server`` is ignored by the websockets baseline).

    ``uvicorn_ws`` is uvicorn's ``--ws`` implementation (``auto`` picks ``websockets-sansio`` when the
    websockets package is installed, in uvicorn 0.54)."""
    if variant == "websockets":
        return [sys.executable, str(BENCH_DIR / "ws_broadcast_server.py"), "--host", HOST, "--port", str(port),
                "--loop", baseline_loop]
    app = "benchproject.asgi:application"
    if variant == "asgi":
        app = "bare_asgi:app"
    if variant == "channelbox":
        app, server = "channelbox_app:app", "uvicorn"
    if server == "uvicorn":
        return [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port), "--log-level",
                "warning", "--no-access-log", "--lifespan", "off", "--backlog", "4096", "--ws", uvicorn_ws]
    if server == "daphne":
        return [sys.executable, "-m", "daphne", "-b", HOST, "-p", str(port), "-v", "0", app]
    raise ValueError(f"unknown server {server!r}: use uvicorn or daphne")


def django_env(variant: str, layer: str, redis_url: str = "", capacity: int | None = None) -> dict:
    """Environment variables that ``benchproject.settings`` reads."""
    extra = {"DJANGO_SETTINGS_MODULE": "benchproject.settings", "BENCH_LAYER": layer, "BENCH_REDIS_URL": redis_url,
             "BENCH_HYPERGEN": "1" if variant.startswith("hypergen") else "0",
             "BENCH_METRICS": "1" if variant == "hypergen-metrics" else "0"}
    if capacity:
        extra["BENCH_CAPACITY"] = str(capacity)
    return subprocess_env(**extra)


def start_server(variant: str, server: str, layer: str, redis_url: str = "", capacity: int | None = None,
                 baseline_loop: str = "uvloop", uvicorn_ws: str = "auto", port: int | None = None) -> ServerProcess:
    """Start one server for ``variant`` on ``port`` (default: a free one) and wait until it listens."""
    port = port or free_port()
    cmd = server_command(variant, server, port, baseline_loop, uvicorn_ws)
    proc = ServerProcess(variant, cmd, port, django_env(variant, layer, redis_url, capacity))
    try:
        proc.wait_ready()
    except Exception:
        proc.stop()
        raise
    return proc


def hypergen_available() -> tuple[bool, str]:
    """Whether the benchmark project starts with ``hypergen_ws`` and its ``@consumer`` (checked in a child)."""
    code = ("import django; django.setup(); import hypergen_ws as h; assert callable(h.consumer); "
            "import benchproject.consumers")
    out = subprocess.run([sys.executable, "-c", code], env=django_env("hypergen", "memory"), capture_output=True,
                         text=True, cwd=str(BENCH_DIR), timeout=60)
    if out.returncode == 0:
        return True, ""
    return False, (out.stderr.strip().splitlines() or ["import failed"])[-1]


def save_results(name: str, data: dict) -> Path:
    """Write ``benchmarks/results/<name>.json`` and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    if "machine" in data:
        data["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path


def format_table(headers: list[str], rows: list[list]) -> str:
    """A plain-text table with right-aligned columns."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b`` or ``None`` when either is missing or ``b`` is zero."""
    if a is None or b is None or b == 0:
        return None
    return a / b
