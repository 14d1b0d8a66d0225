"""The liveviews of the Hypergen chat: Hypergen's websocket docs ("Full example"), unchanged but for the URL of
the consumer (``chat.reverse()``) and the publishing from the backend (``consumer_command``)."""
from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator
from typing import Any

from hypergen.imports import (NO_PERM_REQUIRED, THIS, a, body, button, callback, command, div, doctype, h3, head,
                              html, input_, liveview, p, raw, style, title, ul, ws_url)

from hypergen_ws import consumer_command

from .consumers import chat as chat_consumer
from .consumers import increment, update_page


@contextmanager
def base_template() -> Iterator[None]:
    doctype()
    with html():
        with head():
            title("Hypergen chat · hypergen_ws demos")
        with body():
            p(a("hypergen_ws demos", href="/"))
            with div(id_="content"):
                yield


base_template.target_id = "content"  # type: ignore[attr-defined]


def chat_ws_url() -> str:
    """The consumer's websocket URL, absolute (``ws://`` or ``wss://``), as Hypergen's client wants it."""
    return ws_url(chat_consumer.reverse())


@liveview(perm=NO_PERM_REQUIRED, base_template=base_template)
def chat(request: Any) -> None:
    h3("Websockets chat")
    p("Open multiple tabs to see messages pushed out to all listening consumers.")
    # Open a websocket on the client. Can be closed at any point with: command("hypergen.websocket.close", url)
    command("hypergen.websocket.open", chat_ws_url())

    # Some custom styling.
    style(""" input, textarea {width: 100%} """)

    # The consumer will write here.
    with p(id_="counter"):
        raw("&nbsp;")

    # The input field where the user types the chat message. Pressing Enter sends it to the consumer.
    message = input_(
        id_="message",
        type_="text",
        placeholder="Write your message here and press enter.",
        autofocus=True,
        onkeyup=callback(chat_ws_url(), "chat__message_from_frontend", THIS, when=["hypergen.when.keycode", "Enter"],
                         clear=True),
    )
    # So does the button, with the input's value.
    button("Send", id_="send", onclick=callback(chat_ws_url(), "chat__message_from_frontend", message))

    # Chat messages are shown here.
    ul(id_="messages")

    # The "very simple consumer": only this page's number changes.
    increment_url = ws_url(increment.reverse())
    command("hypergen.websocket.open", increment_url)
    with p(id_="number"):
        raw("&nbsp;")
    button("Increment", id_="increment", onclick=callback(increment_url, 41))

    # Backend send.
    p("Visit", a("this page", href=send_message_from_backend.reverse(), target="_blank", id_="backend-link"),
      "to try sending a chat message from the backend", sep=" ", end=".")


@liveview(perm=NO_PERM_REQUIRED, base_template=base_template)
def send_message_from_backend(request: Any) -> None:
    consumer_command(chat_consumer.group_name(), update_page(request, "Server message!"))
    command("alert", "Message will appear in the chatroom!")
    p("A message was sent to the chat room.", id_="sent")
