"""@consumer: arguments, signature checks, reverse(), group_name(), label, consumer_class."""
from __future__ import annotations

import pytest
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch

from hypergen_ws import NO_PERM_REQUIRED, consumer
from hypergen_ws.consumers import HypergenConsumer
from tests import sample_consumers as sc


def test_label_route_and_reverse():
    assert sc.echo.label == "tests.echo"
    assert sc.echo.route == "ws/tests/echo/<slug:room>/"
    assert sc.echo.reverse(room="vip") == "/ws/tests/echo/vip/"
    assert sc.guarded.reverse() == "/ws/tests/guarded/"
    assert sc.even_only.reverse(n=4) == "/ws/tests/even_only/4/"
    assert sc.archive.reverse(year="2024", slug="a-b") == "/ws/tests/archive/2024/a-b/"


def test_reverse_refuses_wrong_kwargs_and_values():
    with pytest.raises(NoReverseMatch, match="exactly the URL kwargs"):
        sc.echo.reverse()
    with pytest.raises(NoReverseMatch, match="exactly the URL kwargs"):
        sc.echo.reverse(room="a", extra=1)
    with pytest.raises(NoReverseMatch, match="do not match"):
        sc.archive.reverse(year="24", slug="x")


def test_reverse_does_not_grow_a_cache():
    from django.urls.resolvers import _get_cached_resolver

    before = _get_cached_resolver.cache_info().currsize
    for i in range(200):
        sc.echo.reverse(room=f"room-{i}")
    assert _get_cached_resolver.cache_info().currsize == before


def test_url_prefix_setting(settings):
    settings.HYPERGEN_WS = {"URL_PREFIX": "live"}
    assert sc.echo.reverse(room="x") == "/live/tests/echo/x/"


def test_group_name_is_canonical_through_converters():
    assert sc.even_only.group_name(n=4) == sc.even_only.group_name(n="4")
    assert sc.echo.group_name(room="vip") != sc.aecho.group_name(room="vip")
    with pytest.raises(TypeError, match="exactly the URL kwargs"):
        sc.echo.group_name()


def test_consumer_class_keeps_the_functions_name_and_module():
    cls = sc.echo.consumer_class
    assert issubclass(cls, AsyncJsonWebsocketConsumer) and issubclass(cls, HypergenConsumer)
    assert cls.__name__ == "echo" and cls.__module__ == "tests.sample_consumers"
    assert cls.__doc__ == "Appends the text for the whole room."
    assert sc.echo.consumer_class is cls


def test_function_stays_callable():
    assert sc.counter(None, None, 3) == "<b>3</b>"
    assert sc.echo.__name__ == "echo" and sc.echo.__doc__


def test_sync_or_async_decided_once():
    assert sc.aecho.is_async and not sc.echo.is_async


def test_declared_layer_handlers():
    assert sc.with_handlers.consumer_class.layer_handlers == frozenset({"chat_note"})
    assert sc.echo.consumer_class.layer_handlers == frozenset()


@pytest.mark.parametrize("kwargs, source, message", [
    ({"path": "<slug:room>/"}, "def f(consumer, request, text): pass", "does not accept the URL kwarg 'room'"),
    ({"path": "<slug:room>/"}, "def f(consumer, request, room, /): pass", "positional-only"),
    ({}, "def f(consumer): pass", "must accept (consumer, request, ...)"),
    ({"path": "<slug:room>/", "re_path": "^x$"}, "def f(consumer, request, *, room): pass", "not both"),
    ({"send_to": "everyone"}, "def f(consumer, request): pass", "send_to='everyone'"),
    ({"re_path": r"^(\d+)/$"}, "def f(consumer, request): pass", "must be named"),
    ({"perm": "no_dot"}, "def f(consumer, request): pass", "'<app_label>.<codename>'"),
    ({"perm": 5}, "def f(consumer, request): pass", "not a permission spec"),
    ({"perm": []}, "def f(consumer, request): pass", "not a permission spec"),
    ({"group_name": "fixed"}, "def f(consumer, request): pass", "group_name must be a callable"),
    ({"consumer_class_base": dict}, "def f(consumer, request): pass", "subclass of HypergenConsumer"),
    ({"path": "<slug:room>/"}, "def f(consumer, request, room, *args): pass", "keyword-only"),
])
def test_decorator_errors_name_the_fix(kwargs, source, message):
    namespace: dict = {}
    exec(source, namespace)
    kwargs.setdefault("perm", NO_PERM_REQUIRED)
    with pytest.raises(ImproperlyConfigured) as excinfo:
        consumer(app_label="tests", **kwargs)(namespace["f"])
    assert message in str(excinfo.value)


def test_bare_decorator_is_refused():
    def f(consumer, request):
        pass

    with pytest.raises(ImproperlyConfigured, match=r"@consumer\(perm=...\)"):
        consumer(f)


def test_function_outside_an_app_needs_app_label():
    def lonely(consumer, request):
        pass

    lonely.__module__ = "somewhere.else"
    spec = consumer(perm=NO_PERM_REQUIRED)(lonely)
    with pytest.raises(ImproperlyConfigured, match="pass app_label="):
        spec.label


def test_missing_perm_is_recorded_and_denies():
    def open_door(consumer, request):
        pass

    spec = consumer(app_label="tests")(open_door)
    assert spec.permission.missing
    assert "MISSING" in spec.permission.describe()


def test_returned_values():
    assert sc.counter.result_commands("<b>1</b>") == [["hypergen.morph", "counter", "<b>1</b>"]]
    assert sc.echo.result_commands(None) == []
    assert sc.echo.result_commands([("alert", 1)]) == [["alert", 1]]
    with pytest.raises(TypeError, match="has no target_id"):
        sc.echo.result_commands("<b>")
    with pytest.raises(TypeError, match="return None, a str"):
        sc.echo.result_commands(42)
    with pytest.raises(TypeError, match="first item is the command name"):
        sc.echo.result_commands([[1, 2]])
