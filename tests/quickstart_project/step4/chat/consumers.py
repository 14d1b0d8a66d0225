from django.utils.html import format_html

from hypergen_ws import NO_PERM_REQUIRED, command, consumer


@consumer(perm=NO_PERM_REQUIRED, path="<slug:room_name>/")
def send_message(consumer, request, message: str, *, room_name):
    command("hypergen.append", "messages", format_html("<li>{}</li>", message))
