"""The notifications demo in a real browser: pushes from a sync view, an async view and a thread."""
from __future__ import annotations

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
