"""URLconf of the publish-on-commit tests, with the example views of docs/transactions.rst, taken from the page."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from hypergen_ws import group_send
from testproject.chat.models import Room
from tests import sample_consumers as sc
from tests.support import pages


def room_group(slug: str) -> str:
    """The group of the pages that show the room ``slug``."""
    return sc.echo.group_name(room=slug)


#: docs/transactions.rst's chat/views.py, run as a module of the demo's chat app (its relative imports).
page_views = pages.load("transactions.rst", "chat/views.py", package="testproject.chat")


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
    path("rooms/<slug:slug>/rename/", page_views.rename_room),
    path("store/<slug:room>/<str:outcome>/", store_and_publish),
]
