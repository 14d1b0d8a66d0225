"""``command()``: queue a command for the browser from inside a consumer call."""
from __future__ import annotations

import contextvars
from typing import Any

_current: contextvars.ContextVar[list[list[Any]] | None] = contextvars.ContextVar("hypergen_ws_commands", default=None)


def command(name: str, *args: Any) -> None:
    """Queue the command ``[name, *args]``; it is sent when the consumer function returns.

    Only valid while a ``@consumer`` function runs. To send commands from anywhere else (a view, a task, a
    thread) use ``consumer_command(group, [[name, *args]])``.
    """
    commands = _current.get()
    if commands is None:
        raise RuntimeError(
            f"command({name!r}, ...) was called outside a @consumer function call. From views, tasks or threads "
            "use consumer_command(group_name, [[name, *args]]) (or `await aconsumer_command(...)` in async code)."
        )
    if not isinstance(name, str) or not name:
        raise TypeError(f"A command name must be a non-empty str, like 'hypergen.append', not {name!r}.")
    commands.append([name, *args])


def collecting() -> tuple[list[list[Any]], contextvars.Token[list[list[Any]] | None]]:
    """Start collecting commands for one call; returns the list and the token to reset."""
    commands: list[list[Any]] = []
    return commands, _current.set(commands)


def stop_collecting(token: contextvars.Token[list[list[Any]] | None]) -> None:
    """Stop collecting commands (pairs with ``collecting``)."""
    _current.reset(token)
