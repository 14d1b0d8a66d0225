"""Publishing to groups from anywhere: sync views, async code, threads, task workers, management commands.

A payload is validated and JSON-encoded once, at the call; what crosses the channel layer is that text, one
message per subscribed process (:mod:`hypergen_ws.delivery.publishing`). On the in-memory layer the text is handed
to the local hubs directly.
"""
from __future__ import annotations

from typing import Any

from .core import protocol
from .core.groups import check_group_name
from .core.sync import refuse_in_loop
from .delivery.publishing import apublish, publish_sync

__all__ = ["aconsumer_command", "agroup_send", "consumer_command", "group_send"]


def group_send(group: str, data: Any, *, history: bool | int | None = None) -> int | None:
    """Send ``data`` (JSON) to every client in ``group`` as ``{"type": "message", "data": data}``.

    Sync: call it from views, threads, task workers and management commands. In async code use
    ``await agroup_send(...)``. ``history`` (default: what the group's consumer declares with
    ``@consumer(history=N)``) keeps the frame for recovery and stamps it with a seq, which is returned
    (None without history); ``False`` sends it without, ``True`` or a size keeps it (docs/history.rst).
    """
    refuse_in_loop("group_send", "agroup_send")
    return publish_sync(_group(group), protocol.message_frame(data), history=history)


async def agroup_send(group: str, data: Any, *, history: bool | int | None = None) -> int | None:
    """Async variant of ``group_send``."""
    return await apublish(_group(group), protocol.message_frame(data), history=history)


def consumer_command(group: str, commands: list[list[Any]], *, history: bool | int | None = None) -> int | None:
    """Send commands (``[["hypergen.append", "messages", "<li>hi</li>"], ...]``) to every client in ``group``.

    ``history`` works as in ``group_send``.
    """
    refuse_in_loop("consumer_command", "aconsumer_command")
    return publish_sync(_group(group), protocol.commands_frame(protocol.check_commands(commands)), history=history)


async def aconsumer_command(group: str, commands: list[list[Any]], *,
                            history: bool | int | None = None) -> int | None:
    """Async variant of ``consumer_command``."""
    return await apublish(_group(group), protocol.commands_frame(protocol.check_commands(commands)),
                          history=history)


def _group(group: Any) -> str:
    if hasattr(group, "group_name") and callable(group.group_name):
        raise TypeError(
            f"Pass a group name, not the consumer {group!r}: for example {getattr(group, 'name', 'consumer')}"
            ".group_name(room_name='lobby')."
        )
    return check_group_name(group)
