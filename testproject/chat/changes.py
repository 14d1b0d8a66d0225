"""Every stored chat message reaches its room, whoever saved it: the room's consumer, the Django admin, a shell.

``message_room`` names the room's group for a message; ``@model_changes`` publishes each save and delete of a
``Message`` to it after the transaction commits (docs/transactions.rst). A message saved in the admin (which saves
inside ``transaction.atomic()``) reaches the room's pages once it is committed, and never when the save fails and
rolls back. ``ChatConfig.ready()`` imports this module, so it is active in every process of the project.
"""
from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string

from hypergen_ws import model_changes

from .consumers import send_message
from .models import Message


def message_commands(message: Message, change: str) -> list[list[Any]]:
    """A new message is appended to ``#messages``, an edited one replaces its element, a deleted one is removed."""
    element_id = f"message-{message.pk}"
    if change == "deleted":
        return [["hypergen.remove", element_id]]
    html = render_to_string("chat/_message.html", {"message": message})
    if change == "created":
        return [["hypergen.append", "messages", html]]
    return [["hypergen.replace", element_id, html]]


@model_changes(Message, commands=message_commands)
def message_room(message: Message, change: str) -> str:
    """The group of the room the message belongs to."""
    return send_message.group_name(room_name=message.room.slug)
