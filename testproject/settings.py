"""Settings of the hypergen_ws test and demo project.

Runs on the embedded default (SQLite, in-memory channel layer) out of the box.
Set ``REDIS_URL`` (for example ``redis://127.0.0.1:6379/0``) to use ``channels_redis``, or ``REDIS_SENTINELS``
(``host:port,host:port``) and ``REDIS_MASTER_NAME`` to find the Redis master through Redis Sentinel;
``HYPERGEN_WS_LAYER=pubsub`` picks ``RedisPubSubChannelLayer`` instead of ``RedisChannelLayer``.
"""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-demo-key-change-me-in-production")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "hypergen_ws",
    "testproject.chat",
    "testproject.counter",
    "testproject.notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "hypergen_ws.middleware.FollowSessionMiddleware",  # sockets follow a session to its new key
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

#: The Hypergen chat (testproject/hgdemo) is built with django-hypergen, an optional dependency that
#: ``pip install -e ".[dev]"`` installs; without it the rest of the project runs as before.
HYPERGEN_INSTALLED = importlib.util.find_spec("hypergen") is not None
if HYPERGEN_INSTALLED:
    INSTALLED_APPS += ["hypergen", "testproject.hgdemo"]
    MIDDLEWARE += ["hypergen.context.context_middleware"]

ROOT_URLCONF = "testproject.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "testproject" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "testproject.asgi.application"
WSGI_APPLICATION = None

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("HYPERGEN_WS_DB", str(BASE_DIR / "db.sqlite3")),
        "TEST": {"NAME": os.environ.get("HYPERGEN_WS_TEST_DB") or None},
    }
}

REDIS_URL = os.environ.get("REDIS_URL", "")
REDIS_SENTINELS = os.environ.get("REDIS_SENTINELS", "")  # "host:port,host:port", with REDIS_MASTER_NAME
_backend = (
    "channels_redis.pubsub.RedisPubSubChannelLayer"
    if os.environ.get("HYPERGEN_WS_LAYER") == "pubsub"
    else "channels_redis.core.RedisChannelLayer"
)
if REDIS_SENTINELS:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": _backend,
            "CONFIG": {
                "hosts": [{
                    "sentinels": [(host, int(port)) for host, _, port in
                                  (entry.strip().rpartition(":") for entry in REDIS_SENTINELS.split(","))],
                    "master_name": os.environ.get("REDIS_MASTER_NAME", "mymaster"),
                    "socket_timeout": None,  # for the master: the layer's blocking reads (check W007)
                    "sentinel_kwargs": {"socket_timeout": 1.0},  # for the sentinels: give up on one quickly
                }],
            },
        }
    }
elif REDIS_URL:
    # socket_timeout=None: redis-py 8 defaults to 5 s, which aborts the layer's blocking reads (check W007).
    CHANNEL_LAYERS = {
        "default": {"BACKEND": _backend, "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}]}}
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The key of the HTTP publish endpoint (/hypergen_ws/publish/, docs/publishing.rst) comes from the environment;
# with DEBUG only, the documented demo key works when none is set. Without a key the endpoint refuses everything.
DEMO_PUBLISH_KEY = "demo-publish-key-for-local-development-only"
_publish_key = os.environ.get("HYPERGEN_WS_PUBLISH_KEY", "") or (DEMO_PUBLISH_KEY if DEBUG else "")

HYPERGEN_WS: dict = {
    "PUBLISH_KEYS": [_publish_key] if _publish_key else [],
    # Tests that start servers tune other keys with a JSON object, e.g. HYPERGEN_WS_OVERRIDES='{"PUBLISH_TIMEOUT": 2}'.
    **json.loads(os.environ.get("HYPERGEN_WS_OVERRIDES") or "{}"),
}

# manage.py runserver (daphne 4.2.3+) reads no larger websocket message than hypergen_ws takes: MAX_MESSAGE_SIZE
# (docs/security.rst, "Frame sizes"). uvicorn needs --ws-max-size with the same number.
DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE = DAPHNE_WEBSOCKET_MAX_FRAME_SIZE = HYPERGEN_WS.get("MAX_MESSAGE_SIZE", 1024 * 1024)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "index"
LOGOUT_REDIRECT_URL = "index"

AUTH_PASSWORD_VALIDATORS: list = []

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"



LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    # Not propagated: daphne gives the root logger a handler of its own, and every line would appear twice.
    "loggers": {"hypergen_ws": {"handlers": ["console"], "level": os.environ.get("HYPERGEN_WS_LOG", "INFO"),
                                "propagate": False}},
}
