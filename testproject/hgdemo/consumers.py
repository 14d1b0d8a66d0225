"""The consumer of the Hypergen chat: Hypergen's ``ChatConsumer`` (its websocket docs, "Full example") as one
``@consumer(protocol="hypergen")`` function.

Hypergen's page calls it with ``callback(chat_ws_url(), "chat__message_from_frontend", message)``; what it returns
goes to everyone in its group, as the list of commands Hypergen's client applies. ``increment`` is the "very simple
consumer" of the same docs: it answers only the socket that called it.
"""
from __future__ import annotations

from typing import Any

from hypergen.imports import COMMANDS, context, hypergen, li, span
from hypergen.liveview import command

from hypergen_ws import NO_PERM_REQUIRED, consumer


@consumer(perm=NO_PERM_REQUIRED, protocol="hypergen")
def chat(consumer: Any, request: Any, event_type: str, message: str) -> list[list[Any]] | None:
    """Receives the data sent by the page's callbacks (the ``text: str`` annotations refuse anything else)."""
    if event_type == "chat__message_from_frontend":
        message = message.strip()[:1000]
        if message:
            return update_page(request, message)  # to the entire group
    # ... More event types go here.
    return None


@consumer(perm=NO_PERM_REQUIRED, protocol="hypergen", send_to="caller")
def increment(consumer: Any, request: Any, n: int) -> list[list[Any]]:
    """Hypergen's ``IncrementConsumer``: renders into the element with the id "number", for the caller only."""
    with context(request=request):
        return list(hypergen(increment_template, n,
                             settings=dict(action=True, returns=COMMANDS, target_id="number")))


def increment_template(n: int) -> None:
    span("The number is ", n + 1)


def update_page(request: Any, message: str) -> list[list[Any]]:
    """The commands that show ``message``: Hypergen renders them, as in its own consumer."""
    with context(request=request):
        return list(hypergen(template, message, settings=dict(action=True, returns=COMMANDS, target_id="counter")))


def template(message: str) -> None:
    """Writes into the "counter" id, and appends the message to the list of messages."""
    span("Length of last message is: ", len(message))
    command("hypergen.append", "messages", hypergen(lambda: li(message)))
