"""The shared counter demo in a real browser: three pages change it at once and end up agreeing with the database."""
from __future__ import annotations

from tests.e2e.conftest import OpenPage, db_value, wait_open
from tests.support.browser import expect
from tests.support.servers import AsgiServer

COUNTER = "/counter/"

#: Clicks a button ``n`` times without waiting: every click sends a call before any reply has come back.
BURST = "([id, n]) => { for (let i = 0; i < n; i++) document.getElementById(id).click(); }"


def counter_value(server: AsgiServer) -> int:
    return int(db_value(server, "SELECT value FROM counter_counter WHERE name = 'shared'"))


def test_three_pages_clicking_at_once_agree_with_the_database(server: AsgiServer, open_page: OpenPage) -> None:
    pages = [open_page(server, COUNTER, name=f"counter-{n}") for n in range(3)]
    for page in pages:
        wait_open(page)
        expect(page.locator("#counter-value")).to_have_text("0")

    # Bursts on every page, started before any of them is answered, then a few real clicks in between.
    pages[0].evaluate(BURST, ["increment", 12])
    pages[1].evaluate(BURST, ["decrement", 5])
    pages[2].evaluate(BURST, ["increment", 9])
    pages[1].click("#increment")
    pages[2].click("#decrement")
    pages[0].click("#decrement")
    expected = 12 - 5 + 9 + 1 - 1 - 1

    for page in pages:
        expect(page.locator("#counter-value")).to_have_text(str(expected), timeout=10_000)
    assert counter_value(server) == expected
    for page in pages:
        expect(page.locator("#counter-error")).to_be_hidden()
        # The fragment was morphed in place: still one value element.
        expect(page.locator("#counter .counter-value")).to_have_count(1)

    # A page opened now renders the same value.
    late = open_page(server, COUNTER, name="late")
    expect(late.locator("#counter-value")).to_have_text(str(expected))
