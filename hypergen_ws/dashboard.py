"""The consumer of the live dashboard page (``dashboard/`` in :mod:`hypergen_ws.urls`; docs/operations.rst).

A ``@consumer`` like any other: staff only, listen-only. Its ``on_connect`` hook sends the new socket the current
stats (:func:`hypergen_ws.aget_stats`, summed over every live process on Redis) as its first frame; then, while a
dashboard is open in this process, a ticker publishes them every ``DASHBOARD_INTERVAL`` seconds with
``aconsumer_command`` to a group of this process's own. Every process with open dashboards updates its own; a
dashboard never gets two updates per tick, however many processes there are.

Each update is one command, ``["hypergen_ws.dashboard", <stats>]``, that the page registers with
``hypergen.commands.register``.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
from typing import Any
from weakref import WeakKeyDictionary

from django.http import HttpRequest

from .consumers import HypergenConsumer
from .core import conf
from .core.logs import fields
from .decorators import consumer
from .stats.cluster import HOST, aget_stats, combine, local_report
from .publish import aconsumer_command

__all__ = ["COMMAND", "dashboard", "is_staff"]

logger = logging.getLogger("hypergen_ws")

#: The command every update is sent as.
COMMAND = "hypergen_ws.dashboard"
_PROCESS = f"{os.getpid()}-{secrets.token_hex(4)}"


def is_staff(user: Any) -> bool:
    """Who may see the dashboard: active staff users."""
    return bool(getattr(user, "is_active", False) and getattr(user, "is_staff", False))


class _Ticker:
    """The dashboards open in one event loop, and the task that updates them."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.group = f"hgws-dashboard.{_PROCESS}.{id(loop):x}"
        self.open = 0
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(float(conf.get("DASHBOARD_INTERVAL")))
            try:
                await aconsumer_command(self.group, [[COMMAND, await current()]])
            except Exception:
                logger.warning("Updating the dashboard failed; trying again in %s s", conf.get("DASHBOARD_INTERVAL"),
                               exc_info=True, extra=fields("dashboard_update_failed", consumer=dashboard.label,
                                                           group=self.group))


async def current() -> dict[str, Any]:
    """What an update carries: :func:`hypergen_ws.aget_stats`; when that fails (Redis is down), this process's
    counters with ``"error"`` saying why."""
    global _failures
    try:
        result = await aget_stats()
    except Exception as exc:
        _failures += 1
        log = logger.warning if _failures == 1 or _failures % 60 == 0 else logger.debug
        log("Reading the stats for the dashboard failed (%s in a row)", _failures, exc_info=True,
            extra=fields("dashboard_stats_failed", consumer=dashboard.label, code=_failures))
        result = combine([(f"{HOST}:{os.getpid()}", 0.0, local_report())], "process")
        result["error"] = f"Reading the stats of every process failed ({type(exc).__name__}: {exc}); showing this " \
                          "process only. Is Redis reachable?"
        return result
    _failures = 0
    return result


_failures = 0
_tickers: WeakKeyDictionary[asyncio.AbstractEventLoop, _Ticker] = WeakKeyDictionary()


def _ticker() -> _Ticker:
    loop = asyncio.get_running_loop()
    ticker = _tickers.get(loop)
    if ticker is None:
        ticker = _tickers[loop] = _Ticker(loop)
    return ticker


def _group(instance: HypergenConsumer) -> str:
    return _ticker().group


@consumer(perm=is_staff, receive=False, group_name=_group)
def dashboard(consumer: HypergenConsumer, request: HttpRequest) -> None:
    """The live dashboard: listen-only; see the module docstring."""


@dashboard.on_connect
async def _opened(consumer: HypergenConsumer, request: HttpRequest) -> list[list[Any]]:
    ticker = _ticker()
    ticker.open += 1
    if ticker.task is None:
        ticker.task = asyncio.get_running_loop().create_task(ticker.run())
    return [[COMMAND, await current()]]


@dashboard.on_disconnect
async def _closed(consumer: HypergenConsumer, request: HttpRequest) -> None:
    ticker = _tickers.get(asyncio.get_running_loop())
    if ticker is None:
        return
    ticker.open -= 1
    if ticker.open <= 0 and ticker.task is not None:
        ticker.task.cancel()
        ticker.task = None
