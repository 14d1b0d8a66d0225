"""Publishing after the database commits: the ``on_commit=`` argument of ``group_send`` and the other publishers.

A publish that waits for the commit is handed to Django's ``transaction.on_commit()``: it goes out when the
outermost ``atomic()`` block of its database commits, in the order it was published, and never when that block,
or the savepoint it was published in, rolls back. Outside a transaction it goes out at once. The frame is
validated and encoded at the call, so bad input fails where it was written, not at the commit.
``HYPERGEN_WS["PUBLISH_ON_COMMIT"]`` is the default for calls that do not say (docs/transactions.rst).

This module only decides *when*; the caller passes what to run. It needs no database connection to decide: a
publisher that never touched the database (a task worker, async code) does not open one.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from asgiref.sync import AsyncToSync, sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.transaction import TransactionManagementError

from ..core import conf
from ..core.logs import LOGGER_NAME, fields

SETTING = "PUBLISH_ON_COMMIT"
logger = logging.getLogger(LOGGER_NAME)


def wants_commit(on_commit: bool | None) -> bool:
    """Whether a publish waits for the commit: ``on_commit`` when given, else ``HYPERGEN_WS["PUBLISH_ON_COMMIT"]``.

    Anything but a bool (or ``None`` for the argument) raises ``TypeError`` for the argument and
    ``ImproperlyConfigured`` for the setting.
    """
    if on_commit is None:
        value = conf.get(SETTING)
        if not isinstance(value, bool):
            raise ImproperlyConfigured(
                f"HYPERGEN_WS['{SETTING}'] must be True or False, not {value!r}. It is the default of "
                "on_commit= for group_send() and consumer_command(); see docs/transactions.rst."
            )
        return value
    if not isinstance(on_commit, bool):
        raise TypeError(
            f"on_commit must be True, False or None (None: HYPERGEN_WS['{SETTING}']), not {on_commit!r}."
        )
    return on_commit


def database(using: str | None) -> str:
    """The alias of the database whose transaction a publish waits for (``DEFAULT_DB_ALIAS`` when None)."""
    if using is None:
        return DEFAULT_DB_ALIAS
    if not isinstance(using, str) or using not in connections.settings:
        known = ", ".join(repr(alias) for alias in connections.settings)
        raise ValueError(
            f"using={using!r} is not a database of settings.DATABASES; pass one of {known}, or leave it out for "
            f"{DEFAULT_DB_ALIAS!r}."
        )
    return using


def in_transaction(using: str) -> bool:
    """Whether this thread (or async context) has a transaction open on the database ``using``.

    An ``atomic()`` block counts; autocommit turned off by hand (``transaction.set_autocommit(False)``) raises
    ``TransactionManagementError``, as ``transaction.on_commit()`` does, because no commit can be waited for.
    """
    wrapper = connections[using]
    if wrapper.in_atomic_block:
        return True
    if wrapper.connection is not None and not wrapper.autocommit:
        raise TransactionManagementError(
            f"Cannot publish on_commit=True on database {using!r}: autocommit is off outside atomic(), so there is "
            "no commit to wait for. Use transaction.atomic(), or publish with on_commit=False after your commit()."
        )
    return False


def defer(send: Callable[[], object], *, on_commit: bool | None, using: str | None,
          check: Callable[[], object] | None = None) -> bool:
    """Leave ``send`` to the commit of the transaction open on ``using`` when the publish waits for one.

    Returns False when the caller must send now: waiting was not asked for (``on_commit``, or the setting), or no
    transaction is open. ``check`` runs before ``send`` is registered, so that input the publish would refuse
    fails at the call, not at the commit.
    """
    alias = database(using)
    if not wants_commit(on_commit):
        return False
    return _defer_here(send, alias, check)


async def adefer(send: Callable[[], object], *, on_commit: bool | None, using: str | None,
                 check: Callable[[], object] | None = None) -> bool:
    """Async variant of :func:`defer`.

    Django keeps a database connection, and so a transaction, per thread; ``atomic()`` cannot run in async code.
    Async code sees a transaction when it runs under a sync caller inside ``atomic()`` (through
    ``async_to_sync``): the decision and the registration then run in that caller's thread. Plain async code
    has no transaction of its own and sends at once, without a thread switch.
    """
    alias = database(using)
    if not wants_commit(on_commit):
        return False
    if in_transaction(alias):  # atomic() in async code, allowed by DJANGO_ALLOW_ASYNC_UNSAFE
        return _defer_here(send, alias, check)
    if not has_sync_caller():
        return False
    # thread_sensitive: runs in the sync thread that called async_to_sync(), where its transaction is open.
    deferred: bool = await sync_to_async(_defer_here, thread_sensitive=True)(send, alias, check)
    return deferred


def _defer_here(send: Callable[[], object], alias: str, check: Callable[[], object] | None) -> bool:
    if not in_transaction(alias):
        return False
    if check is not None:
        check()
    after_commit(send, alias)
    return True


def after_commit(send: Callable[[], object], using: str) -> None:
    """Run ``send`` when the transaction open on ``using`` in this thread commits; drop it when it rolls back.

    When ``send`` raises (the channel layer is down), the exception comes out of the ``atomic()`` block's exit,
    after the data was committed, and Django skips the callbacks registered after it, as for any
    ``transaction.on_commit()`` callback.
    """
    transaction.on_commit(send, using=using)


def has_sync_caller() -> bool:
    """Whether this async code runs under ``async_to_sync()`` called from a sync thread.

    Read from asgiref's ``AsyncToSync.executors.current`` (the executor of that sync thread). Should a later
    asgiref lack it, every ``adefer`` asks the sync thread instead (correct, one thread switch slower), and a
    warning says so once.
    """
    executors = getattr(AsyncToSync, "executors", None)
    if executors is None:
        global _warned
        if not _warned:
            _warned = True
            logger.warning("hypergen_ws: asgiref's AsyncToSync.executors is missing; agroup_send(on_commit=True) "
                           "and aconsumer_command(on_commit=True) ask the sync thread about its transaction on every "
                           "call.", extra=fields("fast_path_fallback", code="asgiref"))
        return True
    return getattr(executors, "current", None) is not None


_warned = False
