"""manage.py hypergen_ws_consumers."""
from __future__ import annotations

import json
from io import StringIO

from django.core.management import call_command


def test_lists_every_consumer_with_route_group_and_permission():
    out = StringIO()
    call_command("hypergen_ws_consumers", stdout=out)
    text = out.getvalue()
    assert "chat.send_message" in text
    assert "/ws/chat/send_message/<slug:room_name>/" in text
    assert "hgws.chat.send_message.room_name.{room_name}" in text
    assert "chat.can_chat" in text


def test_json_output():
    out = StringIO()
    call_command("hypergen_ws_consumers", "--json", stdout=out)
    rows = {row["label"]: row for row in json.loads(out.getvalue())}
    assert rows["chat.send_message"]["perm"] == "chat.can_chat"
    assert rows["counter.increment"]["perm"] == "NO_PERM_REQUIRED"
