"""Raw frame modes: ``@consumer(..., frames="json" | "text" | "bytes")`` (hypergen_ws.features.raw)."""
from __future__ import annotations

import json
import logging
from functools import partial

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ImproperlyConfigured

from hypergen_ws import NO_PERM_REQUIRED, consumer
from hypergen_ws.core.protocol import CLOSE_NOT_AUTHENTICATED, CLOSE_TOO_BIG
from hypergen_ws.testing import ConsumerCommunicator
from tests import feature_consumers as fc
from tests.recutil import next_close

pytestmark = pytest.mark.django_db(transaction=True)


ws = partial(ConsumerCommunicator, application=fc.application)


@pytest.mark.parametrize("value", [{"a": [1, 2]}, [1, "x"], "plain string", 42, 1.5, True, None])
async def test_json_frames_pass_any_json_value_to_the_whole_group(value):
    async with (ws(fc.raw_json, room="lobby") as a, ws(fc.raw_json, room="lobby") as b,
                ws(fc.raw_json, room="vip") as other):
        await a.send(json.dumps(value))
        expected = {"type": "commands", "commands": [["json", "lobby", value]]}
        assert await a.receive() == expected
        assert await b.receive() == expected
        await other.assert_nothing()


async def test_a_protocol_shaped_frame_is_just_json_to_a_json_consumer():
    async with ws(fc.raw_json, room="lobby") as a:
        await a.send('{"args": [1], "id": 3}')
        assert (await a.receive())["commands"] == [["json", "lobby", {"args": [1], "id": 3}]]
        await a.assert_nothing()  # raw frames carry no call id, so no reply frame


async def test_text_frames_and_send_to_caller():
    async with ws(fc.raw_text) as a, ws(fc.raw_text) as b:
        await a.send("not json {")
        assert await a.receive() == {"type": "commands", "commands": [["text", "NOT JSON {"]]}
        await b.assert_nothing()


async def test_bytes_frames():
    async with ws(fc.raw_bytes) as a:
        await a.send(b"\x00\xffhi")
        assert await a.receive() == {"type": "commands", "commands": [["bytes", 4, "00ff6869"]]}


async def test_return_value_handling_is_unchanged():
    async with ws(fc.raw_morph) as a:
        await a.send('{"n": 7}')
        assert await a.receive() == {"type": "commands", "commands": [["hypergen.morph", "box", "<p>7</p>"]]}


@pytest.mark.parametrize("target, sent, fragment", [
    ((fc.raw_json, "lobby"), b"{}", "takes text frames (json); send a string"),
    ((fc.raw_text, None), b"abc", "takes text frames (text); send a string"),
    ((fc.raw_bytes, None), "abc", "takes binary frames; send bytes"),
    ((fc.raw_json, "lobby"), "{not json", "is not valid JSON"),
    ((fc.raw_json, "lobby"), "[" * 50 + "]" * 50, "deeper than 32"),
    ((fc.raw_json, "lobby"), "[" * 100000 + "]" * 100000, "deeper than 32"),
    ((fc.raw_morph, None), "[1]", "'payload' must be dict, got list"),
])
async def test_wrong_kind_of_frame_gets_an_error_frame_and_the_connection_goes_on(target, sent, fragment, caplog):
    target_consumer, room = target
    async with ws(target_consumer, **({"room": room} if room else {})) as a:
        with caplog.at_level(logging.WARNING, logger="hypergen_ws"):
            await a.send(sent)
            error = await a.receive()
        assert error["type"] == "error" and error["code"] == "bad_request" and "id" not in error
        assert fragment in error["message"]
        assert any("Bad frame" in r.getMessage() for r in caplog.records)
        await a.send(b"ok" if target_consumer is fc.raw_bytes else '{"n": 1}')
        assert (await a.receive())["type"] == "commands"


@pytest.mark.parametrize("target, sent", [
    ((fc.raw_text, None), "x" * 101),
    ((fc.raw_json, "lobby"), json.dumps("x" * 100)),
    ((fc.raw_bytes, None), b"x" * 101),
])
async def test_size_limit_closes_with_1009(target, sent, settings):
    settings.HYPERGEN_WS = {"MAX_MESSAGE_SIZE": 100}
    target_consumer, room = target
    async with ws(target_consumer, **({"room": room} if room else {})) as a:
        await a.send(sent)
        assert await next_close(a) == (CLOSE_TOO_BIG, "")


async def test_exception_in_raw_function_is_a_server_error_without_id(settings):
    settings.DEBUG = False
    async with ws(fc.raw_text) as a:
        await a.send("boom")
        assert await a.receive() == {"type": "error", "code": "server_error", "message": "Internal server error."}


async def test_permission_is_checked_on_connect_and_on_every_frame():
    async with ws(fc.raw_guarded) as anon:
        assert await next_close(anon) == (CLOSE_NOT_AUTHENTICATED, "")

    @database_sync_to_async
    def make_user():
        user = User.objects.create_user("raw_ann")
        user.user_permissions.add(Permission.objects.get(content_type__app_label="auth", codename="view_user"))
        return User.objects.get(pk=user.pk)

    ann = await make_user()
    async with ws(fc.raw_guarded, user=ann) as a:
        await a.send("hello")
        assert (await a.receive())["commands"] == [["guarded", "raw_ann", "hello"]]
        await database_sync_to_async(ann.user_permissions.clear)()
        await a.send("again")
        assert (await a.receive())["code"] == "permission_denied"


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
    assert fc.raw_json.frames == "json" and fc.hooked.frames == "protocol"
