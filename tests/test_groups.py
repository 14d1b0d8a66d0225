"""Group names: valid for every layer, injective, deterministic across processes (property-based)."""
from __future__ import annotations

import json
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from hypergen_ws.core.groups import MAX_LENGTH, VALID_GROUP_NAME, check_group_name, escape, group_name_for

labels = st.from_regex(r"[a-z][a-z0-9_]{0,20}\.[a-z_][a-z0-9_]{0,40}", fullmatch=True)
keys = st.from_regex(r"[a-z_][a-z0-9_]{0,15}", fullmatch=True)
values = st.one_of(st.text(max_size=300), st.integers(), st.text(alphabet="._-a", max_size=10),
                   st.text(min_size=250, max_size=300))
kwargs = st.dictionaries(keys, values, max_size=3)


@given(labels, kwargs)
def test_names_are_valid_for_every_layer(label, kw):
    name = group_name_for(label, kw)
    assert VALID_GROUP_NAME.match(name)
    assert len(name) <= MAX_LENGTH < 100
    assert check_group_name(name) == name


@settings(max_examples=500)
@given(labels, kwargs, labels, kwargs)
def test_names_are_injective(label1, kw1, label2, kw2):
    canon1 = (label1, {k: str(v) for k, v in kw1.items()})
    canon2 = (label2, {k: str(v) for k, v in kw2.items()})
    if canon1 != canon2:
        assert group_name_for(label1, kw1) != group_name_for(label2, kw2)


def test_dotted_values_do_not_collide():
    assert group_name_for("a.b", {"x": "a.b", "y": "c"}) != group_name_for("a.b", {"x": "a", "y": "b.c"})
    assert group_name_for("a.b", {"x": "a_2e"}) != group_name_for("a.b", {"x": "a."})


@given(st.text(max_size=50))
def test_escape_keeps_only_allowed_characters(value):
    assert all(c.isascii() and (c.isalnum() or c in "_-") for c in escape(value))


def test_short_names_stay_readable():
    assert group_name_for("chat.send_message", {"room_name": "vip"}) == "hgws.chat.send_message.room_name.vip"
    assert group_name_for("chat.send_message", {"room_name": "my-room_2"}) == (
        "hgws.chat.send_message.room_name.my-room__2")


def test_unicode_and_300_character_values():
    for value in ["ünïcødé ☃ 中文", "x" * 300, "." * 300, "\x00\n"]:
        name = group_name_for("chat.send_message", {"room_name": value})
        assert VALID_GROUP_NAME.match(name) and len(name) < 100


def test_the_same_in_another_process():
    cases = [("chat.send_message", {"room_name": v}) for v in ["vip", "ø" * 200, "a.b", "x" * 300]]
    code = ("import json,sys; from hypergen_ws.core.groups import group_name_for; "
            "print(json.dumps([group_name_for(l, k) for l, k in json.loads(sys.argv[1])]))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(cases)], capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "123", "PATH": ""}, cwd=".").stdout
    assert json.loads(out) == [group_name_for(label, kw) for label, kw in cases]


def test_check_group_name_says_what_is_wrong():
    import pytest

    for bad in ["", "a" * 100, "has space", "ünï", 5]:
        with pytest.raises(ValueError, match="group_name|group name"):
            check_group_name(bad)


# ---- group_name() of a consumer: every value a caller can pass ---------------------------------------------------
def _route_consumers():
    """Consumers with a uuid and a project converter (a date), made once (the registry keeps them)."""
    import datetime
    import types

    from django.urls import register_converter
    from django.urls.converters import REGISTERED_CONVERTERS, get_converters

    from hypergen_ws import NO_PERM_REQUIRED, consumer

    if hasattr(_route_consumers, "made"):
        return _route_consumers.made

    class DayConverter:
        regex = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"

        def to_python(self, value):
            return datetime.date.fromisoformat(value)

        def to_url(self, value):
            return value.isoformat() if isinstance(value, datetime.date) else str(value)

    module = types.ModuleType("tests.group_routes")

    def by_uuid(consumer, request, *, key):
        return None

    def by_day(consumer, request, *, day):
        return None

    for func in (by_uuid, by_day):
        func.__module__ = module.__name__
    register_converter(DayConverter, "hgwsday")  # for this route only: other tests list the known converters
    try:
        made = (consumer(perm=NO_PERM_REQUIRED, path="<uuid:key>/", app_label="tests")(by_uuid),
                consumer(perm=NO_PERM_REQUIRED, path="<hgwsday:day>/", app_label="tests")(by_day))
    finally:
        REGISTERED_CONVERTERS.pop("hgwsday", None)
        get_converters.cache_clear()
    _route_consumers.made = made
    return made


def test_a_value_no_route_gives_is_refused_instead_of_naming_another_values_group():
    import pytest

    from tests import sample_consumers as sc

    for spec, key in ((sc.echo, "room"), (sc.private, "owner"), (sc.even_only, "n"), (sc.archive, "slug")):
        kwargs = {"year": "2024"} if spec is sc.archive else {}
        for wrong in (None, True, False, 1.5, ["a"], object()):
            with pytest.raises(TypeError, match=rf"{spec.label}\.group_name\({key}=.*a URL kwarg is a str"):
                spec.group_name(**kwargs, **{key: wrong})
    with pytest.raises(TypeError, match=r"not NoneType\.$"):
        sc.echo.group_name(room=None)
    with pytest.raises(TypeError, match=r"the URL would spell it 'True': pass that string if you mean it"):
        sc.echo.group_name(room=True)
    assert sc.echo.group_name(room="None") != sc.echo.group_name(room="True")  # the strings themselves are fine
    with pytest.raises(ValueError, match=r"not a value the route's converter IntConverter takes"):
        sc.even_only.group_name(n="four")


def test_what_routes_give_keeps_working_and_names_a_url_one_way():
    import datetime
    import uuid

    from tests import sample_consumers as sc

    by_uuid, by_day = _route_consumers()
    key = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert by_uuid.group_name(key=key) == by_uuid.group_name(key=str(key))  # one URL, one group
    assert by_uuid.group_name(key=key) != by_uuid.group_name(key=uuid.uuid4())
    day = datetime.date(2026, 12, 1)
    assert by_day.group_name(day=day) == by_day.group_name(day="2026-12-01")
    assert by_day.group_name(day=day) != by_day.group_name(day=datetime.date(2026, 12, 2))
    assert sc.even_only.group_name(n=4) == sc.even_only.group_name(n="4") != sc.even_only.group_name(n=40)
    assert sc.echo.group_name(room=5) == sc.echo.group_name(room="5")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=50), st.integers()), st.one_of(st.text(max_size=50), st.integers()))
def test_consumer_group_names_are_injective_for_every_value_taken(a, b):
    from tests import sample_consumers as sc

    # A value is taken as the URL spells it: two values name one group exactly when they are the same URL.
    assert (sc.private.group_name(owner=a) == sc.private.group_name(owner=b)) == (str(a) == str(b))
