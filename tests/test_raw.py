"""Raw frame modes: ``@consumer(..., frames="json" | "text" | "bytes")`` (hypergen_ws.features.raw)."""
from __future__ import annotations

import json
import logging

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ImproperlyConfigured

from hypergen_ws import NO_PERM_REQUIRED, consumer
from hypergen_ws.core.protocol import CLOSE_NOT_AUTHENTICATED, CLOSE_TOO_BIG
from tests.feature_consumers import open_socket

pytestmark = pytest.mark.django_db(transaction=True)


async def frame(comm, timeout: float = 2):
    return json.loads(await comm.receive_from(timeout))


@pytest.mark.parametrize("value", [{"a": [1, 2]}, [1, "x"], "plain string", 42, 1.5, True, None])
async def test_json_frames_pass_any_json_value_to_the_whole_group(value):
    a = await open_socket("/ws/tests/raw_json/lobby/")
    b = await open_socket("/ws/tests/raw_json/lobby/")
    other = await open_socket("/ws/tests/raw_json/vip/")
    await a.send_to(text_data=json.dumps(value))
    expected = {"type": "commands", "commands": [["json", "lobby", value]]}
    assert await frame(a) == expected
    assert await frame(b) == expected
    assert await other.receive_nothing(0.1)
    for comm in (a, b, other):
        await comm.disconnect()


async def test_a_protocol_shaped_frame_is_just_json_to_a_json_consumer():
    a = await open_socket("/ws/tests/raw_json/lobby/")
    await a.send_to(text_data='{"args": [1], "id": 3}')
    assert (await frame(a))["commands"] == [["json", "lobby", {"args": [1], "id": 3}]]
    assert await a.receive_nothing(0.1), "raw frames carry no call id, so no reply frame"
    await a.disconnect()


async def test_text_frames_and_send_to_caller():
    a = await open_socket("/ws/tests/raw_text/")
    b = await open_socket("/ws/tests/raw_text/")
    await a.send_to(text_data="not json {")
    assert await frame(a) == {"type": "commands", "commands": [["text", "NOT JSON {"]]}
    assert await b.receive_nothing(0.1)
    await a.disconnect()
    await b.disconnect()


async def test_bytes_frames():
    a = await open_socket("/ws/tests/raw_bytes/")
    await a.send_to(bytes_data=b"\x00\xffhi")
    assert await frame(a) == {"type": "commands", "commands": [["bytes", 4, "00ff6869"]]}
    await a.disconnect()


async def test_return_value_handling_is_unchanged():
    a = await open_socket("/ws/tests/raw_morph/")
    await a.send_to(text_data='{"n": 7}')
    assert await frame(a) == {"type": "commands", "commands": [["hypergen.morph", "box", "<p>7</p>"]]}
    await a.disconnect()


@pytest.mark.parametrize("path, send, fragment", [
    ("/ws/tests/raw_json/lobby/", {"bytes_data": b"{}"}, "takes text frames (json); send a string"),
    ("/ws/tests/raw_text/", {"bytes_data": b"abc"}, "takes text frames (text); send a string"),
    ("/ws/tests/raw_bytes/", {"text_data": "abc"}, "takes binary frames; send bytes"),
    ("/ws/tests/raw_json/lobby/", {"text_data": "{not json"}, "is not valid JSON"),
    ("/ws/tests/raw_json/lobby/", {"text_data": "[" * 50 + "]" * 50}, "deeper than 32"),
    ("/ws/tests/raw_json/lobby/", {"text_data": "[" * 100000 + "]" * 100000}, "deeper than 32"),
    ("/ws/tests/raw_morph/", {"text_data": "[1]"}, "'payload' must be dict, got list"),
])
async def test_wrong_kind_of_frame_gets_an_error_frame_and_the_connection_goes_on(path, send, fragment, caplog):
    a = await open_socket(path)
    with caplog.at_level(logging.WARNING, logger="hypergen_ws"):
        await a.send_to(**send)
        error = await frame(a)
    assert error["type"] == "error" and error["code"] == "bad_request" and "id" not in error
    assert fragment in error["message"]
    assert any("Bad frame" in r.getMessage() for r in caplog.records)
    good = {"text_data": '{"n": 1}'} if "bytes" not in path else {"bytes_data": b"ok"}
    await a.send_to(**good)
    assert (await frame(a))["type"] == "commands"
    await a.disconnect()


@pytest.mark.parametrize("path, send", [
    ("/ws/tests/raw_text/", {"text_data": "x" * 101}),
    ("/ws/tests/raw_json/lobby/", {"text_data": json.dumps("x" * 100)}),
    ("/ws/tests/raw_bytes/", {"bytes_data": b"x" * 101}),
])
async def test_size_limit_closes_with_1009(path, send, settings):
    settings.HYPERGEN_WS = {"MAX_MESSAGE_SIZE": 100}
    a = await open_socket(path)
    await a.send_to(**send)
    assert await a.receive_output(1) == {"type": "websocket.close", "code": CLOSE_TOO_BIG}


async def test_exception_in_raw_function_is_a_server_error_without_id(settings):
    settings.DEBUG = False
    a = await open_socket("/ws/tests/raw_text/")
    await a.send_to(text_data="boom")
    assert await frame(a) == {"type": "error", "code": "server_error", "message": "Internal server error."}
    await a.disconnect()


async def test_permission_is_checked_on_connect_and_on_every_frame():
    anon = await open_socket("/ws/tests/raw_guarded/")
    assert await anon.receive_output(1) == {"type": "websocket.close", "code": CLOSE_NOT_AUTHENTICATED}

    @database_sync_to_async
    def make_user():
        user = User.objects.create_user("raw_ann")
        user.user_permissions.add(Permission.objects.get(content_type__app_label="auth", codename="view_user"))
        return User.objects.get(pk=user.pk)

    ann = await make_user()
    a = await open_socket("/ws/tests/raw_guarded/", ann)
    await a.send_to(text_data="hello")
    assert (await frame(a))["commands"] == [["guarded", "raw_ann", "hello"]]
    await database_sync_to_async(ann.user_permissions.clear)()
    await a.send_to(text_data="again")
    assert (await frame(a))["code"] == "permission_denied"
    await a.disconnect()


def test_decorator_validates_frames():
    with pytest.raises(ImproperlyConfigured, match="frames='xml'; use one of 'protocol', 'json', 'text', 'bytes'"):
        @consumer(perm=NO_PERM_REQUIRED, app_label="tests_raw", frames="xml")
        def xml(consumer, request, payload):
            pass
    with pytest.raises(ImproperlyConfigured, match="with receive=False"):
        @consumer(perm=NO_PERM_REQUIRED, app_label="tests_raw", frames="json", receive=False)
        def silent(consumer, request, payload):
            pass
    with pytest.raises(ImproperlyConfigured, match=r"Write def no_payload\(consumer, request, payload, \*, room\)"):
        @consumer(perm=NO_PERM_REQUIRED, app_label="tests_raw", path="<slug:room>/", frames="text")
        def no_payload(consumer, request, *, room):
            pass
    with pytest.raises(ImproperlyConfigured, match="takes one argument after"):
        @consumer(perm=NO_PERM_REQUIRED, app_label="tests_raw", frames="bytes")
        def two_payloads(consumer, request, a, b):
            pass


def test_spec_records_the_frame_mode():
    from tests import feature_consumers as fc

    assert fc.raw_json.frames == "json" and fc.hooked.frames == "protocol"
