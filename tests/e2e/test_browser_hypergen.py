"""A page built with django-hypergen, unchanged, calling a hypergen_ws consumer in real Chromium.

The Hypergen chat of the demo project (testproject/hgdemo) is the "Full example" of Hypergen's websocket docs:
Hypergen's own client (``hypergen/dist/hypergen.js``) opens the socket and calls ``hgdemo.chat``
(``@consumer(protocol="hypergen")``) through ``callback(...)``.
"""
from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

from testproject.settings import DEMO_PUBLISH_KEY
from tests.e2e.conftest import OpenPage, eventually
from tests.support.browser import expect
from tests.support.fixtures import require_module
from tests.support.servers import AsgiServer

CHAT = "/hypergen/chat/"


def connections(server: AsgiServer, label: str) -> int:
    """How many sockets of consumer ``label`` the server has open, from its stats endpoint."""
    request = urllib.request.Request(f"{server.url}/hypergen_ws/stats/",
                                     headers={"Authorization": f"Bearer {DEMO_PUBLISH_KEY}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        stats = json.load(response)
    return int(stats["consumers"].get(label, {}).get("connections", 0))


def messages(page: Any) -> Any:
    return page.locator("#messages li")


def test_two_hypergen_pages_chat_through_a_hypergen_ws_consumer(server: AsgiServer, open_page: OpenPage) -> None:
    require_module("hypergen", "pip install -e '.[dev]' (django-hypergen is a test dependency)")
    first = open_page(server, CHAT, name="first")
    second = open_page(server, CHAT, name="second")
    assert first.evaluate("() => typeof hypergen.applyCommands") == "function"  # Hypergen's client, not ours
    eventually(lambda: connections(server, "hgdemo.chat") == 2, "both pages connected", timeout=10)

    # The button: callback(url, "chat__message_from_frontend", <the input>) over the socket.
    first.fill("#message", "Hello from the first page")
    first.click("#send")
    for page in (first, second):
        expect(messages(page)).to_have_count(1)
        expect(messages(page).last).to_have_text("Hello from the first page")
        expect(page.locator("#counter")).to_have_text("Length of last message is: 25")

    # Enter in the input: the onkeyup callback with when=["hypergen.when.keycode", "Enter"] and clear=True.
    second.fill("#message", "<b>Enter</b> from the second")
    second.press("#message", "Enter")
    for page in (first, second):
        expect(messages(page)).to_have_count(2)
        expect(messages(page).last).to_have_text("<b>Enter</b> from the second")  # escaped by Hypergen's li()
        expect(page.locator("#messages b")).to_have_count(0)
    expect(second.locator("#message")).to_have_value("")

    # The "very simple consumer" answers the page that called it only (send_to="caller").
    eventually(lambda: connections(server, "hgdemo.increment") == 2, "both pages connected", timeout=10)
    first.click("#increment")
    expect(first.locator("#number")).to_have_text("The number is 42")
    expect(second.locator("#number")).not_to_contain_text("The number is")

    link_text = first.locator("#backend-link").locator("xpath=..")
    expect(link_text).to_have_text(re.compile(r"to try sending a chat message from the backend\.$"))  # one period

    # From the backend: a liveview publishes with consumer_command().
    backend = open_page(server, "/hypergen/send_message_from_backend/", name="backend")
    expect(backend.locator("#sent")).to_be_visible()
    for page in (first, second):
        expect(messages(page)).to_have_count(3)
        expect(messages(page).last).to_have_text("Server message!")

    # A call the consumer refuses (a number where its signature says str) shows as console.error, as Hypergen's
    # own consumers report errors; the socket stays open.
    errors: list[str] = []
    first.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    first.evaluate("""() => hypergen.websocket.WEBSOCKETS[Object.keys(hypergen.websocket.WEBSOCKETS)[0]]
                             .send(JSON.stringify({args: ["chat__message_from_frontend", 42], meta: {}}))""")
    first.fill("#message", "Still connected")
    first.click("#send")
    for page in (first, second):
        expect(messages(page).last).to_have_text("Still connected")
    # Several round trips later, the second page still shows no number: the increment went to the caller only.
    expect(second.locator("#number")).not_to_contain_text("The number is")
    # The error frame came before the last message.
    eventually(lambda: any(text == "hypergen_ws: chat() argument 'message' must be str, got int. (bad_request)"
                           for text in errors), errors)

    # Closing, as Hypergen's docs show it: command("hypergen.websocket.close", url) is its client's own.
    second.evaluate("() => Object.keys(hypergen.websocket.WEBSOCKETS).forEach((url) => hypergen.websocket.close(url))")
    eventually(lambda: connections(server, "hgdemo.chat") == 1, "the second page closed its socket", timeout=10)
