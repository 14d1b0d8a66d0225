"""Settings of the benchmark project, driven by environment variables set by the benchmark scripts.

``BENCH_LAYER``      ``memory`` (``InMemoryChannelLayer``, default), ``redis`` (``RedisChannelLayer``) or
                     ``pubsub`` (``RedisPubSubChannelLayer``).
``BENCH_REDIS_URL``  the redis-server of the redis layers, e.g. ``redis://127.0.0.1:6390/0``.
``BENCH_CAPACITY``   channel ``capacity`` of the layer; unset keeps the library default (100).
``BENCH_HYPERGEN``   ``1`` installs ``hypergen_ws`` and routes its ``@consumer``.
``BENCH_AUTH``       ``1`` wraps the websocket router in ``AuthMiddlewareStack`` (both Django variants);
                     ``quickstart``: the stack of the quickstart's ``asgi.py`` (``SameOriginValidator``,
                     ``AuthMiddlewareStack``, and ``BodyLimit`` for HTTP).
``BENCH_METRICS``    ``1`` turns hypergen_ws's Prometheus metrics on (``HYPERGEN_WS["METRICS"]``); off otherwise.
"""
from __future__ import annotations

import os

SECRET_KEY = "benchmark-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

BENCH_HYPERGEN = os.environ.get("BENCH_HYPERGEN") == "1"
BENCH_AUTH = os.environ.get("BENCH_AUTH", "") in ("1", "quickstart")
BENCH_QUICKSTART = os.environ.get("BENCH_AUTH") == "quickstart"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    *(["hypergen_ws"] if BENCH_HYPERGEN else []),
    "benchproject",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "benchproject.urls"
ASGI_APPLICATION = "benchproject.asgi.application"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

_layer = os.environ.get("BENCH_LAYER", "memory")
_config: dict = {}
if os.environ.get("BENCH_CAPACITY"):
    _config["capacity"] = int(os.environ["BENCH_CAPACITY"])
if _layer == "memory":
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": _config}}
elif _layer in ("redis", "pubsub"):
    # socket_timeout=None: redis-py 8 defaults to 5 s, which aborts the layer's blocking reads (check W007).
    _config["hosts"] = [{"address": os.environ["BENCH_REDIS_URL"], "socket_timeout": None}]
    _backend = "channels_redis.core.RedisChannelLayer" if _layer == "redis" else \
        "channels_redis.pubsub.RedisPubSubChannelLayer"
    CHANNEL_LAYERS = {"default": {"BACKEND": _backend, "CONFIG": _config}}
else:
    raise ValueError(f"BENCH_LAYER={_layer!r}: use memory, redis or pubsub")

HYPERGEN_WS: dict = {"METRICS": os.environ.get("BENCH_METRICS") == "1"}
# ``BENCH_PING_INTERVAL`` (seconds, or ``off``) and ``BENCH_RECONNECT_SPREAD`` (seconds): the heartbeat and the
# reconnect spread of connect.py's idle phase and of storm.py; unset keeps the defaults (25 s, 5 s).
if os.environ.get("BENCH_PING_INTERVAL"):
    HYPERGEN_WS["PING_INTERVAL"] = None if os.environ["BENCH_PING_INTERVAL"] == "off" else \
        float(os.environ["BENCH_PING_INTERVAL"])
if os.environ.get("BENCH_RECONNECT_SPREAD"):
    HYPERGEN_WS["RECONNECT_SPREAD"] = float(os.environ["BENCH_RECONNECT_SPREAD"])
# ``BENCH_CONNECT_TIMEOUT`` (seconds): storm.py's ``--connect-timeout``; unset keeps the default (2.5 s).
if os.environ.get("BENCH_CONNECT_TIMEOUT"):
    HYPERGEN_WS["CONNECT_TIMEOUT"] = float(os.environ["BENCH_CONNECT_TIMEOUT"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
