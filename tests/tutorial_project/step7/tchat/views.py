from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .models import Message


@login_required
def room(request, room_name):
    latest = Message.objects.filter(room=room_name).select_related("user").order_by("-created")[:50]
    return render(request, "tchat/room.html", {"room_name": room_name, "chat_messages": list(latest)[::-1]})
