"""Shared fixtures: communicators for the sample consumers, users with and without permissions."""
from __future__ import annotations

import sys

import pytest
from channels.layers import channel_layers

# hypergen_ws.testing: its fixtures, and a reset of hypergen_ws' in-process state around every test (docs/testing.rst).
pytest_plugins = ["tests.support.fixtures", "tests.stub_http", "hypergen_ws.testing", "pytester"]


@pytest.fixture(scope="session")
def _apps_discovered():
    """The installed apps' consumers, imported once before any registry snapshot: a module is imported only once,
    so consumers it registered during one test and the restore removed would never come back."""
    from hypergen_ws.core import registry

    registry.discover()


@pytest.fixture(autouse=True)
def _restore_consumer_registry(_apps_discovered):
    """Consumers a test defines on the fly do not outlive it."""
    from hypergen_ws.core import registry

    saved = registry.snapshot()
    yield
    # Consumers of modules imported meanwhile (apps discovered by autoconsumers) stay: their modules stay
    # imported, so nothing would register them again.
    imported = {key: spec for key, spec in registry.snapshot().items()
                if key not in saved and getattr(sys.modules.get(spec.func.__module__), spec.func.__name__, None)
                is spec}
    registry.restore({**saved, **imported})


@pytest.fixture
def redis_layer(redis_url, settings):
    """Point the default channel layer at a real redis-server started for the test."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": [{"address": redis_url, "socket_timeout": None}]}}}
    channel_layers.backends.clear()
    yield redis_url
    channel_layers.backends.clear()


@pytest.fixture(params=["memory", "redis"])
def heartbeat_layer(request, settings):
    """The in-memory layer, then a real Redis, with fast presence heartbeats and a short process TTL."""
    from hypergen_ws.backends.memory import memory_store
    from tests.recutil import use_layer

    kind = request.param
    use_layer(kind, settings, request.getfixturevalue("redis_url") if kind != "memory" else None)
    settings.HYPERGEN_WS = {"PROCESS_HEARTBEAT_INTERVAL": 0.2, "PROCESS_TTL": 1.0}
    memory_store().flush_sync()
    return kind
