"""``@consumer``: turn a function into a websocket consumer with a generated route and group name."""
from __future__ import annotations

import asyncio
import functools
import inspect
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch
from django.urls import path as make_path
from django.urls import re_path as make_re_path

from . import features
from .consumers import HypergenConsumer
from .core import conf, groups, registry
from .core.binding import Binder
from .core.commands import collecting, stop_collecting
from .core.permissions import MISSING, Permission
from .core.protocol import check_commands
from .core.urlspec import UrlValuesError, bind_url_values, canonical_url_value, compile_route, reverse_route
from .features import Feature, Hook, aget_presence, get_presence

if TYPE_CHECKING:
    from django.urls import URLPattern

SEND_TO = ("group", "caller")


def consumer(perm: Any = MISSING, *, any_perm: bool = False, path: str = "", re_path: str | None = None,
             target_id: str | None = None, group_name: Callable[[HypergenConsumer], str] | None = None,
             send_to: str = "group", receive: bool = True, app_label: str | None = None,
             consumer_class_base: type[HypergenConsumer] = HypergenConsumer,
             **options: Any) -> Callable[[Callable[..., Any]], Consumer]:
    """Turn ``func(consumer, request, *browser_args, **url_kwargs)`` into a websocket consumer.

    ``perm`` is required: a permission string, a list of them (all needed, or any one with ``any_perm=True``),
    ``NO_PERM_REQUIRED``, or a callable ``(user, **url_kwargs) -> bool`` (sync or async).
    ``path`` (Django path syntax) or ``re_path`` (a regex) is appended to ``<URL_PREFIX><app_label>/<name>/``.
    ``target_id`` makes a returned ``str`` a ``["hypergen.morph", target_id, html]`` command. ``group_name`` is a
    callable taking the consumer instance and returning the group to join instead of the derived one.
    ``send_to`` is ``"group"`` (default) or ``"caller"``. ``receive=False`` makes a listen-only consumer.
    ``app_label`` is needed only for functions outside an installed app. ``consumer_class_base`` is a subclass of
    ``HypergenConsumer`` whose methods handle plain channel-layer messages.

    The other options belong to the features (:mod:`hypergen_ws.features`), which validate them:

{options}
    """
    features.check_names(options)

    def decorate(func: Callable[..., Any]) -> Consumer:
        return Consumer(func, perm=perm, any_perm=any_perm, path=path, re_path=re_path, target_id=target_id,
                        group_name=group_name, send_to=send_to, receive=receive, app_label=app_label,
                        consumer_class_base=consumer_class_base, **options)

    if callable(perm) and inspect.isfunction(perm) and _looks_like_consumer(perm):
        raise ImproperlyConfigured(
            f"@consumer was used without arguments on {perm.__name__}(); write @consumer(perm=...), e.g. "
            "@consumer(perm='app.codename') or @consumer(perm=NO_PERM_REQUIRED)."
        )
    return decorate


# What help() and the docs show: every feature option, with its default and its sentence.
consumer.__doc__ = (consumer.__doc__ or "").replace("{options}", features.options_doc())
setattr(consumer, "__signature__", features.with_options(inspect.signature(consumer)))  # noqa: B010


def _looks_like_consumer(func: Callable[..., Any]) -> bool:
    params = list(inspect.signature(func).parameters)
    return len(params) >= 2 and params[0] == "consumer"


