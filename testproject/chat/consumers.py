"""The chat room's websocket consumer.

``send_message`` is served at ``/ws/chat/send_message/<room_name>/``; every socket of a room joins the same group
(``send_message.group_name(room_name=...)``). A message stored by the function reaches everyone in the room
through ``changes.py``, which publishes every saved, edited or deleted message to its room after the commit.

``history=50`` numbers every frame published to a room and keeps the last 50: a page that reconnects (a network
drop, a restarted server) gets what it missed, or a ``resync`` event when that is no longer possible, on which the
room page reloads its messages. ``presence=True`` tells every page of a room who else is connected (the page's
"Online" list). See docs/delivery.rst and docs/presence.rst.
"""
from __future__ import annotations

import logging
from typing import Any

from hypergen_ws import consumer

from .models import MAX_MESSAGE_LENGTH, Message, Room

logger = logging.getLogger(__name__)


@consumer(perm="chat.can_chat", path="<slug:room_name>/", history=50, presence=True)
def send_message(consumer: Any, request: Any, text: str, *, room_name: str) -> None:
    """Store ``text`` as a message of the room; everyone in the room sees it appended to ``#messages``.

    A plain (sync) function: the decorator runs it in a worker thread, so the ORM can be used directly. It sends
    nothing itself: every saved message, from here, the Django admin or anywhere else, is published to its room
    by ``changes.message_room`` (``@model_changes``) once it is committed.

    Validation: the ``text: str`` annotation makes hypergen_ws answer a non-string argument with a
    ``bad_request`` error to the caller, before this function runs. An empty or too long text (more than
    ``MAX_MESSAGE_LENGTH`` characters) or an unknown room is ignored and logged: the page's form already refuses
    empty and too long messages (``required``, ``maxlength``), so only hand-made frames get here, and nothing of
    them reaches the other people in the room.
    """
    text = text.strip()
    if not text or len(text) > MAX_MESSAGE_LENGTH:
        logger.warning("chat: ignored an empty or too long message (%d characters) from %s", len(text), request.user)
        return
    room = Room.objects.filter(slug=room_name).first()
    if room is None:
        logger.warning("chat: ignored a message to the unknown room %r", room_name)
        return
    Message.objects.create(room=room, user=request.user, text=text)
