"""``@consumer(protocol="hypergen")`` (hypergen_ws.features.hypergen): the frames of django-hypergen's client.

What Hypergen's ``callback("ws://...", ...)`` sends, and what its ``hypergen.applyCommands(JSON.parse(e.data))``
needs: every frame a bare list of commands.
"""
from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from hypergen_ws import NO_PERM_REQUIRED, aconsumer_command, agroup_send, consumer
from hypergen_ws.features import hypergen as feature
from tests import hypergen_consumers as hc
from tests.hypergen_consumers import hypergen_socket

pytestmark = pytest.mark.django_db


async def send(comm: Any, *args: Any, meta: dict[str, Any] | None = None) -> None:
    """What hypergen.js sends for ``callback(url, *args)``: no id."""
    await comm.send_to(text_data=json.dumps({"args": list(args), "meta": meta or {}}))


async def frame(comm: Any) -> Any:
    return json.loads(await comm.receive_from(2))


async def test_a_call_sends_a_bare_list_of_commands_to_the_group():
    a = await hypergen_socket("/ws/tests/hg_note/hall/")
    b = await hypergen_socket("/ws/tests/hg_note/hall/")
    await send(a, "note", "hi <3")
    for comm in (a, b):
        assert await frame(comm) == [["hypergen.append", "notes", "<li>hi <3</li>"]]
    # A call with an id (Hypergen's client sends none) gets no reply frame either: nothing comes in between.
    await a.send_to(text_data=json.dumps({"args": ["note", "with id"], "id": 5}))
    for comm in (a, b):
        assert await frame(comm) == [["hypergen.append", "notes", "<li>with id</li>"]]
    await aconsumer_command(hc.hg_note.group_name(room="hall"), [["barrier"]])
    for comm in (a, b):
        assert await frame(comm) == [["barrier"]]
    await a.disconnect()
    await b.disconnect()


async def test_hypergen_custom_values_arrive_as_python_values():
    a = await hypergen_socket("/ws/tests/hg_note/values/")
    await send(a, "when", {"_": ["date", "2026-12-01"]})
    assert await frame(a) == [["hypergen.append", "notes", "<li>date:2026-12-01</li>"]]
    await send(a, "values", {"_": ["datetime", "2026-12-01T13:45:00"]}, {"_": ["time", "13:45"]},
               {"_": ["float", 2]}, {"_": ["tuple", [1, 2]]}, {"_": ["set", [3]]}, {"_": ["frozenset", []]},
               {"_": ["deque", [1]]}, {"_": ["range", [0, 4, 2]]}, {"k": {"_": ["date", "2026-01-02"]}}, "plain")
    [[name, *values]] = await frame(a)
    assert name == "values"
    assert values == ["datetime.datetime(2026, 12, 1, 13, 45)", "datetime.time(13, 45)", "2.0", "(1, 2)", "{3}",
                      "frozenset()", "deque([1])", "range(0, 4, 2)", "{'k': datetime.date(2026, 1, 2)}", "'plain'"]
    await a.disconnect()


@pytest.mark.parametrize(("value", "error"), [
    ({"_": ["colour", "red"]}, "Unknown Hypergen value type 'colour'; known types: float, date"),
    ({"_": ["date", "2026-13-45"]}, "is not a valid date; send one like '2026-12-01'"),
    ({"_": ["set", [[1]]]}, "cannot be a set: unhashable type"),
    ({"_": ["range", ["a"]]}, "must hold [start, stop, step] integers"),
    ({"_": ["float", "x"]}, "is not a number"),
    ({"_": ["float", 10**400]}, "holds a number of 401 digits, too large for a float"),
    ({"_": ["float", -10**400]}, "holds a number of 401 digits, too large for a float"),
])
async def test_bad_custom_values_become_a_console_error_and_the_socket_goes_on(value, error):
    a = await hypergen_socket("/ws/tests/hg_note/bad/")
    await send(a, "when", value)
    [[name, message]] = await frame(a)
    assert name == "console.error" and error in message and message.endswith("(bad_request)")
    await send(a, "note", "still here")
    assert await frame(a) == [["hypergen.append", "notes", "<li>still here</li>"]]
    await a.disconnect()