class Consumer:
    """A decorated consumer function: still callable, plus its route, group names and consumer class."""

    # What the features expose (``features.Selection.exposes``), set in ``__init__``.
    history: int
    presence_enabled: bool
    expires: Any
    frames: str
    protocol: str
    #: Whether the clients answer the protocol heartbeat (not those of frames= and protocol="hypergen").
    pings: bool

    def __init__(self, func: Callable[..., Any], *, perm: Any, any_perm: bool, path: str, re_path: str | None,
                 target_id: str | None, group_name: Callable[[HypergenConsumer], str] | None, send_to: str,
                 receive: bool, app_label: str | None, consumer_class_base: type[HypergenConsumer],
                 **options: Any) -> None:
        functools.update_wrapper(self, func)
        self.func = func
        self.name = func.__name__
        where = f"@consumer on {func.__module__}.{func.__qualname__}"
        if not groups.ASCII_IDENTIFIER.match(self.name):
            raise ImproperlyConfigured(f"{where}: use an ASCII function name (it is part of the URL and group).")
        if app_label is not None and not groups.ASCII_IDENTIFIER.match(app_label):
            raise ImproperlyConfigured(f"{where}: app_label={app_label!r} must be an ASCII identifier.")
        if send_to not in SEND_TO:
            raise ImproperlyConfigured(f"{where}: send_to={send_to!r}; use 'group' or 'caller'.")
        if path and re_path is not None:
            raise ImproperlyConfigured(f"{where}: pass either path= or re_path=, not both.")
        if group_name is not None and not callable(group_name):
            raise ImproperlyConfigured(f"{where}: group_name must be a callable taking the consumer instance.")
        if not (isinstance(consumer_class_base, type) and issubclass(consumer_class_base, HypergenConsumer)):
            raise ImproperlyConfigured(f"{where}: consumer_class_base must be a subclass of HypergenConsumer.")
        self._pattern, kwarg_names = compile_route(path, re_path, where)
        self.permission = Permission(perm, any_perm, where=where)
        self.path = path
        self.re_path = re_path
        self.target_id = target_id
        self.group_name_func = group_name
        self.send_to = send_to
        self.receive = receive
        self.consumer_class_base = consumer_class_base
        self._app_label = app_label
        self._explicit_app_label = app_label is not None
        self.url_kwarg_names = tuple(kwarg_names)
        self.converters = getattr(self._pattern, "converters", {})
        self.binder = Binder(func, kwarg_names, where)
        #: The features this consumer uses, chosen once, here (:mod:`hypergen_ws.features`), from the options
        #: ``@consumer`` forwarded.
        selection = features.select(options, receive=receive, binder=self.binder, where=where)
        self.features = selection.features
        for name, value in selection.exposes.items():
            setattr(self, name, value)
        # The features that take part in each step of a connection (the others are not even called).
        self.admitters = _overriding(self.features, "admit")
        self.joiners = _overriding(self.features, "before_join")
        self.members = _overriding(self.features, "member")
        self.starters = _overriding(self.features, "connected")
        self.arrivals = _overriding(self.features, "arrived")
        self.receivers = _overriding(self.features, "receive")
        self.leavers = _overriding(self.features, "disconnected")
        self.rejoiners = _overriding(self.features, "rejoined")
        self.connect_hooks: list[Hook] = []
        self.disconnect_hooks: list[Hook] = []
        self.is_async = asyncio.iscoroutinefunction(func)
        self._call = func if self.is_async else database_sync_to_async(func)
        self._consumer_class: type[HypergenConsumer] | None = None
        registry.register(self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Consumer {self.func.__module__}.{self.func.__qualname__}>"

    def closes_old_connections(self, event: str) -> bool:
        """Whether a connection runs Django's ``close_old_connections()`` before it handles ``event``.

        Channels does so before every event, for handlers that use the async ORM on long-lived connections.
        Sync code of the app (the function, hooks, permission checks) runs through ``database_sync_to_async``,
        which closes stale connections in its worker thread before and after, so a connection does it only
        before an event that runs ``async def`` code of the app: a call of an async function, an async
        permission callable or hook. A ``consumer_class_base`` subclass keeps Channels' rule for every event.
        """
        if self.consumer_class_base is not HypergenConsumer:
            return True
        if event == "websocket.receive":
            return self.is_async
        if event == "websocket.connect":
            return self.permission.is_async or any(hook.is_async for hook in self.connect_hooks)
        if event == "websocket.disconnect":
            return any(hook.is_async for hook in self.disconnect_hooks)
        return False

    # ---- hooks -------------------------------------------------------------------------------------------
    def on_connect(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Register ``func(consumer, request, **url_kwargs)`` to run when a permitted socket connects.

        What it issues with ``command()`` (or returns) is sent to the new client only, before any group frame:
        its initial state. Use as ``@send_message.on_connect``; sync or async; returns ``func`` unchanged.
        """
        self.connect_hooks.append(Hook(func, self.name, self.url_kwarg_names, "on_connect"))
        return func

    def on_disconnect(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Register ``func(consumer, request, **url_kwargs)`` to run when a permitted socket is gone.

        Runs once per socket on every kind of disconnect, after it left its groups; what it issues goes to its
        group. Exceptions are logged, never propagated. Sync or async; returns ``func`` unchanged.
        """
        self.disconnect_hooks.append(Hook(func, self.name, self.url_kwarg_names, "on_disconnect"))
        return func

    # ---- names -------------------------------------------------------------------------------------------
    @property
    def app_label(self) -> str:
        """The app label: given, or the installed app containing the function's module."""
        if self._app_label is None:
            config = apps.get_containing_app_config(self.func.__module__)
            if config is None:
                raise ImproperlyConfigured(
                    f"@consumer {self.func.__module__}.{self.name}: the module is not part of an installed app. "
                    "Add its app to INSTALLED_APPS or pass app_label='...' to @consumer."
                )
            self._app_label = config.label
        return self._app_label

    @property
    def explicit_app_label(self) -> str | None:
        """The ``app_label`` given to ``@consumer`` (None when it is derived from the installed app)."""
        return self._app_label if self._explicit_app_label else None

    @property
    def label(self) -> str:
        """``<app_label>.<function name>``, e.g. ``chat.send_message``."""
        return f"{self.app_label}.{self.name}"

    @property
    def prefix(self) -> str:
        """The generated part of the route: ``<URL_PREFIX><app_label>/<name>/``."""
        url_prefix = conf.get("URL_PREFIX")
        if url_prefix and not url_prefix.endswith("/"):
            url_prefix += "/"
        return f"{url_prefix.lstrip('/')}{self.app_label}/{self.name}/"

    @property
    def route(self) -> str:
        """The whole route, in the syntax of ``path`` (or ``re_path``)."""
        if self.re_path is not None:
            return "^" + re.escape(self.prefix) + self.re_path.lstrip("^")
        return self.prefix + self.path

    def urlpattern(self) -> URLPattern:
        """The ``path()`` / ``re_path()`` entry for Channels' ``URLRouter``."""
        app: Any = self.consumer_class.as_asgi()
        make = make_re_path if self.re_path is not None else make_path
        pattern: URLPattern = make(self.route, app, name=self.label)
        return pattern

    def reverse(self, *args: Any, **kwargs: Any) -> str:
        """The URL of this consumer for these URL kwargs, e.g. ``/ws/chat/send_message/vip/``.

        Values are given by name, ``reverse(room_name="vip")``, or by position in the route's order,
        ``reverse("vip")``.
        """
        try:
            kwargs = bind_url_values(self.label, "reverse", self.url_kwarg_names, args, kwargs)
        except UrlValuesError as exc:
            raise NoReverseMatch(str(exc)) from None
        return reverse_route(self.label, self.route, self.re_path is not None, self.converters, kwargs)

    def group_name(self, *args: Any, **kwargs: Any) -> str:
        """The group that connections with these URL kwargs join (the same in every process).

        Values are given by name, ``group_name(room_name="vip")``, or by position in the route's order,
        ``group_name("vip")``; a wrong count or name raises ``TypeError`` listing the URL kwargs. Values are what a
        route gives (a str, an int, a UUID, a project converter's value), taken as the URL spells them; ``None``,
        a bool, a float or another object raises ``TypeError`` (docs/consumers.rst, "Groups").
        """
        kwargs = bind_url_values(self.label, "group_name", self.url_kwarg_names, args, kwargs)
        name = groups.group_name_for(self.label, self._canonical(kwargs))
        if self.history:
            registry.remember_group(name, self.history)
        return name

    def group_name_from_url_kwargs(self, kwargs: dict[str, Any]) -> str:
        """The group of ``kwargs`` given from outside (JSON, a command line), checked like the URL would be.

        Each value must be a str (or an int) that the URL pattern accepts for its kwarg, so that only groups a
        socket could join are named: ``None``, ``True``, lists, or a value with a ``/`` in a ``<str:...>`` segment
        raise ``ValueError`` saying which kwarg is wrong and what the pattern is.
        """
        kwargs = bind_url_values(self.label, "group_name", self.url_kwarg_names, (), kwargs)
        for key, value in kwargs.items():
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise ValueError(f"the URL kwarg {key}={value!r} must be a string (or an integer), as it would "
                                 f"appear in the URL {self.route!r}, not {type(value).__name__}.")
        try:
            self.reverse(**kwargs)
        except NoReverseMatch:
            raise ValueError(f"the values {kwargs!r} do not match the URL pattern {self.route!r}; send values a "
                             "socket URL could have.") from None
        return self.group_name(**kwargs)

    def presence(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        """Who is connected to the group of these URL kwargs (needs ``presence=True``); see docs/presence.rst."""
        return get_presence(self.group_name(*args, **kwargs))

    async def apresence(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        """Async variant of :meth:`presence`."""
        return await aget_presence(self.group_name(*args, **kwargs))

    def _canonical(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {key: canonical_url_value(self.label, key, value, self.converters.get(key))
                for key, value in kwargs.items()}

    def groups_for(self, instance: HypergenConsumer) -> list[str]:
        """The groups a connection joins at connect."""
        if self.group_name_func is not None:
            return [groups.check_group_name(self.group_name_func(instance))]
        return [groups.group_name_for(self.label, instance.url_kwargs)]

    @property
    def consumer_class(self) -> type[HypergenConsumer]:
        """The generated ``AsyncJsonWebsocketConsumer`` subclass, named and placed like the function."""
        if self._consumer_class is None:
            base = self.consumer_class_base
            handlers = frozenset(
                name for name in dir(base)
                if not name.startswith("_") and not hasattr(HypergenConsumer, name) and callable(getattr(base, name))
            )
            self._consumer_class = type(self.name, (base,), {
                "hypergen": self, "layer_handlers": handlers, "__module__": self.func.__module__,
                "__qualname__": self.func.__qualname__, "__doc__": self.func.__doc__,
            })
        return self._consumer_class

    # ---- calls -------------------------------------------------------------------------------------------
    async def invoke(self, instance: HypergenConsumer, args: list[Any]) -> list[list[Any]]:
        """Run the function for a browser call and return the commands it produced."""
        call_args, call_kwargs = self.binder.bind(instance, instance.request, args, instance.url_kwargs)
        commands, token = collecting()
        try:
            result = await self._call(*call_args, **call_kwargs)
        finally:
            stop_collecting(token)
        return commands + self.result_commands(result)

    def result_commands(self, result: Any) -> list[list[Any]]:
        """Commands for a function's return value."""
        if result is None:
            return []
        if isinstance(result, str):
            if self.target_id is None:
                raise TypeError(f"{self.label} returned a str but has no target_id; pass target_id='element-id' "
                                "to @consumer or use command(...).")
            return [["hypergen.morph", self.target_id, result]]
        if isinstance(result, (list, tuple)):
            return check_commands(result)
        raise TypeError(f"{self.label} returned {type(result).__name__}; return None, a str (with target_id) "
                        "or a list of commands.")


def _overriding(chosen: tuple[Feature, ...], hook: str) -> tuple[Feature, ...]:
    """The features among ``chosen`` that do something in ``hook``."""
    return tuple(f for f in chosen if getattr(type(f), hook) is not getattr(Feature, hook))


def all_consumers() -> list[Consumer]:
    """Every ``@consumer`` defined so far, in definition order."""
    return [spec for spec in registry.all_consumers() if isinstance(spec, Consumer)]


def get_consumer(label: str) -> Consumer:
    """The consumer labelled ``label`` (``"chat.send_message"``), or ``LookupError`` listing the known ones."""
    spec = registry.get(label)
    if not isinstance(spec, Consumer):  # pragma: no cover - only Consumer objects are registered
        raise LookupError(f"{label!r} is not a @consumer.")
    return spec
