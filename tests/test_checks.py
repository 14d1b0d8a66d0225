"""System checks: each misconfiguration gets its id and a hint."""
from __future__ import annotations

from hypergen_ws import NO_PERM_REQUIRED, checks, consumer


def ids(messages):
    return [m.id for m in messages]


def test_project_passes_every_check(settings):
    settings.DEBUG = True  # the demo project runs with DEBUG; tests run with DEBUG=False
    assert checks.check_channel_layer() == []
    assert checks.check_daphne_first() == []
    assert [m for m in checks.check_consumers() if m.id != "hypergen_ws.E004"] == []


def test_no_channel_layer(settings):
    settings.CHANNEL_LAYERS = {}
    (error,) = checks.check_channel_layer()
    assert error.id == "hypergen_ws.E001" and "InMemoryChannelLayer" in error.hint


def test_in_memory_layer_without_debug(settings, monkeypatch):
    from django.core import mail

    settings.DEBUG = False
    assert checks.check_channel_layer() == [], "quiet under the test runner, which sets DEBUG=False"
    monkeypatch.delattr(mail, "outbox")  # as outside the test environment, in production
    assert ids(checks.check_channel_layer()) == ["hypergen_ws.W002"]
    settings.DEBUG = True
    assert checks.check_channel_layer() == []


def test_daphne_not_first(settings):
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "daphne"] + ["daphne"]
    assert ids(checks.check_daphne_first()) == ["hypergen_ws.E003"]
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "daphne"]
    assert ids(checks.check_daphne_first()) == ["hypergen_ws.W003"]


def test_channels_not_installed(settings):
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "channels"]
    [warning] = checks.check_daphne_first()
    assert warning.id == "hypergen_ws.W004" and "'channels' is not in INSTALLED_APPS" in warning.msg
    assert "before 'hypergen_ws'" in warning.hint


def test_consumer_without_perm_is_an_error():
    def no_perm_given(consumer, request):
        pass

    no_perm_given.__module__ = "tests.check_module"
    spec = consumer(app_label="tests")(no_perm_given)
    errors = [m for m in checks.check_consumers() if m.obj == spec.label]
    assert ids(errors) == ["hypergen_ws.E004"] and "NO_PERM_REQUIRED" in errors[0].hint
    assert str(errors[0]).startswith("tests.no_perm_given: (hypergen_ws.E004) has no perm="), "named by its label"
    assert "0x" not in str(errors[0]) and "<function" not in str(errors[0])


def test_unknown_and_malformed_settings(settings):
    settings.HYPERGEN_WS = {"URL_PREFX": "x/"}
    assert "hypergen_ws.W006" in ids(checks.check_consumers())
    settings.HYPERGEN_WS = ["not", "a", "dict"]
    assert ids(checks.check_consumers()) == ["hypergen_ws.E006"]


def test_a_setting_by_its_old_name_works_with_a_deprecation_warning(settings):
    settings.HYPERGEN_WS = {"HEARTBEAT_INTERVAL": 0.5}
    messages = checks.check_consumers()
    (old,) = [m for m in messages if m.id == "hypergen_ws.W009"]
    assert "HEARTBEAT_INTERVAL" in old.msg and "still works" in old.msg and "PROCESS_HEARTBEAT_INTERVAL" in old.hint
    assert "hypergen_ws.W006" not in ids(messages), "an old name is not an unknown key"
    settings.HYPERGEN_WS = {"HEARTBEAT_INTERVAL": 0.5, "PROCESS_HEARTBEAT_INTERVAL": 1.0}
    (both,) = [m for m in checks.check_consumers() if m.id == "hypergen_ws.W009"]
    assert "ignored" in both.msg
    settings.HYPERGEN_WS = {"PROCESS_HEARTBEAT_INTERVAL": 1.0}
    assert "hypergen_ws.W009" not in ids(checks.check_consumers())


def test_redis_without_socket_timeout(settings):
    import redis

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0"]}}}
    expected = ["hypergen_ws.W007"] if int(redis.__version__.split(".")[0]) >= 8 else []
    assert ids(checks.check_redis_socket_timeout()) == expected
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [{"address": "redis://x", "socket_timeout": None}]
    assert checks.check_redis_socket_timeout() == []


def test_public_consumer_passes():
    @consumer(perm=NO_PERM_REQUIRED, app_label="tests")
    def fine_for_checks(consumer, request):
        pass

    assert not [m for m in checks.check_consumers() if m.obj is fine_for_checks.func]


class UncappableLayer:
    """A third-party layer hypergen_ws knows nothing about."""


def test_group_capacity_warning_only_where_a_burst_would_be_dropped(settings):
    def layer(backend):
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": backend, "CONFIG": {}}}
        return ids(checks.check_group_capacity())

    assert layer("channels.layers.InMemoryChannelLayer") == []
    assert layer("channels_redis.core.RedisChannelLayer") == []
    assert layer("channels_redis.pubsub.RedisPubSubChannelLayer") == []
    assert layer("tests.test_checks.UncappableLayer") == ["hypergen_ws.W030"]
    settings.HYPERGEN_WS = {"GROUP_CAPACITY": 100}
    assert layer("channels_redis.core.RedisChannelLayer") == ["hypergen_ws.W030"]
    assert "at least 1000" in checks.check_group_capacity()[0].hint


