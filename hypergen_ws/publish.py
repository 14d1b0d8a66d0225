"""Publishing to groups from anywhere: sync views, async code, threads, task workers, management commands.

A payload is validated and JSON-encoded once, at the call; what crosses the channel layer is that text, one
message per subscribed process (:mod:`hypergen_ws.delivery.publishing`). On the in-memory layer the text is handed
to the local hubs directly.
"""
from __future__ import annotations

from functools import partial
from typing import Any

from .backends.base import Revision
from .core import protocol, registry
from .core.groups import check_group_name
from .core.sync import refuse_in_loop
from .delivery import commit
from .delivery.publishing import apublish, publish_sync

__all__ = ["aconsumer_command", "agroup_send", "consumer_command", "group_send"]


def group_send(group: str, data: Any, *, history: bool | int | None = None, on_commit: bool | None = None,
               using: str | None = None) -> int | None:
    """Send ``data`` (JSON) to every client in ``group`` as ``{"type": "message", "data": data}``.

    Sync: call it from views, threads, task workers and management commands. In async code use
    ``await agroup_send(...)``. ``history`` (default: what the group's consumer declares with
    ``@consumer(history=N)``) keeps the frame for recovery and stamps it with a seq, which is returned
    (None without history); ``False`` sends it without, ``True`` or a size keeps it (docs/history.rst).

    ``on_commit=True`` inside ``transaction.atomic()`` sends after the commit of the database ``using`` (default:
    ``"default"``) and never after a rollback; it then returns None. Outside a transaction it sends at once.
    ``None`` follows ``HYPERGEN_WS["PUBLISH_ON_COMMIT"]`` (docs/transactions.rst).
    """
    refuse_in_loop("group_send", "agroup_send")
    return publish_frame(_group(group), protocol.message_frame(data), history=history, on_commit=on_commit,
                         using=using)


async def agroup_send(group: str, data: Any, *, history: bool | int | None = None, on_commit: bool | None = None,
                      using: str | None = None) -> int | None:
    """Async variant of ``group_send``.

    Async code sees a transaction only under a sync caller inside ``atomic()`` (through ``async_to_sync``);
    the publish then goes out from that caller's thread at the commit (docs/transactions.rst).
    """
    name, text = _group(group), protocol.message_frame(data)
    if await _aafter_commit(name, text, history, on_commit, using):
        return None
    return await apublish(name, text, history=history)


def consumer_command(group: str, commands: list[list[Any]], *, history: bool | int | None = None,
                     on_commit: bool | None = None, using: str | None = None) -> int | None:
    """Send commands (``[["hypergen.append", "messages", "<li>hi</li>"], ...]``) to every client in ``group``.

    ``history``, ``on_commit`` and ``using`` work as in ``group_send``.
    """
    refuse_in_loop("consumer_command", "aconsumer_command")
    return publish_frame(_group(group), protocol.commands_frame(protocol.check_commands(commands)),
                         history=history, on_commit=on_commit, using=using)


async def aconsumer_command(group: str, commands: list[list[Any]], *, history: bool | int | None = None,
                            on_commit: bool | None = None, using: str | None = None) -> int | None:
    """Async variant of ``consumer_command``."""
    name, text = _group(group), protocol.commands_frame(protocol.check_commands(commands))
    if await _aafter_commit(name, text, history, on_commit, using):
        return None
    return await apublish(name, text, history=history)


def publish_frame(group: str, text: str, *, history: bool | int | None, on_commit: bool | None,
                  using: str | None, revision: Revision | None = None) -> int | None:
    """``group_send`` and ``consumer_command`` of an encoded frame, from sync code: now, or at the commit when
    it waits for one (``delivery.commit``; then None). ``revision``: ``@model_changes`` (``backends.base``)."""
    if commit.defer(partial(publish_sync, group, text, history=history, revision=revision), on_commit=on_commit,
                    using=using, check=partial(registry.history_size, group, history)):
        return None
    return publish_sync(group, text, history=history, revision=revision)


async def _aafter_commit(group: str, text: str, history: bool | int | None, on_commit: bool | None,
                         using: str | None) -> bool:
    """Leave the publish to the commit when it waits for one (``delivery.commit``); return whether it did."""
    return await commit.adefer(partial(publish_sync, group, text, history=history), on_commit=on_commit,
                               using=using, check=partial(registry.history_size, group, history))


def _group(group: Any) -> str:
    if hasattr(group, "group_name") and callable(group.group_name):
        raise TypeError(
            f"Pass a group name, not the consumer {group!r}: for example {getattr(group, 'name', 'consumer')}"
            ".group_name(room_name='lobby')."
        )
    return check_group_name(group)
