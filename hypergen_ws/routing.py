"""``autoconsumers()``: the websocket URL patterns of every ``@consumer``, for Channels' ``URLRouter``."""
from __future__ import annotations

from types import ModuleType
from typing import Any

from . import registry


def autoconsumers(*modules: ModuleType | str) -> list[Any]:
    """Return URL patterns for ``URLRouter``.

    Without arguments: the consumers of every installed app (their ``consumers`` and ``views`` modules are
    imported). With modules (objects or dotted paths): only the consumers defined in those modules.
    """
    if modules:
        from importlib import import_module

        names = set()
        for module in modules:
            mod = import_module(module) if isinstance(module, str) else module
            names.add(mod.__name__)
        consumers = [c for c in registry.all_consumers() if c.func.__module__ in names]
    else:
        registry.discover()
        from django.apps import apps

        app_names = {config.name for config in apps.get_app_configs()}
        consumers = [c for c in registry.all_consumers() if registry.in_apps(c.func.__module__, app_names)]
    registry.check_unique(consumers)
    return [c.urlpattern() for c in consumers]
