"""The consumer registry."""
from __future__ import annotations

import pytest

from hypergen_ws.core import registry
from tests import sample_consumers as sc


def test_lookup_by_label_and_helpful_miss():
    assert registry.get("tests.echo") is sc.echo
    with pytest.raises(LookupError, match="Known consumers: .*tests.echo"):
        registry.get("tests.nope")


def test_in_apps():
    assert registry.in_apps("testproject.chat.consumers", {"testproject.chat"})
    assert registry.in_apps("testproject.chat", {"testproject.chat"})
    assert not registry.in_apps("testproject.chatter", {"testproject.chat"})


def test_discover_imports_consumers_and_views_modules():
    registry.discover()
    labels = {c.label for c in registry.all_consumers() if c.func.__module__.startswith("testproject.")}
    assert {"chat.send_message", "counter.increment", "notifications.listen"} <= labels