def test_manage_py_check_reports_a_list_as_e006_instead_of_crashing(settings):
    """Every check reads settings; with HYPERGEN_WS a list, `manage.py check` reports E006 and nothing crashes."""
    import pytest
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.HYPERGEN_WS = ["PUBLISH_KEYS"]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0",
                                                                 "socket_timeout": None}]}}}
    with pytest.raises(SystemCheckError) as raised:
        call_command("check")
    assert "hypergen_ws.E006" in str(raised.value)


def test_publish_on_commit_must_be_a_bool(settings):
    assert checks.check_publish_on_commit() == []
    settings.HYPERGEN_WS = {"PUBLISH_ON_COMMIT": True}
    assert checks.check_publish_on_commit() == []
    settings.HYPERGEN_WS = {"PUBLISH_ON_COMMIT": "yes"}
    [error] = checks.check_publish_on_commit()
    assert error.id == "hypergen_ws.E008" and "'yes'" in error.msg and "PUBLISH_ON_COMMIT': True" in error.hint
    settings.HYPERGEN_WS = "not a dict"  # E006 reports that; this check stays quiet
    assert checks.check_publish_on_commit() == []


def test_logout_closes_and_the_connection_cap_must_have_a_known_value(settings):
    assert checks.check_access_limits() == []
    settings.HYPERGEN_WS = {"LOGOUT_CLOSES": "session", "MAX_CONNECTIONS_PER_USER": 5}
    assert checks.check_access_limits() == []
    settings.HYPERGEN_WS = {"LOGOUT_CLOSES": "everything", "MAX_CONNECTIONS_PER_USER": 0}
    logout, cap = checks.check_access_limits()
    assert logout.id == "hypergen_ws.E022" and "'everything'" in logout.msg and '"user"' in logout.msg
    assert "'LOGOUT_CLOSES': 'session'" in logout.hint
    assert cap.id == "hypergen_ws.E023" and "is 0" in cap.msg and "positive integer" in cap.msg
    for wrong in ("5", 2.5, True, -1):
        settings.HYPERGEN_WS = {"MAX_CONNECTIONS_PER_USER": wrong}
        assert [e.id for e in checks.check_access_limits()] == ["hypergen_ws.E023"], wrong
    settings.HYPERGEN_WS = "not a dict"  # E006 reports that; this check stays quiet
    assert checks.check_access_limits() == []


def test_the_body_limit_must_be_none_or_a_number_of_bytes(settings):
    for right in (None, 0, 10 * 2**20):
        settings.HYPERGEN_WS = {"MAX_BODY_SIZE": right}
        assert checks.check_access_limits() == [], right
    for wrong in ("10MB", 2.5, True, -1):
        settings.HYPERGEN_WS = {"MAX_BODY_SIZE": wrong}
        [error] = checks.check_access_limits()
        assert error.id == "hypergen_ws.E024" and repr(wrong) in error.msg and "DATA_UPLOAD_MAX_MEMORY_SIZE" in error.msg


def test_the_anonymous_rate_limit_must_be_a_rate(settings):
    for right in ({}, {"ANONYMOUS_RATE_LIMIT": None}, {"ANONYMOUS_RATE_LIMIT": "10/min", "ANONYMOUS_RATE_BURST": 5}):
        settings.HYPERGEN_WS = right
        assert checks.check_access_limits() == [], right
    for wrong in ({"ANONYMOUS_RATE_LIMIT": "fast"}, {"ANONYMOUS_RATE_LIMIT": 100},
                  {"ANONYMOUS_RATE_BURST": 0}, {"ANONYMOUS_RATE_BURST": "lots"}):
        settings.HYPERGEN_WS = wrong
        [error] = checks.check_access_limits()
        assert error.id == "hypergen_ws.E025" and "ANONYMOUS_RATE_LIMIT" in error.msg, wrong


def test_the_heartbeat_and_reconnect_settings_must_be_seconds(settings):
    settings.HYPERGEN_WS = {"PING_INTERVAL": None, "PING_TIMEOUT": 0.5, "RECONNECT_SPREAD": 0}
    assert checks.check_liveness() == [], "None turns the heartbeat off; 0 s of spread is allowed"
    for name, wrong in [("PING_INTERVAL", 0), ("PING_INTERVAL", "25"), ("PING_TIMEOUT", None), ("PING_TIMEOUT", -1),
                        ("RECONNECT_SPREAD", -0.5), ("RECONNECT_SPREAD", True), ("PING_INTERVAL", float("inf"))]:
        settings.HYPERGEN_WS = {name: wrong}
        [error] = checks.check_liveness()
        assert error.id == "hypergen_ws.E060" and f"HYPERGEN_WS['{name}'] is {wrong!r}" in error.msg, error.msg
        assert "number of seconds" in error.msg and "PING_INTERVAL=None" in error.hint
