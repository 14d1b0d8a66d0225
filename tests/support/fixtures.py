"""Pytest plugin with fixtures that start real services: redis-server, daphne/uvicorn processes, Chromium.

Load it from ``tests/conftest.py`` with ``pytest_plugins = ["tests.support.fixtures"]``.

Fixtures
    ``redis_server`` (function)        a fresh :class:`~tests.support.servers.RedisServer`
    ``redis_url`` (function)           its ``redis://127.0.0.1:PORT/0``
    ``redis_sentinel`` (function)      a master, a replica and a Redis Sentinel (:class:`SentinelSetup`)
    ``live_server_factory`` (function) ``factory(application=..., *, server="daphne"|"uvicorn", redis_url=None,
                                       db=None, env=None, port=None, migrate=None) -> AsgiServer``; every process
                                       is stopped after the test
    ``daphne_server`` (function)       the test project served by one daphne process
    ``browser`` (session)              headless ``/usr/bin/chromium`` (a proxy of Playwright's sync ``Browser``,
                                       see ``tests/support/browser.py`` for why it runs in a thread)
    ``page`` (function)                a page in a fresh browser context; screenshot in ``artifacts/`` on failure
    ``artifacts_dir`` (session)        ``artifacts/`` at the repository root, for screenshots and other output
    ``node_executable`` (function)     path of ``node``

Missing tools: a test that needs ``redis-server``, Chromium or ``node`` is skipped with the install command,
unless ``CI=true`` or ``HYPERGEN_WS_REQUIRE_SERVICES=1`` is set: then it fails (see :func:`require_tool`).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from tests.support.browser import CHROMIUM_PATH, PlaywrightThread
from tests.support.servers import (
    DEFAULT_APPLICATION,
    DEFAULT_SETTINGS,
    REPO_ROOT,
    AsgiServer,
    RedisSentinel,
    RedisServer,
    ServerKind,
    log_tail,
    redis_command,
    replication_info,
)


if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

REQUIRE_SERVICES_ENV = "HYPERGEN_WS_REQUIRE_SERVICES"
ARTIFACTS_DIR = Path(os.environ.get("HYPERGEN_WS_ARTIFACTS", REPO_ROOT / "artifacts")).resolve()

_SERVERS = pytest.StashKey[list[Any]]()
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
_CONSOLE = pytest.StashKey[list[str]]()


# -- missing tools --------------------------------------------------------------------------------------------


def services_required() -> bool:
    """True when missing services must fail the tests: ``CI=true`` or ``HYPERGEN_WS_REQUIRE_SERVICES=1``."""
    ci = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")
    return ci or os.environ.get(REQUIRE_SERVICES_ENV, "").strip() == "1"


def require_tool(name: str, install_hint: str, *, path: str | None = None) -> str:
    """Return the path of the executable ``name`` (or of ``path``, when given); skip or fail when it is missing.

    Skips the calling test with ``"<name> not found: <install_hint>"``; fails it instead when
    :func:`services_required` (``CI=true`` or ``HYPERGEN_WS_REQUIRE_SERVICES=1``), so CI never passes by skipping.
    """
    found = path if path and os.access(path, os.X_OK) else (None if path else shutil.which(name))
    if found:
        return found
    missing = f"{name} not found: {install_hint}"
    if services_required():
        pytest.fail(f"{missing} (a failure, not a skip, because CI=true or {REQUIRE_SERVICES_ENV}=1)", pytrace=False)
    pytest.skip(f"{missing} (skipped; set {REQUIRE_SERVICES_ENV}=1 to make this a failure)")


def require_module(module: str, install_hint: str) -> None:
    """Like :func:`require_tool`, for an importable Python module."""
    try:
        __import__(module)
    except ImportError:
        missing = f"Python module {module} not found: {install_hint}"
        if services_required():
            pytest.fail(f"{missing} (a failure because CI=true or {REQUIRE_SERVICES_ENV}=1)", pytrace=False)
        pytest.skip(f"{missing} (skipped; set {REQUIRE_SERVICES_ENV}=1 to make this a failure)")


# -- reporting ------------------------------------------------------------------------------------------------


def pytest_report_header(config: pytest.Config) -> list[str]:
    mode = "fail" if services_required() else f"skip (CI=true or {REQUIRE_SERVICES_ENV}=1 makes them fail)"
    return [f"artifacts (screenshots, logs): {ARTIFACTS_DIR}", f"tests whose service is missing: {mode}"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    if report.failed:
        for server in item.stash.get(_SERVERS, []):
            report.sections.append((f"{server.describe()} (last lines)", log_tail(server.log_path)))
        console = item.stash.get(_CONSOLE, [])
        if console:
            report.sections.append(("browser console", "\n".join(console[-100:])))
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if ARTIFACTS_DIR.is_dir() and any(ARTIFACTS_DIR.iterdir()):
        terminalreporter.write_line(f"artifacts (screenshots, logs): {ARTIFACTS_DIR}")


def _failed(item: pytest.Item) -> bool:
    return any(report.failed for report in item.stash.get(_REPORTS, {}).values())


def _slug(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[-150:]


# -- fixtures -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """``artifacts/`` at the repository root (``HYPERGEN_WS_ARTIFACTS`` overrides it); created on demand."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR


