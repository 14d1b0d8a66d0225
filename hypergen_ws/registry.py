"""The registry of every ``@consumer`` and the discovery of installed apps' consumers."""
from __future__ import annotations

import threading
from importlib import import_module
from importlib.util import find_spec
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from .decorators import Consumer

DISCOVERED_MODULES = ("consumers", "views")

_consumers: dict[tuple[str, str], Consumer] = {}
_discovered_apps: set[str] = set()
_lock = threading.RLock()


def register(spec: Consumer) -> None:
    """Record a new consumer; refuse one that arrives after its app's routes were built."""
    key = (spec.func.__module__, spec.func.__qualname__)
    with _lock:
        if _discovered_apps and in_apps(spec.func.__module__, _discovered_apps):
            raise ImproperlyConfigured(
                f"@consumer {key[0]}.{key[1]} was defined after autoconsumers() built the websocket routes, so it "
                f"has no route. Define it in a module that autoconsumers() imports (an app's "
                f"{' or '.join(m + '.py' for m in DISCOVERED_MODULES)}) or import its module from there."
            )
        _consumers[key] = spec


def in_apps(module: str, app_names: set[str]) -> bool:
    """Whether ``module`` belongs to one of the apps (given by their dotted names)."""
    return any(module == name or module.startswith(name + ".") for name in app_names)


def all_consumers() -> list[Consumer]:
    """Every registered consumer, in definition order."""
    with _lock:
        return list(_consumers.values())


def get(label: str) -> Consumer:
    """The consumer with ``label`` (``"chat.send_message"``), or ``LookupError`` listing the known labels."""
    for spec in all_consumers():
        if spec.label == label:
            return spec
    known = ", ".join(sorted(s.label for s in all_consumers())) or "none"
    raise LookupError(f"No consumer is labelled {label!r}. Known consumers: {known}.")


def discover() -> None:
    """Import the ``consumers`` and ``views`` modules of every installed app."""
    from django.apps import apps

    names = []
    for config in apps.get_app_configs():
        for module in DISCOVERED_MODULES:
            name = f"{config.name}.{module}"
            if find_spec(name) is not None:
                import_module(name)
        names.append(config.name)
    with _lock:
        _discovered_apps.update(names)


def check_unique(consumers: list[Consumer]) -> None:
    """Raise ``ImproperlyConfigured`` when two consumers would share a label (and so a route)."""
    seen: dict[str, Consumer] = {}
    for spec in consumers:
        other = seen.get(spec.label)
        if other is not None and other is not spec:
            raise ImproperlyConfigured(
                f"Two consumers are labelled {spec.label!r} ({other!r} and {spec!r}) and would share the route "
                f"{spec.prefix!r}. Rename one of the functions."
            )
        seen[spec.label] = spec
