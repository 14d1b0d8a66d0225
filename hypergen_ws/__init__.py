"""hypergen_ws: real-time websocket features for Django Channels, one function at a time."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "NO_PERM_REQUIRED",
    "aconsumer_command",
    "agroup_send",
    "autoconsumers",
    "command",
    "consumer",
    "consumer_command",
    "group_send",
]

if TYPE_CHECKING:
    from .commands import command
    from .decorators import consumer
    from .permissions import NO_PERM_REQUIRED
    from .publish import aconsumer_command, agroup_send, consumer_command, group_send
    from .routing import autoconsumers

_LAZY = {
    "command": "commands",
    "consumer": "decorators",
    "NO_PERM_REQUIRED": "permissions",
    "group_send": "publish",
    "agroup_send": "publish",
    "consumer_command": "publish",
    "aconsumer_command": "publish",
    "autoconsumers": "routing",
}


def __getattr__(name: str) -> Any:
    # Lazy, so that `import hypergen_ws` (e.g. from settings or INSTALLED_APPS) does not import Django models.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hypergen_ws' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"hypergen_ws.{module}"), name)
    globals()[name] = value
    return value
