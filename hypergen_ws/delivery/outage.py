"""An outage of the channel layer (Redis), logged once per process: one WARNING when it starts, one INFO when it ends.

While Redis is down, frozen or restarting, everything that needs it fails: publishes (calls, the HTTP endpoint,
``group_send``, hooks), joins, heartbeats, receives. Each failure is counted here rather than logged on its own:
the first one of an outage logs a WARNING (``layer_unavailable``: what failed, and why); the first operation that
works again ends the outage with an INFO (``layer_available``: how long it lasted and how many operations failed,
by kind). Meanwhile the places that failed log their own lines at DEBUG (with the traceback).

Only errors that are an outage count: a timeout, a connection Redis refused or closed, Redis loading its data or a
read-only replica, at the root of the exception's chain. Anything else (a script error, a bad argument, a pool
that ran out of connections) is a bug or a limit: :func:`is_outage` says False and the caller logs it with its
traceback, as the error it is.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from ..core.logs import fields

__all__ = ["answered", "failed", "forget", "is_outage"]

logger = logging.getLogger("hypergen_ws")

#: redis-py's exceptions that mean Redis cannot be used now (matched by name: redis is reached only through
#: the backends), besides the built-in ``TimeoutError`` and ``OSError`` (``ConnectionError`` included).
_REDIS_OUTAGES = frozenset({"ConnectionError", "TimeoutError", "BusyLoadingError", "ReadOnlyError",
                            "MasterNotFoundError", "SlaveNotFoundError"})
#: redis-py's exceptions that are no outage, although they derive from one of those (a full pool).
_REDIS_LIMITS = frozenset({"MaxConnectionsError"})


class _Outage:
    __slots__ = ("started", "counts")

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.counts: Counter[str] = Counter()


_lock = threading.Lock()
_current: _Outage | None = None


def _root(exc: BaseException) -> BaseException:
    for _depth in range(10):
        cause = exc.__cause__
        if cause is None:
            break
        exc = cause
    return exc


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) says that the channel layer or Redis cannot be used now."""
    root = _root(exc)
    names = {cls.__name__ for cls in type(root).__mro__ if cls.__module__.startswith("redis")}
    if names & _REDIS_LIMITS:
        return False
    return bool(names & _REDIS_OUTAGES) or isinstance(root, (TimeoutError, OSError))


def failed(what: str, exc: BaseException) -> bool:
    """Count a failed ``what`` (``"publish"``, ``"join"``, ``"heartbeat"``, ...); True when ``exc`` is an outage.

    The first failure of an outage logs the WARNING; the caller logs its own line at DEBUG when this returns True,
    and as the error it is otherwise. Any thread.
    """
    global _current
    if not is_outage(exc):
        return False
    with _lock:
        outage = _current
        first = outage is None
        if outage is None:
            outage = _current = _Outage()
        outage.counts[what] += 1
    if first:
        logger.warning("The channel layer (Redis) is unavailable: a %s failed (%s: %s). Until it answers again, "
                       "publishes raise or answer 503, calls get 'unavailable' and new sockets are told "
                       "'unavailable'; what fails meanwhile is counted, and one INFO line follows when it is back.",
                       what, type(exc).__name__, exc, extra=fields("layer_unavailable", code=what))
    return True


def answered() -> None:
    """An operation on the channel layer or Redis worked: an outage, if one was going on, is over. Any thread."""
    global _current
    if _current is None:  # (the usual case, on every publish: no lock)
        return
    with _lock:
        outage: _Outage | None = _current
        _current = None
    if outage is None:  # another thread ended it meanwhile
        return
    total = sum(outage.counts.values())
    what = ", ".join(f"{kind} {count}" for kind, count in outage.counts.most_common())
    logger.info("The channel layer (Redis) answers again after %.1f s; %s operations failed meanwhile (%s).",
                time.monotonic() - outage.started, total, what, extra=fields("layer_available", code=total))


def forget() -> None:
    """Forget an outage under way without logging its end (tests, between them)."""
    global _current
    with _lock:
        _current = None
