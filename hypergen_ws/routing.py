"""``autoconsumers()``: the websocket URL patterns of every ``@consumer``, for Channels' ``URLRouter``."""
from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import Any

from django.apps import apps

from .core import registry
from .decorators import all_consumers


def autoconsumers(*modules: ModuleType | str) -> list[Any]:
    """Return URL patterns for ``URLRouter``.

    Without arguments: the consumers of every installed app (their ``consumers`` and ``views`` modules are
    imported). With modules (objects or dotted paths): only the consumers defined in those modules.
    """
    if modules:
        names = set()
        for module in modules:
            mod = import_module(module) if isinstance(module, str) else module
            names.add(mod.__name__)
        consumers = [c for c in all_consumers() if c.func.__module__ in names]
    else:
        registry.discover()
        app_names = {config.name for config in apps.get_app_configs()}
        consumers = [c for c in all_consumers() if registry.in_apps(c.func.__module__, app_names)]
    registry.check_unique(list(consumers))
    return [c.urlpattern() for c in consumers]
