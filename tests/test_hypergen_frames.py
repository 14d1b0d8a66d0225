"""Hypergen's frames (hypergen_ws.features.hypergen): v1 server frames translated, custom values decoded."""
from __future__ import annotations

import datetime
import json

import pytest

from hypergen_ws.core import protocol
from hypergen_ws.features.hypergen import decode_values, to_hypergen


def test_commands_frames_become_their_commands_stamped_or_not():
    text = protocol.commands_frame([["hypergen.append", "x", "<li>é</li>"], ["alert", 1]])
    assert json.loads(to_hypergen(text) or "") == [["hypergen.append", "x", "<li>é</li>"], ["alert", 1]]
    assert to_hypergen(protocol.stamp(text, 7, 99)) == to_hypergen(text)
    # a commands frame encoded some other way (keys in another order) is understood too
    assert json.loads(to_hypergen('{"commands":[["a"]],"type":"commands"}') or "") == [["a"]]


def test_errors_data_replies_and_other_frames():
    error = protocol.error_frame(protocol.BAD_REQUEST, "Frame is not valid JSON", 3)
    assert json.loads(to_hypergen(error) or "") == [["console.error",
                                                       "hypergen_ws: Frame is not valid JSON (bad_request)"]]
    assert json.loads(to_hypergen(protocol.message_frame({"a": [1]})) or "") == [
        ["console.log", "hypergen_ws message:", {"a": [1]}]]
    assert to_hypergen(protocol.reply_frame(3)) is None
    assert json.loads(to_hypergen(protocol.sync_frame(1, 2, 0)) or "")[0][0] == "console.log"


def test_decode_values_mirrors_hypergens_loads():
    assert decode_values([{"_": ["date", "2026-12-01"]}, {"x": {"_": ["time", "08:30"]}}, [{"_": ["float", 1]}]]) == [
        datetime.date(2026, 12, 1), {"x": datetime.time(8, 30)}, [1.0]]
    assert decode_values({"_": "not a pair", "k": 1}) == {"_": "not a pair", "k": 1}
    assert decode_values({"_": ["tuple", [{"_": ["date", "2026-01-01"]}]]}) == (datetime.date(2026, 1, 1),)
    with pytest.raises(protocol.ProtocolError, match="is not a valid datetime"):
        decode_values({"_": ["datetime", 5]})
    with pytest.raises(protocol.ProtocolError, match="must hold a list"):
        decode_values({"_": ["deque", "abc"]})
