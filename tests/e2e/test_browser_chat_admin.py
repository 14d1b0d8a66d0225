"""The chat demo and the Django admin in real browsers: messages saved there reach the room's open pages.

A superuser ("boss") is created in the server's database with ``manage.py createsuperuser``, as the demo's index
page tells its users to; alice watches the lobby, bob the VIP lounge.
"""
from __future__ import annotations

import subprocess
import sys
from typing import Any

from tests.e2e.conftest import OpenPage, db_value, wait_open
from tests.e2e.test_browser_chat import LOBBY, VIP, messages, post
from tests.support.browser import expect
from tests.support.servers import REPO_ROOT, AsgiServer


def create_superuser(server: AsgiServer, username: str) -> None:
    """``manage.py createsuperuser`` against the server's SQLite file; the password is the username."""
    env = dict(server.env, DJANGO_SUPERUSER_PASSWORD=username)
    subprocess.run([sys.executable, "manage.py", "createsuperuser", "--noinput", "--username", username,
                    "--email", f"{username}@example.com"], cwd=REPO_ROOT, env=env, check=True, timeout=120,
                   stdin=subprocess.DEVNULL, capture_output=True)


def admin_save(page: Any) -> None:
    """Click the admin form's Save and wait for the list of messages it leads to."""
    page.click("input[name=_save]")
    expect(page.locator("#changelist")).to_be_visible(timeout=10_000)


def test_messages_added_edited_and_deleted_in_the_admin_reach_their_room(
    server: AsgiServer, open_page: OpenPage
) -> None:
    create_superuser(server, "boss")
    alice = open_page(server, LOBBY, "alice")
    bob = open_page(server, VIP, "bob", name="bob-in-vip")
    for page in (alice, bob):
        wait_open(page)
        expect(messages(page)).to_have_count(0)

    boss = open_page(server, "/admin/chat/message/add/", "boss")
    boss.select_option("#id_room", label="Lobby")
    boss.select_option("#id_user", label="alice")
    boss.fill("#id_text", "Written in the <b>admin</b>")
    admin_save(boss)
    expect(messages(alice)).to_have_count(1)
    expect(messages(alice).last).to_contain_text("alice Written in the <b>admin</b>")
    pk = db_value(server, "SELECT id FROM chat_message WHERE text = ?", "Written in the <b>admin</b>")
    expect(alice.locator(f"#message-{pk}")).to_have_count(1)

    boss.goto(f"{server.url}/admin/chat/message/{pk}/change/")
    boss.fill("#id_text", "Edited in the admin")
    admin_save(boss)
    expect(alice.locator(f"#message-{pk}")).to_contain_text("alice Edited in the admin")
    expect(messages(alice)).to_have_count(1)

    post(alice, "Typed in the room")
    expect(messages(alice)).to_have_count(2)
    boss.goto(f"{server.url}/admin/chat/message/{pk}/delete/")
    boss.click("#content form input[type=submit]")
    expect(boss.locator("#changelist")).to_be_visible(timeout=10_000)
    expect(alice.locator(f"#message-{pk}")).to_have_count(0)
    expect(messages(alice)).to_have_count(1)
    expect(messages(alice).last).to_contain_text("alice Typed in the room")

    # The VIP lounge heard of none of it: a message posted there now is its first.
    post(bob, "Quiet in here")
    expect(messages(bob)).to_have_count(1)
    expect(messages(bob).last).to_contain_text("bob Quiet in here")
