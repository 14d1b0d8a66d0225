"""The features layer: one module per optional behaviour of a connection.

This is the one place that names them. Each feature module declares the ``@consumer`` options it reads, with
their defaults (``OPTIONS``), what the consumer exposes about it while it is off (``EXPOSES``), and a
``configure(options)`` that validates its options and returns the feature, or None when it is off. ``@consumer``
forwards every option it does not know itself to :func:`select`, once; so adding an option, or a feature, touches
only its module (and the docs): see docs/architecture.rst, "Adding a feature".
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.binding import Binder
from . import access, connlimit, expiry, history, hooks, hypergen, membership, presence, ratelimit, raw, tokens
from .base import Feature, Option, Options
from .hooks import Hook
from .presence import aget_presence, get_presence


class FeatureModule(Protocol):
    """What a feature module offers (see the module docstring)."""

    OPTIONS: dict[str, Option]
    EXPOSES: dict[str, Any]

    def configure(self, options: Options) -> Feature | None: ...


#: Every feature module; the order is the order their hooks run in.
FEATURES: tuple[FeatureModule, ...] = (
    connlimit,   # refuses a socket over MAX_CONNECTIONS_PER_USER (across processes on Redis)
    access,      # closes a socket when its user may no longer keep it
    history,     # catch up first: sync/replay go ahead of everything else
    presence,    # then the presence list and the join frame
    expiry,
    hooks,       # on_connect's initial state is pushed in front of the queue
    ratelimit,   # takes a token for every frame, before anything decodes it
    tokens,      # token sockets: the origins a consumer allows, a new token before the old one expires
    raw,
    hypergen,    # Hypergen's client: decodes its calls, translates what the socket is sent
    membership,
)

#: Every feature option of ``@consumer``, in feature order.
OPTIONS: dict[str, Option] = {name: option for module in FEATURES for name, option in module.OPTIONS.items()}


@dataclass(frozen=True, slots=True)
class Selection:
    """The features a ``@consumer`` uses, in hook order, and what it exposes about them (``Consumer.history``,
    ``.presence_enabled``, ``.expires``, ``.frames``, ``.protocol``)."""

    features: tuple[Feature, ...]
    exposes: dict[str, Any]


def check_names(given: Mapping[str, Any], caller: str = "consumer") -> None:
    """Raise ``TypeError`` for an option no feature declares, naming the known ones."""
    for name in given:
        if name not in OPTIONS:
            raise TypeError(f"{caller}() got an unexpected keyword argument {name!r}; the options of the features "
                            f"are {', '.join(OPTIONS)}.")


def select(given: Mapping[str, Any], *, receive: bool, binder: Binder, where: str) -> Selection:
    """The features the options ``given`` switch on (raises ``TypeError`` for an unknown option and
    ``ImproperlyConfigured`` for a bad value)."""
    check_names(given)
    options = Options({**{name: option.default for name, option in OPTIONS.items()}, **given},
                      receive=receive, binder=binder, where=where)
    chosen = tuple(feature for feature in (module.configure(options) for module in FEATURES) if feature is not None)
    exposes = {name: value for module in FEATURES for name, value in module.EXPOSES.items()}
    for feature in chosen:
        exposes.update(feature.declares())
    return Selection(chosen, exposes)


def with_options(signature: inspect.Signature) -> inspect.Signature:
    """``signature`` (of ``@consumer``, ending in ``**options``) with every feature option in its place."""
    params = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option.default)
               for name, option in OPTIONS.items()]
    return signature.replace(parameters=params)


def options_doc() -> str:
    """The sentences of the features' options, for the docstring of ``@consumer``."""
    return "\n".join(f"    * {option.doc}" for option in OPTIONS.values())


__all__ = ["FEATURES", "OPTIONS", "Feature", "Hook", "Option", "Options", "Selection", "aget_presence",
           "check_names", "get_presence", "options_doc", "select", "with_options"]
