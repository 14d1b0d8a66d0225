"""command(): collected per call, refused outside one."""
from __future__ import annotations

import pytest

from hypergen_ws.core.commands import collecting, command, stop_collecting


def test_collects_during_a_call():
    commands, token = collecting()
    try:
        command("hypergen.append", "id", "<b>")
        command("alert", 1)
    finally:
        stop_collecting(token)
    assert commands == [["hypergen.append", "id", "<b>"], ["alert", 1]]


def test_refused_outside_a_call_with_the_alternative():
    with pytest.raises(RuntimeError, match=r"consumer_command\(group_name"):
        command("alert")


def test_name_must_be_a_string():
    commands, token = collecting()
    try:
        with pytest.raises(TypeError, match="non-empty str"):
            command("")
    finally:
        stop_collecting(token)
