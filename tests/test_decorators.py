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
    with pytest.raises(NoReverseMatch, match=r"takes the URL kwargs \(room\).*'room' is missing"):
        sc.echo.reverse()
    with pytest.raises(NoReverseMatch, match=r"takes the URL kwargs \(room\).*'extra' is not a URL kwarg"):
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
    with pytest.raises(TypeError, match=r"takes the URL kwargs \(room\)"):
        sc.echo.group_name()


def test_url_kwargs_can_be_given_by_position_in_route_order():
    assert sc.archive.reverse("2024", "a-b") == sc.archive.reverse(year="2024", slug="a-b")
    assert sc.archive.reverse("2024", slug="a-b") == "/ws/tests/archive/2024/a-b/"
    assert sc.archive.group_name("2024", "a-b") == sc.archive.group_name(year="2024", slug="a-b")
    assert sc.echo.group_name("vip") == sc.echo.group_name(room="vip")
    assert sc.even_only.group_name(4) == sc.even_only.group_name(n="4")


@pytest.mark.parametrize("call, message", [
    (lambda: sc.echo.group_name("a", "b"),
     "tests.echo.group_name() takes the URL kwargs (room), by name or as positional values in that order; "
     "got 2 positional values."),
    (lambda: sc.archive.group_name("2024", bar="hello"),
     "tests.archive.group_name() takes the URL kwargs (year, slug), by name or as positional values in that "
     "order; 'bar' is not a URL kwarg of tests.archive."),
    (lambda: sc.archive.group_name("2024", year="2025"),
     "tests.archive.group_name() takes the URL kwargs (year, slug), by name or as positional values in that "
     "order; got year both by position and by name."),
    (lambda: sc.guarded.group_name("x"),
     "tests.guarded.group_name() takes no values: the route of tests.guarded has no URL kwargs; "
     "got 1 positional value."),
])
def test_wrong_url_values_get_an_error_listing_the_url_kwargs(call, message):
    with pytest.raises(TypeError) as excinfo:
        call()
    assert str(excinfo.value) == message


def test_reverse_names_the_url_kwargs_for_a_wrong_count():
    with pytest.raises(NoReverseMatch) as excinfo:
        sc.archive.reverse("2024")
    assert str(excinfo.value) == ("tests.archive.reverse() takes the URL kwargs (year, slug), by name or as "
                                  "positional values in that order; 'slug' is missing.")


@pytest.mark.parametrize("kwargs, message", [
    ({"path": "<room:slug>/"},
     "path='<room:slug>/': <room:slug> has the converter and the name swapped: Django writes <converter:name>, "
     "so it is <slug:room>. Write path='<slug:room>/'."),
    ({"path": "/<slug:room>/"}, "Write path='<slug:room>/'."),
    ({"path": "/<room:slug>/"}, "it starts with '/'"),
    ({"path": "<colour:room>/"}, "uses the converter 'colour', which is not registered (known converters: int, path, "
                                 "slug, str, uuid"),
    ({"path": "^(?P<room>\\w+)/$"}, "looks like a regular expression"),
    ({"re_path": "^/(?P<room>\\w+)/$"}, "Write re_path='^(?P<room>\\\\w+)/$'."),
])
def test_path_mistakes_are_refused_with_the_corrected_path(kwargs, message):
    def f(consumer, request, *, room):
        pass

    with pytest.raises(ImproperlyConfigured) as excinfo:
        consumer(perm=NO_PERM_REQUIRED, app_label="tests", **kwargs)(f)
    assert message in str(excinfo.value)
    assert "@consumer on tests.test_decorators" in str(excinfo.value)


def test_a_swapped_path_is_refused_in_both_places():
    def f(consumer, request, *, room, day):
        pass

    with pytest.raises(ImproperlyConfigured, match=r"Write path='<slug:room>/<int:day>/'"):
        consumer(perm=NO_PERM_REQUIRED, app_label="tests", path="<room:slug>/<day:int>/")(f)


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
    assert sc.with_handlers.consumer_class.layer_handlers == frozenset({"chat_note", "chat_bye", "chat_crash"})
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


def test_options_belong_to_the_features_and_an_unknown_one_is_refused():
    import inspect

    from hypergen_ws import features

    shown = inspect.signature(consumer).parameters
    for name, option in features.OPTIONS.items():
        assert shown[name].default == option.default and shown[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert option.doc in (consumer.__doc__ or ""), f"{name} is explained in help(consumer)"
    assert {"history", "presence", "expires", "rate", "burst", "frames", "protocol", "cross_origin"} <= set(shown)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'histroy'.*history"):
        consumer(perm=NO_PERM_REQUIRED, histroy=10)
    def watch(consumer, request):
        pass

    with pytest.raises(ImproperlyConfigured, match="presence='yes'; pass True or False"):
        consumer(perm=NO_PERM_REQUIRED, app_label="tests", presence="yes")(watch)
