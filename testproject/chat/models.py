"""Chat rooms and their messages."""
from __future__ import annotations

from django.conf import settings
from django.db import models

#: Longest message a user may send; the form, the consumer and the model agree on it.
MAX_MESSAGE_LENGTH = 500


class Room(models.Model):
    """A chat room, addressed by its slug in page and websocket URLs."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Message(models.Model):
    """One message posted in a room."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_messages")
    text = models.CharField(max_length=MAX_MESSAGE_LENGTH)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created", "pk"]
        permissions = [("can_chat", "Can post messages in chat rooms")]

    def __str__(self) -> str:
        return f"{self.user}: {self.text[:40]}"
