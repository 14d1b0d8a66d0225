"""``python manage.py notify "text"``: push a notification to every open notifications page.

A management command runs in its own process. With ``InMemoryChannelLayer`` (the default when ``REDIS_URL`` is
not set) each process has its own private layer, so a message published here can never reach the server's
sockets: the command says so and stops. With a shared layer (``REDIS_URL=redis://... python manage.py notify
"hi"``, the server started with the same ``REDIS_URL``) it publishes like any view does.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from testproject.notifications.publish import MAX_TEXT_LENGTH, notify

IN_MEMORY_BACKEND = "channels.layers.InMemoryChannelLayer"


def uses_in_memory_layer() -> bool:
    """Whether the default channel layer lives in this process only."""
    backend = getattr(settings, "CHANNEL_LAYERS", {}).get("default", {}).get("BACKEND", "")
    return backend == IN_MEMORY_BACKEND or backend.endswith(".InMemoryChannelLayer")


class Command(BaseCommand):
    help = "Push a notification to every open notifications page (needs a shared channel layer such as Redis)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("text", help=f"The notification, at most {MAX_TEXT_LENGTH} characters.")

    def handle(self, *args: Any, text: str, **options: Any) -> None:
        text = text.strip()
        if not text or len(text) > MAX_TEXT_LENGTH:
            raise CommandError(f"The text must be 1 to {MAX_TEXT_LENGTH} characters long.")
        if uses_in_memory_layer():
            raise CommandError(
                "The channel layer is InMemoryChannelLayer: it lives inside one process, so this command cannot "
                "reach the server's websockets and nothing was sent. Run the server and this command with the same "
                'REDIS_URL (for example REDIS_URL=redis://127.0.0.1:6379/0 python manage.py notify "hi"), or push '
                "from the notifications page, which publishes inside the server process."
            )
        notify(text, "a management command")
        self.stdout.write(self.style.SUCCESS(f"Notification sent: {text}"))
