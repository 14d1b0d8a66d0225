"""autoconsumers(): discovery, module restriction, duplicate labels, late registration."""
from __future__ import annotations

import types

import pytest
from django.core.exceptions import ImproperlyConfigured

from hypergen_ws import NO_PERM_REQUIRED, autoconsumers, consumer
from tests import sample_consumers


def _routes(patterns):
    return {str(p.pattern) for p in patterns}


def test_discovers_every_installed_apps_consumers_and_views():
    routes = _routes(autoconsumers())
    assert "ws/chat/send_message/<slug:room_name>/" in routes
    assert not any(r.startswith("ws/tests/") for r in routes), "consumers outside installed apps are not routed"


def test_restricted_to_given_modules_by_object_or_dotted_path():
    by_object = _routes(autoconsumers(sample_consumers))
    by_name = _routes(autoconsumers("tests.sample_consumers"))
    assert by_object == by_name
    assert "ws/tests/echo/<slug:room>/" in by_object
    assert not any(r.startswith("ws/chat/") for r in by_object)


def test_re_path_routes_are_anchored_after_the_prefix():
    (pattern,) = [p for p in autoconsumers(sample_consumers) if "archive" in str(p.pattern)]
    assert pattern.pattern.match("ws/tests/archive/2024/news/")
    assert not pattern.pattern.match("ws/tests/archive/24/news/")


def test_patterns_are_named_by_label():
    names = {p.name for p in autoconsumers(sample_consumers)}
    assert "tests.echo" in names


def test_duplicate_labels_raise():
    first = types.ModuleType("tests.dup_one")
    second = types.ModuleType("tests.dup_two")
    for module in (first, second):
        def same(consumer, request):
            pass

        same.__module__ = module.__name__
        consumer(perm=NO_PERM_REQUIRED, app_label="dup")(same)
    with pytest.raises(ImproperlyConfigured, match="Two consumers are labelled 'dup.same'"):
        autoconsumers(first, second)


def test_late_registration_in_a_discovered_app_raises():
    autoconsumers()

    def late(consumer, request):
        pass

    late.__module__ = "testproject.chat.late_module"
    with pytest.raises(ImproperlyConfigured, match="after autoconsumers\\(\\) built the websocket routes"):
        consumer(perm=NO_PERM_REQUIRED)(late)


async def test_an_unroutable_path_is_refused_with_one_log_line_and_nothing_raised(caplog):
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator  # the router's refusal before any consumer runs

    router = URLRouter(autoconsumers())
    communicator = WebsocketCommunicator(router, "/ws/chat/no_such_consumer/")
    with caplog.at_level("WARNING", logger="hypergen_ws"):
        connected, _ = await communicator.connect()
    assert connected is False
    lines = [r for r in caplog.records if r.name == "hypergen_ws"]
    assert len(lines) == 1 and "/ws/chat/no_such_consumer/" in lines[0].getMessage()
    assert lines[0].exc_info is None
    await communicator.wait()


def test_module_lists_end_without_the_catch_all_unless_asked():
    assert all(p.name != "hypergen_ws.not_found" for p in autoconsumers(sample_consumers))
    assert autoconsumers(sample_consumers, not_found_route=True)[-1].name == "hypergen_ws.not_found"
    assert autoconsumers()[-1].name == "hypergen_ws.not_found"
    assert all(p.name != "hypergen_ws.not_found" for p in autoconsumers(not_found_route=False))
