"""Protocol v1 frames: parsing with limits, encoding."""
from __future__ import annotations

import json

import pytest

from hypergen_ws.core import protocol
from hypergen_ws.core.protocol import ProtocolError, parse_call


def parse(text, max_size=10_000, max_depth=8):
    return parse_call(text, max_size=max_size, max_depth=max_depth)


def test_full_and_minimal_frames():
    call = parse('{"args": [1, "a"], "meta": {"k": 1}, "id": "x7"}')
    assert (call.args, call.meta, call.id) == ([1, "a"], {"k": 1}, "x7")
    assert parse("{}").args == []


@pytest.mark.parametrize("text, fragment", [
    ("nope", "not valid JSON"), ("3", "JSON object"), ('{"args": 1}', '"args" must be a list'),
    ('{"id": 1.5}', '"id" must be'), ('{"id": "' + "x" * 65 + '"}', '"id" must be'),
    ('{"x": 1}', "Unknown field"), ('{"args": [[[[[[[[[[1]]]]]]]]]]}', "deeper than 8"),
])
def test_bad_frames(text, fragment):
    with pytest.raises(ProtocolError, match=fragment):
        parse(text)


def test_oversized_frame_asks_to_close_with_1009():
    with pytest.raises(ProtocolError) as excinfo:
        parse('{"args": ["' + "x" * 100 + '"]}', max_size=50)
    assert excinfo.value.close_code == protocol.CLOSE_TOO_BIG


def test_unknown_field_error_keeps_the_id():
    with pytest.raises(ProtocolError) as excinfo:
        parse('{"id": 4, "oops": 1}')
    assert excinfo.value.id == 4


def test_depth_check_is_iterative():
    deep = [[]]
    for _ in range(100_000):
        deep = [deep]
    assert protocol.depth_exceeds(deep, 10)
    assert not protocol.depth_exceeds([[1], {"a": [2]}], 3)


def test_encoders():
    assert json.loads(protocol.message_frame({"ü": 1})) == {"type": "message", "data": {"ü": 1}}
    assert json.loads(protocol.commands_frame([["a", 1]])) == {"type": "commands", "commands": [["a", 1]]}
    assert json.loads(protocol.reply_frame(3)) == {"type": "reply", "id": 3}
    assert json.loads(protocol.error_frame("bad_request", "m")) == {"type": "error", "code": "bad_request",
                                                                     "message": "m"}
    with pytest.raises(TypeError, match="finite numbers only"):
        protocol.message_frame(float("inf"))
