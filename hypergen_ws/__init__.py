"""hypergen_ws: real-time websocket features for Django Channels, one function at a time."""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.core.checks import register as _register_check

from .installed import check_installed as _check_installed

__version__ = "0.1.0"

__all__ = [
    "Consumer",
    "HypergenConsumer",
    "NO_PERM_REQUIRED",
    "aconsumer_command",
    "agroup_send",
    "autoconsumers",
    "command",
    "consumer",
    "consumer_command",
    "group_send",
    "model_changes",
    # history, presence and groups (docs/history.rst, docs/presence.rst)
    "aclean_expired",
    "aflush_groups",
    "aflush_history",
    "aget_groups",
    "aget_history",
    "aget_position",
    "aget_presence",
    "aredact_history",
    "clean_expired",
    "flush_groups",
    "flush_history",
    "get_groups",
    "get_history",
    "get_position",
    "get_presence",
    "redact_history",
    # live authorization (docs/security.rst)
    "adisconnect_user",
    "arecheck_permissions",
    "disconnect_user",
    "recheck_permissions",
    # connection tokens for clients without a session (docs/clients.rst)
    "aissue_token",
    "issue_token",
    # traffic counters of every server process (docs/stats.rst)
    "aget_stats",
    "get_stats",
]

if TYPE_CHECKING:
    from .consumers import HypergenConsumer
    from .core.commands import command
    from .core.permissions import NO_PERM_REQUIRED
    from .changes import model_changes
    from .decorators import Consumer, consumer
    from .core.identity import aissue_token, issue_token
    from .features.access import adisconnect_user, arecheck_permissions, disconnect_user, recheck_permissions
    from .features.history import (aflush_history, aget_history, aget_position, aredact_history, flush_history,
                                   get_history, get_position, redact_history)
    from .features.operations import (aclean_expired, aflush_groups, aget_groups, clean_expired, flush_groups,
                                      get_groups)
    from .features.presence import aget_presence, get_presence
    from .publish import aconsumer_command, agroup_send, consumer_command, group_send
    from .routing import autoconsumers
    from .stats.cluster import aget_stats, get_stats

_LAZY = {
    "command": "core.commands",
    "consumer": "decorators",
    "Consumer": "decorators",
    "HypergenConsumer": "consumers",
    "NO_PERM_REQUIRED": "core.permissions",
    "group_send": "publish",
    "agroup_send": "publish",
    "consumer_command": "publish",
    "aconsumer_command": "publish",
    "autoconsumers": "routing",
    "model_changes": "changes",
    **dict.fromkeys(["get_history", "aget_history", "flush_history", "aflush_history", "get_position",
                     "aget_position", "redact_history", "aredact_history"], "features.history"),
    **dict.fromkeys(["get_presence", "aget_presence"], "features.presence"),
    **dict.fromkeys(["disconnect_user", "adisconnect_user", "recheck_permissions", "arecheck_permissions"],
                    "features.access"),
    **dict.fromkeys(["get_stats", "aget_stats"], "stats.cluster"),
    **dict.fromkeys(["issue_token", "aissue_token"], "core.identity"),
    **dict.fromkeys(["get_groups", "aget_groups", "flush_groups", "aflush_groups", "clean_expired",
                     "aclean_expired"], "features.operations"),
}


def __getattr__(name: str) -> Any:
    # Lazy, so that `import hypergen_ws` (e.g. from settings or INSTALLED_APPS) does not import Django models.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hypergen_ws' has no attribute {name!r}")
    _register_installed_check()
    value = getattr(import_module(f"hypergen_ws.{module}"), name)
    globals()[name] = value
    return value


def _register_installed_check() -> None:
    """Register ``hypergen_ws.E010`` (the package used without its app) once a public name is used: the app
    config registers the other checks, which never run when the app is not installed."""
    _register_check(_check_installed)
