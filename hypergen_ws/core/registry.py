"""The registry of every ``@consumer``, the discovery of installed apps' consumers, and which groups keep history.

The registry holds :class:`Registered` objects: what the consumer layer's ``Consumer`` is, as far as the layers
below it need to know.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from importlib import import_module
from importlib.util import find_spec
from typing import Any, Protocol

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured

from . import conf

DISCOVERED_MODULES = ("consumers", "views")


class Registered(Protocol):
    """A decorated consumer, as the registry sees it."""

    func: Callable[..., Any]
    history: int

    @property
    def label(self) -> str: ...

    @property
    def prefix(self) -> str: ...

    @property
    def explicit_app_label(self) -> str | None: ...


_consumers: dict[tuple[str, str], Registered] = {}
_discovered_apps: set[str] = set()
_lock = threading.RLock()


def register(spec: Registered) -> None:
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


def all_consumers() -> list[Registered]:
    """Every registered consumer, in definition order."""
    with _lock:
        return list(_consumers.values())


def snapshot() -> dict[tuple[str, str], Registered]:
    """A copy of the registry (tests restore it with :func:`restore`)."""
    with _lock:
        return dict(_consumers)


def restore(saved: dict[tuple[str, str], Registered]) -> None:
    """Put back a registry taken with :func:`snapshot`."""
    with _lock:
        _consumers.clear()
        _consumers.update(saved)
        _labels.clear()


def get(label: str) -> Registered:
    """The consumer with ``label`` (``"chat.send_message"``), or ``LookupError`` listing the known labels."""
    spec = _by_label().get(label)
    if spec is not None:
        return spec
    known = ", ".join(sorted(_by_label())) or "none"
    searched = " and ".join(DISCOVERED_MODULES)
    raise LookupError(
        f"No consumer is labelled {label!r}. Known consumers: {known}. Consumers are found in the {searched} "
        f"modules of the installed apps (e.g. {label.partition('.')[0]}.consumers); one defined in another module "
        "is found only once one of those imports it."
    )


def discover() -> None:
    """Import the ``consumers`` and ``views`` modules of every installed app."""
    names = []
    for config in apps.get_app_configs():
        for module in DISCOVERED_MODULES:
            name = f"{config.name}.{module}"
            if find_spec(name) is not None:
                import_module(name)
        names.append(config.name)
    with _lock:
        _discovered_apps.update(names)


def check_unique(consumers: list[Registered]) -> None:
    """Raise ``ImproperlyConfigured`` when two consumers would share a label (and so a route)."""
    seen: dict[str, Registered] = {}
    for spec in consumers:
        other = seen.get(spec.label)
        if other is not None and other is not spec:
            raise ImproperlyConfigured(
                f"Two consumers are labelled {spec.label!r} ({other!r} and {spec!r}) and would share the route "
                f"{spec.prefix!r}. Rename one of the functions."
            )
        seen[spec.label] = spec


# ---- which groups keep history ----------------------------------------------------------------------------
_KNOWN_LIMIT = 10_000
_known: OrderedDict[str, int] = OrderedDict()
_labels: dict[str, Registered] = {}
_labels_size = [-1]


def remember_group(group: str, size: int) -> None:
    """Record that ``group`` keeps ``size`` frames (0: none), e.g. when a consumer computes or joins it.

    When consumers with different sizes share a group, the largest wins. A group named after its consumer
    (``hgws.<label>...``) whose consumer declares that size is not recorded: its size is known from the label,
    and a room per URL kwarg must not cost memory after its last member left.
    """
    with _lock:
        if group not in _known and _label_size(group) == size:
            return
        _known[group] = max(size, _known.get(group, 0))
        _known.move_to_end(group)
        while len(_known) > _KNOWN_LIMIT:
            _known.popitem(last=False)


def forget_groups() -> None:
    """Forget the history sizes remembered for groups and consumers; for tests, between them
    (``hypergen_ws.testing.reset()``): a consumer a test defines may reuse a label with another size."""
    with _lock:
        _known.clear()
        _labels.clear()
        _labels_size[0] = -1


def _by_label() -> dict[str, Registered]:
    with _lock:
        if len(_consumers) != _labels_size[0] or not _labels and _consumers:
            labels: dict[str, Registered] = {}
            for spec in _consumers.values():
                try:
                    labels[spec.label] = spec
                except ImproperlyConfigured:  # an app label that cannot be resolved (yet)
                    continue
            _labels.clear()
            _labels.update(labels)
            _labels_size[0] = len(_consumers)
        return _labels


def declared_size(group: str) -> int:
    """The history size declared for ``group`` by its consumer (0 when none or unknown)."""
    size = _known.get(group)
    if size is not None:
        return size
    return _label_size(group)


def _label_size(group: str) -> int:
    """The history size of the consumer whose label a derived group name carries (0 when none)."""
    if group.startswith("hgws."):
        parts = group.split(".", 3)
    elif group.startswith("hgwsh."):
        parts = ["", *group[6:].split(".", 2)]
    else:
        return 0
    spec = _by_label().get(".".join(parts[1:3])) if len(parts) >= 3 else None
    return spec.history if spec is not None else 0


def history_size(group: str, history: bool | int | None) -> int:
    """How many frames to keep for a publish: the consumer's declaration, or the per-call override."""
    if history is None:
        return declared_size(group)
    if history is False:
        return 0
    if history is True:
        return declared_size(group) or int(conf.get("HISTORY_SIZE"))
    if isinstance(history, int) and history > 0:
        return history
    raise TypeError(f"history must be True, False, None or a positive int, not {history!r}.")
