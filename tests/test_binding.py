"""Binding browser arguments and URL kwargs to a consumer function."""
from __future__ import annotations

import pytest

from hypergen_ws.core.binding import Binder
from hypergen_ws.core.protocol import ProtocolError


def bind(func, args, url_kwargs=None, names=()):
    return Binder(func, list(names), "test").bind("C", "R", args, url_kwargs or {})


def test_keyword_only_url_kwargs():
    def f(consumer, request, text, *, room):
        pass

    assert bind(f, ["hi"], {"room": "r"}, ["room"]) == (("C", "R", "hi"), {"room": "r"})


def test_url_kwarg_before_browser_arguments_is_bound_by_name():
    def f(consumer, request, room, text, extra=1):
        pass

    assert bind(f, ["hi"], {"room": "r"}, ["room"]) == (("C", "R"), {"text": "hi", "room": "r"})


def test_url_kwargs_through_var_keyword():
    def f(consumer, request, **kwargs):
        pass

    assert bind(f, [], {"room": "r"}, ["room"]) == (("C", "R"), {"room": "r"})


def test_varargs_take_any_number():
    def f(consumer, request, *args):
        pass

    assert bind(f, [1, 2, 3]) == (("C", "R", 1, 2, 3), {})


@pytest.mark.parametrize("args, fragment", [
    ([], "takes 1 to 2 arguments (text, count=1) from the browser, got 0"),
    (["a", 1, 2], "got 3"),
    ([1], "argument 'text' must be str, got int"),
    (["a", True], "argument 'count' must be int, got bool"),
    (["a", 1.5], "argument 'count' must be int, got float"),
])
def test_wrong_count_or_type(args, fragment):
    def f(consumer, request, text: str, count: int = 1):
        pass

    with pytest.raises(ProtocolError) as excinfo:
        bind(f, args)
    assert fragment in str(excinfo.value)


def wrong_count_message(source: str, args: list[object]) -> str:
    namespace: dict[str, object] = {}
    exec(source, namespace)
    with pytest.raises(ProtocolError) as excinfo:
        bind(namespace["f"], args)
    return str(excinfo.value)


@pytest.mark.parametrize("source, args, message", [
    ("def f(consumer, request, text): pass", [], "f() takes 1 argument (text) from the browser, got 0."),
    ("def f(consumer, request, a, b): pass", [1], "f() takes 2 arguments (a, b) from the browser, got 1."),
    ("def f(consumer, request): pass", [1], "f() takes no arguments from the browser, got 1."),
    ("def f(consumer, request, a, *args): pass", [], "f() takes at least 1 argument (a, *args) from the browser, got 0."),
    ("def f(consumer, request, a, b, *args): pass", [1],
     "f() takes at least 2 arguments (a, b, *args) from the browser, got 1."),
    ("def f(consumer, request, a=1, b=2): pass", [1, 2, 3],
     "f() takes 0 to 2 arguments (a=1, b=2) from the browser, got 3."),
])
def test_wrong_count_reads_like_english(source, args, message):
    assert wrong_count_message(source, args) == message


def test_float_accepts_int_and_string_annotations_work():
    def f(consumer, request, x: float, items: list):  # strings here: postponed annotations
        pass

    assert bind(f, [1, []])[0] == ("C", "R", 1, [])
    with pytest.raises(ProtocolError, match="'items' must be list"):
        bind(f, [1, {}])
