"""Chat pages, and two HTTP endpoints that publish to a room: one sync view, one async view."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import aget_object_or_404, get_object_or_404, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from hypergen_ws import aconsumer_command, consumer_command, get_position

from .consumers import send_message
from .models import MAX_MESSAGE_LENGTH, Room

#: How many of the latest messages a room page shows.
HISTORY_LENGTH = 50


def room_list(request: HttpRequest) -> HttpResponse:
    """Every room, with a link to its page."""
    return render(request, "chat/room_list.html", {"rooms": Room.objects.all()})


@login_required
def room(request: HttpRequest, room_name: str) -> HttpResponse:
    """A room: its latest messages, a form to post, who is online, and a live connection to the room's consumer."""
    room = get_object_or_404(Room, slug=room_name)
    # The room's position (the seq of its last published frame) is read *before* the messages: the socket opens
    # at this position and gets every frame published after it, so a message stored and published while the page
    # is rendered or loading is never lost. It may arrive twice (shown here and replayed); the page drops the
    # copy by its element id.
    seq, epoch = get_position(send_message.group_name(room_name=room.slug))
    latest = list(room.messages.select_related("user").order_by("-created", "-pk")[:HISTORY_LENGTH])
    user = request.user
    return render(
        request,
        "chat/room.html",
        {
            "room": room,
            "ws_url": f"{send_message.reverse(room_name=room.slug)}?hgws_seq={seq}&hgws_epoch={epoch}",
            "chat_messages": latest[::-1],
            "can_chat": user.has_perm("chat.can_chat"),
            "can_announce": user.is_staff or user.has_perm("chat.can_chat"),
            "max_length": MAX_MESSAGE_LENGTH,
        },
    )


def _announcement_text(request: HttpRequest) -> str | None:
    text = request.POST.get("text", "").strip()
    return text if text and len(text) <= MAX_MESSAGE_LENGTH else None


def _announcement(user, text: str, via: str) -> list[list[str]]:
    html = render_to_string("chat/_announcement.html", {"user": user, "text": text, "via": via})
    return [["hypergen.append", "messages", html]]


@require_POST
@login_required
def announce(request: HttpRequest, room_name: str) -> HttpResponse:
    """Publish an announcement to everyone in the room, from a sync view (``consumer_command``).

    POST only, CSRF protected (Django's middleware), for staff and users with ``chat.can_chat``.
    Announcements are not stored: they reach the people in the room now, and are gone on reload.
    """
    if not (request.user.is_staff or request.user.has_perm("chat.can_chat")):
        raise PermissionDenied("Announcing needs the chat.can_chat permission.")
    room = get_object_or_404(Room, slug=room_name)
    text = _announcement_text(request)
    if text is None:
        return HttpResponseBadRequest(f"Send a non-empty 'text' of at most {MAX_MESSAGE_LENGTH} characters.")
    consumer_command(send_message.group_name(room_name=room.slug), _announcement(request.user, text, "a sync view"))
    return JsonResponse({"ok": True, "room": room.slug, "via": "sync"})


@require_POST
@login_required
async def announce_async(request: HttpRequest, room_name: str) -> HttpResponse:
    """The same as :func:`announce`, from an async view (``await aconsumer_command``)."""
    user = await request.auser()
    if not (user.is_staff or await user.ahas_perm("chat.can_chat")):
        raise PermissionDenied("Announcing needs the chat.can_chat permission.")
    room = await aget_object_or_404(Room, slug=room_name)
    text = _announcement_text(request)
    if text is None:
        return HttpResponseBadRequest(f"Send a non-empty 'text' of at most {MAX_MESSAGE_LENGTH} characters.")
    await aconsumer_command(send_message.group_name(room_name=room.slug), _announcement(user, text, "an async view"))
    return JsonResponse({"ok": True, "room": room.slug, "via": "async"})