@pytest.fixture
def node_executable() -> str:
    """Path of ``node``; skips (or fails under CI) when Node.js is not installed."""
    return require_tool("node", "apt-get install nodejs")


@pytest.fixture
def redis_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer]:
    """A real ``redis-server`` on 127.0.0.1, empty, without persistence; stopped after the test."""
    require_tool("redis-server", "apt-get install redis-server")
    with RedisServer(log_dir=tmp_path / "redis") as server:
        request.node.stash.setdefault(_SERVERS, []).append(server)
        yield server


class SentinelSetup:
    """A Redis master, one replica of it and a Sentinel that monitors the master (``redis_sentinel``)."""

    def __init__(self, master: RedisServer, replica: RedisServer, sentinel: RedisSentinel) -> None:
        self.master, self.replica, self.sentinel = master, replica, sentinel

    @property
    def master_name(self) -> str:
        return self.sentinel.master_name

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        """The ``sentinels`` of a ``channels_redis`` host entry."""
        return [("127.0.0.1", self.sentinel.port)]

    def layer_config(self) -> dict[str, Any]:
        """``CHANNEL_LAYERS["default"]`` on ``RedisChannelLayer`` through the sentinel (as the test project's)."""
        return {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [{
            "sentinels": self.sentinels, "master_name": self.master_name, "socket_timeout": None,
            "sentinel_kwargs": {"socket_timeout": 1.0}}]}}


@pytest.fixture
def redis_sentinel(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SentinelSetup]:
    """A master and a replica (real ``redis-server`` processes) and a real Redis Sentinel watching them; it fails
    over a second after the master stops answering. Waits until the replica is in sync and the sentinel knows it."""
    require_tool("redis-server", "apt-get install redis-server")
    servers: list[Any] = request.node.stash.setdefault(_SERVERS, [])
    with RedisServer(log_dir=tmp_path / "master") as master:
        servers.append(master)
        with RedisServer(log_dir=tmp_path / "replica",
                         extra_args=["--replicaof", "127.0.0.1", str(master.port)]) as replica:
            servers.append(replica)
            _wait_until(lambda: "master_link_status:up" in replication_info(replica.port), 20,
                        f"the replica on {replica.port} syncing with the master on {master.port}")
            sentinel = RedisSentinel(master.port, log_dir=tmp_path / "sentinel")
            servers.append(sentinel)
            try:
                _wait_until(lambda: str(replica.port).encode() in redis_command(
                    sentinel.port, "SENTINEL", "replicas", sentinel.master_name), 30,
                    "the sentinel discovering the replica")
                yield SentinelSetup(master, replica, sentinel)
            finally:
                sentinel.stop()


def _wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout} s")
        time.sleep(0.05)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """``redis://127.0.0.1:PORT/0`` of the ``redis_server`` fixture."""
    return redis_server.url