async def test_errors_become_console_error_commands():
    a = await hypergen_socket("/ws/tests/hg_note/errors/")
    await a.send_to(text_data="{not json")
    [[name, message]] = await frame(a)
    assert name == "console.error" and "(bad_request)" in message
    await send(a, "boom")
    assert await frame(a) == [["console.error", "hypergen_ws: Internal server error. (server_error)"]]
    await a.send_to(bytes_data=b"\x00")
    [[name, message]] = await frame(a)
    assert name == "console.error" and "not binary data" in message
    await a.disconnect()


async def test_a_denied_call_becomes_a_console_error(django_user_model):
    user = await django_user_model.objects.acreate(username="hg_viewer")
    from django.contrib.auth.models import Permission
    perm = await Permission.objects.aget(codename="view_user")
    await user.user_permissions.aadd(perm)
    a = await hypergen_socket("/ws/tests/hg_guarded/", user)
    await user.user_permissions.aremove(perm)
    await send(a)
    assert await frame(a) == [["console.error", "hypergen_ws: You may not call tests.hg_guarded. (permission_denied)"]]
    await a.disconnect()


async def test_group_commands_data_and_hooks_reach_hypergen_sockets_as_commands():
    a = await hypergen_socket("/ws/tests/hg_counter/")
    assert await frame(a) == [["hypergen.morph", "counter", "<b>0</b> at 2026-12-01"]]  # on_connect
    await send(a, 41)
    assert await frame(a) == [["hypergen.morph", "counter", "<b>42</b>"]]  # target_id, send_to="caller"
    group = hc.hg_counter.group_name()
    await aconsumer_command(group, [["hypergen.remove", "counter"], ["alert", "bye"]])
    assert await frame(a) == [["hypergen.remove", "counter"], ["alert", "bye"]]
    await agroup_send(group, {"n": 1})
    assert await frame(a) == [["console.log", "hypergen_ws message:", {"n": 1}]]
    await a.disconnect()


async def test_a_group_frame_is_translated_once_for_every_socket(monkeypatch):
    calls: list[str] = []
    original = feature.to_hypergen

    def counting(text: str) -> str | None:
        calls.append(text)
        return original(text)

    monkeypatch.setattr(feature, "to_hypergen", counting)
    sockets = [await hypergen_socket("/ws/tests/hg_note/many/") for _ in range(5)]
    await aconsumer_command(hc.hg_note.group_name(room="many"), [["x", 1]])
    for comm in sockets:
        assert await frame(comm) == [["x", 1]]
    assert len(calls) == 1
    for comm in sockets:
        await comm.disconnect()


def test_the_protocol_is_checked_when_the_decorator_runs():
    def f(consumer: Any, request: Any) -> None:
        pass

    with pytest.raises(ImproperlyConfigured, match="protocol='hypergn'; use 'hypergen_ws'"):
        consumer(perm=NO_PERM_REQUIRED, app_label="tests", protocol="hypergn")(f)
    with pytest.raises(ImproperlyConfigured, match="cannot be combined with history=, presence=: Hypergen's client"):
        consumer(perm=NO_PERM_REQUIRED, app_label="tests", protocol="hypergen", history=5, presence=True)(f)
    def raw(consumer: Any, request: Any, payload: str) -> None:
        pass

    with pytest.raises(ImproperlyConfigured, match="cannot be combined with frames="):
        consumer(perm=NO_PERM_REQUIRED, app_label="tests", protocol="hypergen", frames="text")(raw)
    assert hc.hg_note.protocol == "hypergen"
    assert consumer(perm=NO_PERM_REQUIRED, app_label="tests")(f).protocol == "hypergen_ws"
