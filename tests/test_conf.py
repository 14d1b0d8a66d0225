"""HYPERGEN_WS settings."""
from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from hypergen_ws.core import conf


def test_defaults_and_overrides(settings):
    assert conf.get("URL_PREFIX") == "ws/"
    settings.HYPERGEN_WS = {"URL_PREFIX": "live/"}
    assert conf.get("URL_PREFIX") == "live/"


def test_a_renamed_setting_is_read_by_its_old_name_too(settings):
    assert conf.get("PROCESS_HEARTBEAT_INTERVAL") == 3.0
    settings.HYPERGEN_WS = {"HEARTBEAT_INTERVAL": 0.5}
    assert conf.get("PROCESS_HEARTBEAT_INTERVAL") == 0.5
    assert conf.unknown_keys() == [] and conf.renamed_keys() == [("HEARTBEAT_INTERVAL", "PROCESS_HEARTBEAT_INTERVAL")]
    settings.HYPERGEN_WS = {"HEARTBEAT_INTERVAL": 0.5, "PROCESS_HEARTBEAT_INTERVAL": 2.0}
    assert conf.get("PROCESS_HEARTBEAT_INTERVAL") == 2.0, "the new name wins"


def test_unknown_setting_name_is_a_key_error():
    with pytest.raises(KeyError, match="known settings"):
        conf.get("NOPE")


def test_settings_must_be_a_dict(settings):
    settings.HYPERGEN_WS = "x"
    with pytest.raises(ImproperlyConfigured, match="must be a dict"):
        conf.get("URL_PREFIX")


def test_error_details_follow_debug(settings):
    settings.DEBUG = False
    assert not conf.error_details()
    settings.HYPERGEN_WS = {"ERROR_DETAILS": True}
    assert conf.error_details()
