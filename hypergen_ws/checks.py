"""System checks (``python manage.py check``) for hypergen_ws misconfiguration."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .backends.versions import redis_py_version
from .core import conf, registry
from .decorators import all_consumers
from .stats import metrics
from .features.access import LOGOUT_SCOPES
from .features.ratelimit import anonymous_limits

IN_MEMORY = "channels.layers.InMemoryChannelLayer"

Check = Callable[..., list[Any]]


def _settings_valid() -> bool:
    """Whether ``settings.HYPERGEN_WS`` can be read (absent, or a dict); E006 reports it otherwise."""
    return isinstance(getattr(settings, "HYPERGEN_WS", None) or {}, dict)


def needs_settings(check: Check) -> Check:
    """Run ``check`` only when ``settings.HYPERGEN_WS`` is readable, so that a malformed value is reported once,
    as E006, instead of crashing ``manage.py check``."""
    @functools.wraps(check)
    def run(app_configs: Any = None, **kwargs: Any) -> list[Any]:
        return check(app_configs, **kwargs) if _settings_valid() else []

    return run


@register(Tags.compatibility)
@needs_settings
def check_channel_layer(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """E001: no channel layer; W002: the in-memory layer in production."""
    alias = conf.get("CHANNEL_LAYER")
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    if alias not in layers:
        return [Error(
            f"No channel layer {alias!r} in settings.CHANNEL_LAYERS; hypergen_ws needs one for groups.",
            hint="Add CHANNEL_LAYERS = {'default': {'BACKEND': 'channels.layers.InMemoryChannelLayer'}} for one "
                 "process, or channels_redis.core.RedisChannelLayer to run several.",
            id="hypergen_ws.E001",
        )]
    if layers[alias].get("BACKEND") == IN_MEMORY and not settings.DEBUG and not _under_test_runner():
        return [Warning(
            "The in-memory channel layer is in use with DEBUG=False: publishers in other processes (workers, "
            "management commands, a second server) cannot reach websocket clients.",
            hint="Use channels_redis (pip install channels_redis, or the clone's '.[redis]' extra) with BACKEND "
                 "'channels_redis.core.RedisChannelLayer' when you run more than one process.",
            id="hypergen_ws.W002",
        )]
    return []


def _under_test_runner() -> bool:
    """Whether Django's test environment is set up (``manage.py test``, pytest-django): its runner sets
    ``DEBUG=False`` for every test run, which says nothing about production. ``setup_test_environment()``
    collects e-mail in ``django.core.mail.outbox`` for as long as it lasts."""
    from django.core import mail

    return hasattr(mail, "outbox")


@register(Tags.compatibility)
@needs_settings
def check_redis_socket_timeout(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """W007: redis-py 8 defaults ``socket_timeout`` to 5 s, which breaks the Redis layer's blocking reads."""
    layer = (getattr(settings, "CHANNEL_LAYERS", None) or {}).get(conf.get("CHANNEL_LAYER")) or {}
    if not str(layer.get("BACKEND", "")).startswith("channels_redis."):
        return []
    version = redis_py_version()
    if version is None or int(version.split(".")[0]) < 8:
        return []
    hosts = (layer.get("CONFIG") or {}).get("hosts") or [None]
    if all(isinstance(h, dict) and "socket_timeout" in h for h in hosts):
        return []
    return [Warning(
        f"redis-py {version} times out socket reads after 5 s by default, so the channel layer's "
        "blocking receive fails and idle websockets are closed every few seconds.",
        hint="Give each host a socket_timeout: CONFIG = {'hosts': [{'address': 'redis://...', "
             "'socket_timeout': None}]}.",
        id="hypergen_ws.W007",
    )]


#: Below this ``GROUP_CAPACITY`` a burst can overflow a process's channel on a capacity-limited layer.
MIN_GROUP_CAPACITY = 1000


