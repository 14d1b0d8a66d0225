"""The client's DOM commands in a real browser, run through ``hypergen.commands.execute`` on a demo page.

The server sends the same lists of commands in ``{"type": "commands"}`` frames (the chat and counter tests
cover that path); here each command's effect on a real DOM is checked in detail.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import OpenPage, eventually
from tests.support.browser import expect
from tests.support.fixtures import MigratedDatabase
from tests.support.servers import DEFAULT_SETTINGS, AsgiServer

SANDBOX = """
<div id="sandbox">
  <ul id="list"><li id="middle">middle</li></ul>
  <form id="profile"><label id="label" for="name">Name</label><input id="name" name="name" value="">
    <span id="status">draft</span></form>
  <p id="old">old paragraph</p>
  <p id="doomed">to be removed</p>
</div>
"""


@pytest.fixture(scope="module")
def server(migrated_database: MigratedDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsgiServer]:
    """One daphne process for the whole module: these tests only read pages."""
    directory = tmp_path_factory.mktemp("commands-server")
    database = migrated_database.copy(directory / "db.sqlite3", DEFAULT_SETTINGS)
    with AsgiServer(db=database, log_dir=directory) as instance:
        yield instance


@pytest.fixture
def page(server: AsgiServer, open_page: OpenPage) -> Any:
    """The index page (it loads the client), with a sandbox of elements at the end of ``<body>``."""
    page = open_page(server, "/")
    page.wait_for_function("() => typeof hypergen === 'object' && typeof hypergen.commands === 'object'")
    page.evaluate("(html) => document.body.insertAdjacentHTML('beforeend', html)", SANDBOX)
    return page


def execute(page: Any, *commands: list[Any]) -> None:
    page.evaluate("(commands) => hypergen.commands.execute(commands)", list(commands))


def test_the_client_script_is_served_by_daphne(server: AsgiServer) -> None:
    status, headers, body = server.get("/static/hypergen_ws/hypergen-ws.js")
    assert status == 200
    assert "javascript" in headers.get("Content-Type", "")
    assert b"hypergen" in body


def test_append_and_prepend(page: Any) -> None:
    execute(page, ["hypergen.append", "list", "<li id='last'>last</li>"],
            ["hypergen.prepend", "list", "<li id='first'>first</li>"],
            ["hypergen.append", "list", "<li>a <b>second</b> last</li>"])
    items = page.locator("#list > li")
    expect(items).to_have_text(["first", "middle", "last", "a second last"])
    expect(page.locator("#list b")).to_have_text("second")


def test_morph_keeps_the_value_focus_and_selection_of_an_input(page: Any) -> None:
    page.click("#name")
    page.keyboard.type("Ada Lovelace")
    page.evaluate("() => { window.__input = document.getElementById('name'); window.__input.setSelectionRange(4, 8); }")

    execute(page, ["hypergen.morph", "profile",
                   "<label id='label' for='name' class='done'>Full name</label>"
                   "<input id='name' name='name' value='' class='wide' placeholder='Your name'>"
                   "<span id='status'>saved</span><small id='hint'>Shown on your profile</small>"])

    state = page.evaluate("""() => {
        const input = document.getElementById('name');
        return {same: input === window.__input, value: input.value, focused: document.activeElement === input,
                selection: [input.selectionStart, input.selectionEnd], className: input.className,
                placeholder: input.placeholder};
    }""")
    assert state == {"same": True, "value": "Ada Lovelace", "focused": True, "selection": [4, 8],
                     "className": "wide", "placeholder": "Your name"}
    expect(page.locator("#label")).to_have_text("Full name")
    expect(page.locator("#label")).to_have_class("done")
    expect(page.locator("#status")).to_have_text("saved")
    expect(page.locator("#hint")).to_have_text("Shown on your profile")
    # The user goes on typing where the caret was: the selection ("Love") is replaced.
    page.keyboard.type("-")
    expect(page.locator("#name")).to_have_value("Ada -lace")


def test_morph_removes_what_is_gone_and_reorders_by_id(page: Any) -> None:
    execute(page, ["hypergen.append", "list", "<li id='b'>b</li><li id='c'>c</li>"])
    page.evaluate("() => { window.__c = document.getElementById('c'); }")
    execute(page, ["hypergen.morph", "list", "<li id='c'>c</li><li id='a'>a</li>"])
    expect(page.locator("#list > li")).to_have_text(["c", "a"])
    assert page.evaluate("() => window.__c === document.getElementById('c')")


def test_replace_and_remove(page: Any) -> None:
    execute(page, ["hypergen.replace", "old", "<section id='new'><h2>new section</h2></section>"],
            ["hypergen.remove", "doomed"])
    expect(page.locator("#old")).to_have_count(0)
    expect(page.locator("#new h2")).to_have_text("new section")
    expect(page.locator("#doomed")).to_have_count(0)
    expect(page.locator("#sandbox > *")).to_have_count(3)  # list, form, new section


def test_a_missing_element_is_reported_and_the_next_command_still_runs(page: Any) -> None:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    execute(page, ["hypergen.append", "no-such-element", "<li>x</li>"], ["hypergen.append", "list", "<li>y</li>"])
    expect(page.locator("#list > li")).to_have_text(["middle", "y"])
    eventually(lambda: any("no element with id" in text and "no-such-element" in text for text in errors), errors)


def test_unknown_commands_never_reach_window(page: Any) -> None:
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    url_before = page.url

    names = ["eval", "window.eval", "setTimeout", "Function", "document.write", "location.assign",
             "window.alert", "constructor", "__proto__", "toString", "hasOwnProperty", "hypergen.websocket.constructor",
             "hypergen.commands.register", "document.body.remove"]
    execute(page, *[[name, "window.__pwned = 1"] for name in names],
            ["hypergen.append", "list", "<li id='after'>after the unknown ones</li>"])

    expect(page.locator("#after")).to_have_text("after the unknown ones")
    assert page.evaluate("() => window.__pwned === undefined")
    assert page.evaluate("() => document.body !== null && document.getElementById('sandbox') !== null")
    assert page.evaluate("(names) => names.filter((name) => hypergen.commands.has(name))", names) == []
    assert page.url == url_before
    assert dialogs == []
    eventually(lambda: len([text for text in errors if "unknown command" in text]) == len(names), errors)
