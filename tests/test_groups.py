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
