"""The chat demo in a real browser: rooms, refused sockets, and a server that crashes and comes back.

Every test starts the demo project in its own daphne process and logs the demo accounts in through the login
page (alice and bob have ``chat.can_chat``, eve has not).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.conftest import OpenPage, db_value, wait_open, websocket_count
from tests.support.browser import expect
from tests.support.servers import AsgiServer

LOBBY = "/chat/lobby/"
VIP = "/chat/vip/"
LOBBY_SOCKET = "/ws/chat/send_message/lobby/"

#: How long a page is watched for a reconnect that must not happen. The first reconnect of the client comes
#: 250-500 ms after a close (docs/javascript.rst, "Reconnecting"); three times that leaves a wide margin.
NO_RECONNECT_WINDOW_MS = 1500


def post(page: Any, text: str) -> None:
    """Type ``text`` into the message form and send it; returns once the server has answered the call.

    The page empties the input when the call's promise resolves (the server's reply frame).
    """
    page.fill("#message-input", text)
    page.click("#message-send")
    expect(page.locator("#message-input")).to_have_value("", timeout=10_000)


def messages(page: Any) -> Any:
    return page.locator("#messages li")


def online(page: Any) -> Any:
    return page.locator("#online li")


def online_user(page: Any, username: str) -> Any:
    return page.locator(f'#online li[data-username="{username}"]')


def states(page: Any, fragment: str) -> list[dict[str, Any]]:
    """The connection states the client reported for sockets whose URL contains ``fragment``, in order."""
    return page.evaluate("(fragment) => window.__wsStates.filter((s) => s.url.includes(fragment))", fragment)


def test_people_in_a_room_see_each_others_messages_and_other_rooms_see_none(
    server: AsgiServer, open_page: OpenPage, artifacts_dir: Path
) -> None:
    alice = open_page(server, LOBBY, "alice")
    bob = open_page(server, LOBBY, "bob")
    elsewhere = open_page(server, VIP, "bob", name="bob-in-vip")
    for page in (alice, bob, elsewhere):
        wait_open(page)
        expect(messages(page)).to_have_count(0)

    post(alice, "Hello from alice")
    for page in (alice, bob):
        expect(messages(page).last).to_contain_text("alice Hello from alice")
    post(bob, "Hi alice, bob here")
    for page in (alice, bob):
        expect(messages(page)).to_have_count(2)
        expect(messages(page).last).to_contain_text("bob Hi alice, bob here")

    # A message in the other room is a barrier: published after the lobby's, it arrives after them on the same
    # server. Once it is shown, anything of the lobby would have been shown too.
    post(elsewhere, "Only for the VIP lounge")
    expect(messages(elsewhere)).to_have_count(1)
    expect(messages(elsewhere)).to_contain_text("bob Only for the VIP lounge")
    # And the other way round: a later lobby message arrives, the VIP message never did.
    post(alice, "Still in the lobby")
    for page in (alice, bob):
        expect(messages(page)).to_have_count(3)
        expect(messages(page).last).to_contain_text("Still in the lobby")
        expect(page.locator("#messages")).not_to_contain_text("VIP lounge")
    expect(messages(elsewhere)).to_have_count(1)

    # Markup in a message is text, in the live update as in the stored history.
    post(bob, '<img src=x onerror="window.__injected = 1"> <b>not bold</b>')
    for page in (alice, bob):
        expect(messages(page).last).to_contain_text('<img src=x onerror="window.__injected = 1"> <b>not bold</b>')
        expect(page.locator("#messages img, #messages li > b + b")).to_have_count(0)
        assert page.evaluate("() => window.__injected === undefined")

    # The messages were stored, in their rooms.
    assert db_value(server, "SELECT count(*) FROM chat_message m JOIN chat_room r ON m.room_id = r.id "
                            "WHERE r.slug = 'lobby'") == 4
    bob.reload()
    wait_open(bob)
    expect(messages(bob)).to_have_count(4)
    expect(bob.locator("#messages img")).to_have_count(0)
    # A message stored while a page loads can be both in the page and replayed to its socket (which opens at the
    # position read before the messages): the page keeps one element per message id.
    bob.evaluate("() => hypergen.append('messages', document.querySelector('#messages li.message').outerHTML)")
    post(bob, "After a copy")
    expect(messages(bob)).to_have_count(5)
    expect(messages(bob).last).to_contain_text("bob After a copy")

    screenshot = artifacts_dir / "chat.png"
    screenshot.unlink(missing_ok=True)
    alice.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    print(f"screenshot of the chat page: {screenshot}")


def test_the_online_list_shows_who_is_in_the_room_and_drops_who_left(
    server: AsgiServer, open_page: OpenPage
) -> None:
    alice = open_page(server, LOBBY, "alice")
    wait_open(alice)
    expect(online(alice)).to_have_count(1)  # the "list" frame: alice herself
    expect(online_user(alice, "alice")).to_contain_text("alice 1 connection")

    bob = open_page(server, LOBBY, "bob")
    elsewhere = open_page(server, VIP, "bob", name="bob-in-vip")
    eve = open_page(server, LOBBY, "eve")
    wait_open(bob)
    wait_open(elsewhere)
    expect(eve.locator("#ws-state")).to_have_attribute("data-code", "4403")
    for page in (alice, bob):
        # bob's page learns of alice from its "list" frame, alice's page of bob from the "join" frame.
        expect(online(page)).to_have_count(2)
        expect(online_user(page, "alice")).to_contain_text("alice 1 connection")
        expect(online_user(page, "bob")).to_contain_text("bob 1 connection")
    expect(online(elsewhere)).to_have_count(1)  # the VIP lounge has only bob's other socket
    expect(online_user(elsewhere, "bob")).to_be_visible()
    expect(online(eve)).to_have_count(0)  # a refused socket is nobody's presence

    # A second page of alice: its own list counts both of her sockets; the others get no frame (not her first).
    alice_again = open_page(server, LOBBY, "alice", name="alice-2nd-page")
    wait_open(alice_again)
    expect(online_user(alice_again, "alice")).to_contain_text("alice 2 connections")
    alice_again.close()  # not her last socket: no "leave"
    bob.wait_for_timeout(NO_RECONNECT_WINDOW_MS)  # an absence can only be observed for a while
    expect(online_user(bob, "alice")).to_be_visible()
    expect(online(alice)).to_have_count(2)

    bob.close()  # bob's last socket in the lobby: "leave"
    expect(online(alice)).to_have_count(1)
    expect(online_user(alice, "bob")).to_have_count(0)
    expect(online_user(alice, "alice")).to_be_visible()
    expect(online_user(elsewhere, "bob")).to_be_visible()  # another room, another group


def test_a_user_without_the_permission_is_refused_and_the_page_says_so(
    server: AsgiServer, open_page: OpenPage
) -> None:
    alice = open_page(server, LOBBY, "alice")
    eve = open_page(server, LOBBY, "eve")
    wait_open(alice)

    badge = eve.locator("#ws-state")
    expect(badge).to_have_attribute("data-state", "closed")
    expect(badge).to_have_attribute("data-code", "4403")
    expect(badge).to_have_text("Permission denied")
    expect(eve.locator("#denied")).to_be_visible()
    expect(eve.locator("#online-refused")).to_be_visible()  # the empty "Online" card says why it is empty
    expect(alice.locator("#online-refused")).to_be_hidden()
    expect(eve.locator("#message-input")).to_be_disabled()
    expect(eve.locator("#message-send")).to_be_disabled()
    last = states(eve, LOBBY_SOCKET)[-1]
    assert (last["state"], last["code"]) == ("closed", 4403)

    # The refused socket never joined the room: alice's message reaches alice, not eve.
    post(alice, "Can eve read this?")
    expect(messages(alice).last).to_contain_text("Can eve read this?")
    eve.wait_for_timeout(NO_RECONNECT_WINDOW_MS)  # an absence can only be observed for a while
    expect(eve.locator("#messages")).not_to_contain_text("Can eve read this?")
    assert websocket_count(eve, LOBBY_SOCKET) == 1
    assert "reconnecting" not in [s["state"] for s in states(eve, LOBBY_SOCKET)]


def test_an_anonymous_visitor_is_sent_to_the_login_page(server: AsgiServer, open_page: OpenPage) -> None:
    visitor = open_page(server, LOBBY)
    visitor.wait_for_url(f"{server.url}/accounts/login/?next={LOBBY}")
    expect(visitor.locator("#login-form")).to_be_visible()
    assert websocket_count(visitor, "/ws/") == 0


def test_a_page_whose_session_ended_says_please_log_in_and_stops_reconnecting(
    server: AsgiServer, open_page: OpenPage
) -> None:
    alice = open_page(server, LOBBY, "alice")
    wait_open(alice)
    # Log out in another tab of the same browser: the server closes the sockets of that session with 4401 at once.
    other_tab = alice.context.new_page()
    other_tab.goto(f"{server.url}/")
    other_tab.click("#logout-button")
    expect(other_tab.locator("#login-link")).to_be_visible()

    badge = alice.locator("#ws-state")
    expect(badge).to_have_attribute("data-code", "4401", timeout=15_000)
    expect(badge).to_have_attribute("data-state", "closed")
    expect(badge).to_have_text("Please log in")
    expect(alice.locator("#message-error")).to_have_text("Please log in again.")
    expect(alice.locator("#message-input")).to_be_disabled()
    seen = states(alice, LOBBY_SOCKET)
    names = [s["state"] for s in seen]
    assert names[-2:] == ["open", "closed"] and seen[-1]["code"] == 4401, seen

    # A restart does not bring it back: the client does not reconnect after 4401.
    server.restart()

    sockets = websocket_count(alice, LOBBY_SOCKET)
    alice.wait_for_timeout(NO_RECONNECT_WINDOW_MS)  # an absence can only be observed for a while
    assert websocket_count(alice, LOBBY_SOCKET) == sockets
    assert states(alice, LOBBY_SOCKET) == seen


def test_the_page_reconnects_after_a_crash_and_sends_what_was_queued(
    server: AsgiServer, open_page: OpenPage
) -> None:
    alice = open_page(server, LOBBY, "alice")
    bob = open_page(server, LOBBY, "bob")
    for page in (alice, bob):
        wait_open(page)
    post(alice, "Before the crash")
    expect(messages(bob)).to_have_count(1)

    server.kill()  # SIGKILL: no close frame, no cleanup
    for page in (alice, bob):
        expect(page.locator("#ws-state")).to_have_attribute("data-state", "reconnecting", timeout=10_000)
        expect(page.locator("#ws-state")).to_have_text("Reconnecting…")
        expect(page.locator("#online li")).to_have_count(0)  # who was there is not who is there
        expect(page.locator("#online-stale")).to_be_visible()

    # Sent while the socket is down: the client keeps the call in its queue and sends it after the reconnect.
    alice.fill("#message-input", "Written while the server was down")
    alice.click("#message-send")
    expect(alice.locator("#message-input")).to_have_value("Written while the server was down")

    server.start()  # the same port, the same database
    wait_open(alice, timeout=15_000)
    expect(messages(alice)).to_have_count(2, timeout=10_000)
    expect(messages(alice).last).to_contain_text("alice Written while the server was down")
    expect(alice.locator("#message-input")).to_have_value("")  # the call got its reply
    expect(alice.locator("#message-error")).to_be_hidden()
    wait_open(bob, timeout=15_000)
    for page in (alice, bob):
        expect(page.locator("#online li")).to_have_count(2, timeout=10_000)  # the list, again, with the connection
        expect(page.locator("#online-stale")).to_be_hidden()

    for page in (alice, bob):
        seen = [s["state"] for s in states(page, LOBBY_SOCKET)]
        assert seen[0] == "connecting" and seen[-1] == "open", seen
        assert "reconnecting" in seen and seen.index("reconnecting") < len(seen) - 1, seen
        assert "closed" not in seen, seen

    # The restarted server has a new, empty history (in-memory store): it cannot replay what the pages missed, so
    # each page gets a resync, says so, and fetches the stored messages. Bob's page reconnects on its own schedule
    # and may have missed alice's live message, but it has it now, without a reload, and only once.
    for page in (alice, bob):
        expect(page.locator("#resync-note")).to_be_visible(timeout=10_000)
        expect(page.locator("#resync-note")).to_contain_text("the messages were reloaded")
    expect(messages(bob)).to_have_count(2, timeout=10_000)
    expect(messages(bob).last).to_contain_text("alice Written while the server was down")
    bob.reload()
    wait_open(bob)
    expect(messages(bob)).to_have_count(2)
    expect(messages(bob).last).to_contain_text("alice Written while the server was down")

    # And it works as before, in both directions; each message stored once.
    post(bob, "After the crash")
    expect(messages(alice).last).to_contain_text("bob After the crash")
    post(alice, "Welcome back")
    expect(messages(bob).last).to_contain_text("alice Welcome back")
    assert db_value(server, "SELECT count(*) FROM chat_message") == 4


def test_an_announcement_reads_as_one_in_words_without_an_emoji_font(server: AsgiServer, open_page: OpenPage
                                                                        ) -> None:
    alice = open_page(server, LOBBY, "alice")
    bob = open_page(server, LOBBY, "bob")
    for page in (alice, bob):
        wait_open(page)
    alice.fill("#announce-input", "Pizza at noon")
    alice.click("#announce-sync")
    expect(alice.locator("#announce-input")).to_have_value("")
    for page in (alice, bob):
        item = page.locator("#messages li.announcement")
        expect(item).to_have_text("Announcement by alice: Pizza at noon (from a sync view)")  # no glyph to miss
        expect(item.locator(".tag")).to_have_text("Announcement")
