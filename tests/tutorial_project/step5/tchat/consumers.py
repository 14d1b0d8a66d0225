from django.template.loader import render_to_string

from hypergen_ws import command, consumer

from .models import Message


@consumer(perm="tchat.can_chat", path="<slug:room_name>/")
def send_message(consumer, request, text: str, *, room_name):
    """Store the message, then append it to #messages on every page of the room."""
    text = text.strip()[:500]
    if text:
        message = Message.objects.create(room=room_name, user=request.user, text=text)
        command("hypergen.append", "messages", render_to_string("tchat/message.html", {"message": message}))