class MigratedDatabase:
    """A SQLite file migrated once per session (``manage.py migrate``) and copied for each test that needs one."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._template: Path | None = None

    def template(self, settings: str) -> Path:
        if self._template is None:
            path = self.directory / "template.sqlite3"
            env = dict(os.environ, DJANGO_SETTINGS_MODULE=settings, HYPERGEN_WS_DB=str(path))
            env.pop("REDIS_URL", None)
            result = subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO_ROOT, env=env,
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
            )
            if result.returncode != 0:
                raise RuntimeError(f"manage.py migrate failed for the live servers:\n{result.stdout}{result.stderr}")
            self._template = path
        return self._template

    def copy(self, destination: Path, settings: str) -> Path:
        shutil.copyfile(self.template(settings), destination)
        return destination


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> MigratedDatabase:
    """Session-wide source of migrated SQLite files for the live servers (migrates on first use only)."""
    return MigratedDatabase(tmp_path_factory.mktemp("migrated-db"))


LiveServerFactory = Callable[..., AsgiServer]


@pytest.fixture
def live_server_factory(request: pytest.FixtureRequest, tmp_path: Path,
                        migrated_database: MigratedDatabase) -> Iterator[LiveServerFactory]:
    """Start ASGI server processes: ``server = live_server_factory(redis_url=redis_url)``.

    Arguments: ``application`` (import path, default the test project), ``server`` (``"daphne"`` or
    ``"uvicorn"``), ``redis_url`` (``REDIS_URL`` of the process; none means the in-memory layer), ``db`` (SQLite
    path; by default every test project process of one test shares one freshly migrated file, so a user or a
    session created through one process is seen by all), ``env`` (more environment), ``port``, ``migrate``
    (prepare the shared database; default: only for the test project), and the other ``AsgiServer`` options.
    Every process is stopped after the test; the logs of all of them are shown when the test fails.
    """
    shared_db = tmp_path / "live.sqlite3"
    started: list[AsgiServer] = []

    def factory(application: str = DEFAULT_APPLICATION, *, server: ServerKind = "daphne",
                redis_url: str | None = None, db: Path | str | None = None, env: dict[str, str] | None = None,
                port: int | None = None, migrate: bool | None = None, settings: str = DEFAULT_SETTINGS,
                **options: Any) -> AsgiServer:
        if migrate is None:
            migrate = application.startswith("testproject.") and db is None
        if migrate and not shared_db.exists():
            migrated_database.copy(shared_db, settings)
        log_dir = Path(tempfile.mkdtemp(prefix=f"{server}-", dir=tmp_path))
        instance = AsgiServer(application, server=server, port=port, env=env, redis_url=redis_url,
                              db=db if db is not None else shared_db, settings=settings, log_dir=log_dir,
                              start=False, **options)
        request.node.stash.setdefault(_SERVERS, []).append(instance)
        started.append(instance)
        instance.start()
        return instance

    yield factory
    for instance in reversed(started):
        instance.stop(timeout=5)


@pytest.fixture
def daphne_server(live_server_factory: LiveServerFactory) -> AsgiServer:
    """The test project (``testproject.asgi:application``) served by one daphne process, in-memory layer."""
    return live_server_factory()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium (``/usr/bin/chromium``) under Playwright; one per test session.

    A proxy of the sync API ``Browser`` (calls run in a Playwright thread, see ``tests/support/browser.py``):
    use it from plain ``def`` tests, with ``tests.support.browser.expect`` for assertions.
    """
    executable = os.environ.get("HYPERGEN_WS_CHROMIUM", CHROMIUM_PATH)
    require_tool("chromium", "apt-get install chromium", path=executable)
    require_module("playwright", "pip install -e '.[dev]' (never 'playwright install': Debian's chromium is used)")
    runner = PlaywrightThread()
    try:
        instance = runner.launch(executable)
    except BaseException:
        runner.close()
        raise
    yield cast("Browser", instance)
    runner.close()


@pytest.fixture
def page(request: pytest.FixtureRequest, browser: Browser, artifacts_dir: Path) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies); on failure a screenshot goes to ``artifacts/``.

    Console messages and page errors are collected and shown in the report of a failed test.
    """
    console: list[str] = request.node.stash.setdefault(_CONSOLE, [])
    context = browser.new_context()
    new_page = context.new_page()
    new_page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    new_page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    yield new_page
    try:
        if _failed(request.node):
            path = artifacts_dir / f"{_slug(request.node.nodeid)}-failed.png"
            new_page.screenshot(path=str(path), full_page=True)
            print(f"screenshot of the failed test: {path}")
    finally:
        context.close()
