"""URLconf of the publish-on-commit tests, and the example view of docs/transactions.rst."""
from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_POST

from hypergen_ws import group_send
from testproject.chat.models import Room
from tests import sample_consumers as sc


def room_group(slug: str) -> str:
    """The group of the pages that show the room ``slug``."""
    return sc.echo.group_name(room=slug)


@require_POST
def rename_room(request: HttpRequest, slug: str) -> HttpResponse:
    """Rename a room; the pages showing it hear of the new name once it is committed."""
    with transaction.atomic():
        room = Room.objects.select_for_update().get(slug=slug)
        room.name = request.POST["name"]
        room.save()
        group_send(room_group(slug), {"renamed": room.name}, on_commit=True)
        if room.name.startswith("!"):  # anything that fails later in the transaction...
            raise ValueError("Room names cannot start with '!'.")  # ...rolls back the rename and the message
    return HttpResponse(f"Renamed to {room.name}")


class ViewFailed(Exception):
    """Raised by the view after it stored and published, to make Django roll back an ATOMIC_REQUESTS request."""


def store_and_publish(request: HttpRequest, room: str, outcome: str) -> HttpResponse:
    """Create the room ``room``, publish its slug and ``on_commit`` to the group of ``room``, then return or raise.

    ``?on_commit=1`` publishes with ``on_commit=True``, ``?on_commit=0`` with ``on_commit=False``; without it the
    ``PUBLISH_ON_COMMIT`` setting decides.
    """
    stored = Room.objects.create(slug=room, name=room)
    flag = request.GET.get("on_commit")
    on_commit = None if flag is None else flag == "1"
    group_send(room_group(room), {"stored": stored.slug, "on_commit": on_commit}, on_commit=on_commit)
    if outcome == "fail":
        raise ViewFailed(f"the view failed after storing and publishing room {room!r}")
    return HttpResponse("stored")


urlpatterns = [
    path("rooms/<slug:slug>/rename/", rename_room),
    path("store/<slug:room>/<str:outcome>/", store_and_publish),
]
