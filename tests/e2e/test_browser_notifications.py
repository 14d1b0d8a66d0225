"""The notifications demo in a real browser: pushes from a sync view, an async view and a thread."""
from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import OpenPage, wait_open
from tests.support.browser import expect
from tests.support.servers import AsgiServer

NOTIFICATIONS = "/notifications/"


@pytest.mark.parametrize("user", ["alice", "eve"])
def test_pushes_from_every_kind_of_view_reach_every_open_page(
    server: AsgiServer, open_page: OpenPage, user: str
) -> None:
    pusher = open_page(server, NOTIFICATIONS, user)  # pushing needs a login, no permission
    watcher = open_page(server, NOTIFICATIONS, name="anonymous-watcher")  # watching is public
    for page in (pusher, watcher):
        wait_open(page)
    expect(watcher.locator("#notify-form")).to_have_count(0)

    sources = {"notify-sync": "a sync view", "notify-async": "an async view", "notify-thread": "a background thread"}
    for button, source in sources.items():
        text = f"{user} pushes through {button}"
        pusher.fill("#notify-input", text)
        pusher.click(f"#{button}")
        expect(pusher.locator("#notify-input")).to_have_value("")  # the POST succeeded
        for page in (pusher, watcher):
            item = page.locator("#notifications li.notification", has_text=text)
            expect(item).to_have_count(1, timeout=10_000)
            expect(item).to_contain_text(f"(from {source})")
    for page in (pusher, watcher):
        # Newest first, each exactly once.
        items = page.locator("#notifications li.notification")
        expect(items).to_have_count(3)
        expect(items.first).to_contain_text("notify-thread")
        expect(items.last).to_contain_text("notify-sync")
    expect(pusher.locator("#notify-error")).to_be_hidden()


def test_notification_text_is_shown_as_text(server: AsgiServer, open_page: OpenPage) -> None:
    pusher = open_page(server, NOTIFICATIONS, "alice")
    wait_open(pusher)
    pusher.fill("#notify-input", "<img src=x onerror=\"window.__injected = 1\"> <b>bold?</b>")
    pusher.click("#notify-sync")
    item = pusher.locator("#notifications li.notification")
    expect(item).to_contain_text("<b>bold?</b>")
    expect(item.locator("img, b")).to_have_count(0)
    assert pusher.evaluate("window.__injected === undefined")



def test_the_empty_feed_is_a_note_and_rows_keep_the_cards_margins(server: AsgiServer, open_page: OpenPage) -> None:
    page = open_page(server, NOTIFICATIONS, "alice")
    wait_open(page)
    expect(page.locator("#notifications")).to_be_hidden()  # an empty card would draw a stray line
    expect(page.locator("#notifications-empty")).to_be_visible()
    page.fill("#notify-input", "Deploy finished")
    page.click("#notify-sync")
    item = page.locator("#notifications li.notification")
    expect(item).to_have_count(1, timeout=10_000)
    expect(page.locator("#notifications")).to_be_visible()
    expect(page.locator("#notifications-empty")).to_be_hidden()
    list_left = page.locator("#notifications").evaluate("e => e.getBoundingClientRect().left")
    text_left = item.locator("time").evaluate("e => e.getBoundingClientRect().left")
    assert text_left - list_left >= 16, "the row's text starts inside the card's padding, not at its border"


def test_a_notification_without_a_time_shows_when_it_arrived(server: AsgiServer, open_page: OpenPage) -> None:
    """The command line (python -m hypergen_ws publish) and other languages' publishers send no sent_at."""
    from hypergen_ws.client import PublishClient
    from testproject.notifications.consumers import listen
    from testproject.settings import DEMO_PUBLISH_KEY

    page = open_page(server, NOTIFICATIONS, name="watcher")
    wait_open(page)
    PublishClient(f"{server.url}/hypergen_ws/", DEMO_PUBLISH_KEY, timeout=10).send(
        listen.group_name(), {"text": "From the command line"})
    time = page.locator("#notifications li.notification", has_text="From the command line").locator("time")
    expect(time).to_have_text(re.compile(r"\d"))  # a time, not an empty element
    expect(time).to_have_attribute("title", "received at (the publisher sent no time)")