@register(Tags.compatibility)
@needs_settings
def check_group_capacity(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """W030: the channel layer would drop group messages during a burst (docs/scaling.rst)."""
    layer = (getattr(settings, "CHANNEL_LAYERS", None) or {}).get(conf.get("CHANNEL_LAYER")) or {}
    backend = str(layer.get("BACKEND", ""))
    if not backend or backend == IN_MEMORY:  # in-memory frames never cross the layer
        return []
    try:
        backend_class = import_string(backend)
    except ImportError:
        return []
    from channels.layers import BaseChannelLayer

    if issubclass(backend_class, BaseChannelLayer):
        capacity = conf.get("GROUP_CAPACITY")
        if isinstance(capacity, int) and capacity >= MIN_GROUP_CAPACITY:
            return []
        return [Warning(
            f"HYPERGEN_WS['GROUP_CAPACITY'] is {capacity!r}: {backend} drops group messages silently once that "
            "many wait for one server process, which a burst of publishes reaches.",
            hint=f"Remove the key (default 100000) or set it to at least {MIN_GROUP_CAPACITY}.",
            id="hypergen_ws.W030",
        )]
    if backend.endswith(".RedisPubSubChannelLayer"):  # no capacity; see docs/scaling.rst on output buffers
        return []
    return [Warning(
        f"hypergen_ws cannot raise the capacity of its group channels on {backend}: if that layer limits "
        "how many messages wait per channel, a burst of publishes loses messages.",
        hint="Give channels whose name contains '!hypergen_ws.' a capacity of 100000 in the layer's own "
             "configuration, or use channels_redis.",
        id="hypergen_ws.W030",
    )]


@register(Tags.compatibility)
def check_daphne_first(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """E003 / W003: ``runserver`` serves websockets only when daphne comes first in INSTALLED_APPS; W004:
    ``channels`` is not installed."""
    installed = list(settings.INSTALLED_APPS)
    problems: list[Any] = []
    if not apps.is_installed("channels"):
        problems.append(Warning(
            "'channels' is not in INSTALLED_APPS, although hypergen_ws is built on Django Channels: Channels' "
            "commands (runworker) are missing, and so is the app that its documentation and hypergen_ws's assume.",
            hint="Add 'channels' to INSTALLED_APPS, before 'hypergen_ws' (and after 'daphne', which comes first).",
            id="hypergen_ws.W004",
        ))
    if "daphne" not in installed:
        return [*problems, Warning(
            "'daphne' is not in INSTALLED_APPS, so `manage.py runserver` will not serve websockets.",
            hint="Put 'daphne' first in INSTALLED_APPS (or serve the ASGI app with daphne/uvicorn yourself).",
            id="hypergen_ws.W003",
        )]
    if installed[0] != "daphne":
        return [*problems, Error(
            f"'daphne' is in INSTALLED_APPS at position {installed.index('daphne') + 1}, not first, so another "
            "app's runserver command may win and websockets will not be served.",
            hint="Move 'daphne' to the top of INSTALLED_APPS.",
            id="hypergen_ws.E003",
        )]
    return problems


@register(Tags.compatibility)
def check_consumers(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """E004: a consumer without ``perm``; E005: two consumers with one label; W006: unknown settings; W009: a
    setting given by its old name."""
    errors: list[Any] = []
    user_settings = getattr(settings, "HYPERGEN_WS", None)
    if user_settings is not None and not isinstance(user_settings, dict):
        return [Error("settings.HYPERGEN_WS must be a dict.", hint="HYPERGEN_WS = {'URL_PREFIX': 'ws/'}",
                      id="hypergen_ws.E006")]
    for key in conf.unknown_keys():
        errors.append(Warning(
            f"Unknown key {key!r} in settings.HYPERGEN_WS.",
            hint=f"Known keys: {', '.join(sorted(conf.DEFAULTS))}.", id="hypergen_ws.W006",
        ))
    for old, new in conf.renamed_keys():
        user = getattr(settings, "HYPERGEN_WS", None) or {}
        used = "it is ignored, as" if new in user else "it still works, but"
        errors.append(Warning(
            f"settings.HYPERGEN_WS[{old!r}] is deprecated: {used} the setting is called {new!r} now.",
            hint=f"Rename the key {old!r} to {new!r} in settings.HYPERGEN_WS.", id="hypergen_ws.W009",
        ))
    try:
        registry.discover()
    except ImproperlyConfigured as exc:
        return [*errors, Error(str(exc), id="hypergen_ws.E007")]
    consumers = all_consumers()
    for spec in consumers:
        if spec.permission.missing:
            errors.append(Error(
                "has no perm=, so every connection is denied.",
                hint="Pass perm='app_label.codename', a list, a callable, or perm=NO_PERM_REQUIRED to @consumer.",
                obj=_name(spec), id="hypergen_ws.E004",
            ))
    try:
        registry.check_unique([c for c in consumers if c.explicit_app_label is not None or _labelled(c)])
    except ImproperlyConfigured as exc:
        errors.append(Error(str(exc), id="hypergen_ws.E005"))
    return errors


def _name(spec: Any) -> str:
    """How a check message names a consumer: its label, or where it is defined when it has none."""
    return str(spec.label) if _labelled(spec) else f"{spec.func.__module__}.{spec.func.__qualname__}"


def _labelled(spec: Any) -> bool:
    try:
        spec.label
    except ImproperlyConfigured:
        return False
    return True


@register(Tags.security)
@needs_settings
def check_publish_keys(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """E020: ``PUBLISH_KEYS`` is not a list of non-empty strings; W021: a key shorter than 20 characters."""
    keys = conf.get("PUBLISH_KEYS")
    if isinstance(keys, (str, bytes)) or not isinstance(keys, (list, tuple)) or not all(
            isinstance(key, str) and key for key in keys):
        return [Error(
            "HYPERGEN_WS['PUBLISH_KEYS'] must be a list of non-empty strings; the HTTP publish endpoint refuses "
            "every request until it is.",
            hint="HYPERGEN_WS = {'PUBLISH_KEYS': [os.environ['HYPERGEN_WS_PUBLISH_KEY']]} (a list, even for one key).",
            id="hypergen_ws.E020",
        )]
    if any(len(key) < 20 for key in keys):
        return [Warning(
            "A key in HYPERGEN_WS['PUBLISH_KEYS'] is shorter than 20 characters and may be guessed.",
            hint="Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            id="hypergen_ws.W021",
        )]
    return []


@register(Tags.security)
@needs_settings
def check_access_limits(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """E022: ``LOGOUT_CLOSES`` is not "user" or "session"; E023: ``MAX_CONNECTIONS_PER_USER`` is not None or a
    positive integer; E024: ``MAX_BODY_SIZE`` is not None or a number of bytes; E025: ``ANONYMOUS_RATE_LIMIT`` or
    ``ANONYMOUS_RATE_BURST`` is not a rate (docs/security.rst)."""
    errors: list[Any] = []
    scope = conf.get("LOGOUT_CLOSES")
    if scope not in LOGOUT_SCOPES:
        errors.append(Error(
            f"HYPERGEN_WS['LOGOUT_CLOSES'] is {scope!r}; use \"user\" (a logout closes every socket of the user) or "
            "\"session\" (only the sockets of the session that logged out). Until then a logout closes every socket "
            "of the user.",
            hint="HYPERGEN_WS = {'LOGOUT_CLOSES': 'session'} for apps whose users stay logged in on several devices; "
                 "remove the key for the default, 'user'.",
            id="hypergen_ws.E022",
        ))
    limit = conf.get("MAX_CONNECTIONS_PER_USER")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        errors.append(Error(
            f"HYPERGEN_WS['MAX_CONNECTIONS_PER_USER'] is {limit!r}; use None (no cap) or a positive integer, the "
            "sockets one user may have open across every server process.",
            hint="HYPERGEN_WS = {'MAX_CONNECTIONS_PER_USER': 20}",
            id="hypergen_ws.E023",
        ))
    body = conf.get("MAX_BODY_SIZE")
    if body is not None and (isinstance(body, bool) or not isinstance(body, int) or body < 0):
        errors.append(Error(
            f"HYPERGEN_WS['MAX_BODY_SIZE'] is {body!r}; use None (Django's DATA_UPLOAD_MAX_MEMORY_SIZE) or a number "
            "of bytes, the largest request body BodyLimit lets through to a view without max_body_size().",
            hint="HYPERGEN_WS = {'MAX_BODY_SIZE': 10 * 2**20}", id="hypergen_ws.E024"))
    try:
        anonymous_limits()
    except ImproperlyConfigured as exc:
        errors.append(Error(f"{exc} Until then anonymous sockets fail to connect.",
                            hint="HYPERGEN_WS = {'ANONYMOUS_RATE_LIMIT': '100/s', 'ANONYMOUS_RATE_BURST': 200}",
                            id="hypergen_ws.E025"))
    return errors


@register(Tags.compatibility)
def check_publish_on_commit(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """E008: ``PUBLISH_ON_COMMIT`` is not a bool (docs/transactions.rst)."""
    value = conf.get("PUBLISH_ON_COMMIT") if isinstance(getattr(settings, "HYPERGEN_WS", None) or {}, dict) else False
    if isinstance(value, bool):
        return []
    return [Error(
        f"HYPERGEN_WS['PUBLISH_ON_COMMIT'] must be True or False, not {value!r}; every publish without on_commit= "
        "fails until it is.",
        hint="HYPERGEN_WS = {'PUBLISH_ON_COMMIT': True} to publish after the commit inside transaction.atomic().",
        id="hypergen_ws.E008",
    )]


@register(Tags.compatibility)
@needs_settings
def check_metrics(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """E050: ``METRICS`` is True but ``prometheus_client`` is not installed; E051: not None, True or False."""
    setting = conf.get("METRICS")
    if setting not in (None, True, False):
        return [Error(f"HYPERGEN_WS['METRICS'] is {setting!r}; use None (on when prometheus_client is installed), "
                      "True or False.", id="hypergen_ws.E051")]
    if setting is True and not metrics.available():
        return [Error(
            "HYPERGEN_WS['METRICS'] is True but prometheus_client is not installed, so there are no metrics.",
            hint=f"Install it with: {metrics.INSTALL_HINT} (or set METRICS to None or False).",
            id="hypergen_ws.E050",
        )]
    return []


@register(Tags.compatibility)
@needs_settings
def check_liveness(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """E060: ``PING_INTERVAL``, ``PING_TIMEOUT`` or ``RECONNECT_SPREAD`` is not a number of seconds
    (docs/protocol.rst, "Heartbeat"; docs/scaling.rst, "Deploys")."""
    errors: list[Any] = []
    for name in ("PING_INTERVAL", "PING_TIMEOUT", "RECONNECT_SPREAD"):
        try:
            conf.liveness(only=name)
        except ImproperlyConfigured as exc:
            errors.append(Error(str(exc), hint="HYPERGEN_WS = {'PING_INTERVAL': 25, 'PING_TIMEOUT': 10, "
                                               "'RECONNECT_SPREAD': 5}; PING_INTERVAL=None turns the heartbeat off.",
                                id="hypergen_ws.E060"))
    return errors
