from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from hypergen_ws import consumer_command

from .consumers import send_message
from .models import Message


@login_required
def room(request, room_name):
    latest = Message.objects.filter(room=room_name).select_related("user").order_by("-created")[:50]
    return render(request, "tchat/room.html", {"room_name": room_name, "chat_messages": list(latest)[::-1]})


@require_POST
@permission_required("tchat.can_chat", raise_exception=True)
def announce(request, room_name):
    text = request.POST.get("text", "").strip()[:500]
    if not text:
        return HttpResponseBadRequest("Send a non-empty text.")
    html = format_html('<li class="announcement">📣 {}</li>', text)
    consumer_command(send_message.group_name(room_name=room_name), [["hypergen.append", "messages", html]])
    return HttpResponse(status=204)  # "No Content": the browser stays on the page
