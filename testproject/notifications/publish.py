"""Building and publishing a notification, shared by the views and the ``notify`` management command."""
from __future__ import annotations

from django.utils import timezone

from hypergen_ws import agroup_send, group_send

from .consumers import listen

#: Longest notification text accepted from the demo form or the command line.
MAX_TEXT_LENGTH = 200


def notification(text: str, source: str) -> dict[str, str]:
    """The JSON payload every open notifications page receives as ``event.detail.data``."""
    return {"text": text, "source": source, "sent_at": timezone.now().isoformat()}


def notify(text: str, source: str) -> None:
    """Publish from sync code: a sync view, a thread, a management command, a Celery task."""
    group_send(listen.group_name(), notification(text, source))


async def anotify(text: str, source: str) -> None:
    """Publish from async code: an async view, a consumer."""
    await agroup_send(listen.group_name(), notification(text, source))
