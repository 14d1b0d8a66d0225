"""Integrity under hostile input, against real servers: unroutable paths, forged frames, origins, redirects."""
from __future__ import annotations

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from tests.e2e.wsclients import _origin
from tests.support.servers import log_tail

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("server_kind", ["daphne", "uvicorn"])
async def test_an_unroutable_websocket_path_is_refused_with_one_log_line(server_kind, live_server_factory):
    server = live_server_factory(server=server_kind)
    url = server.ws_url + "/ws/chat/no_such_consumer/"
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(url, origin=_origin(url), open_timeout=10):
            pass
    assert refused.value.response.status_code == 403
    log = log_tail(server.log_path, 200)
    assert log.count("No websocket route for path '/ws/chat/no_such_consumer/'") == 1, log
    assert "Traceback" not in log and " 500" not in log, log


def publish_commands(server, group: str, commands: list) -> int:
    """POST commands to the demo's HTTP publish endpoint with its documented development key; the status."""
    import json
    import urllib.error
    import urllib.request

    from testproject.settings import DEMO_PUBLISH_KEY

    request = urllib.request.Request(
        f"{server.url}/hypergen_ws/publish/", data=json.dumps({"group": group, "commands": commands}).encode(),
        headers={"Authorization": f"Bearer {DEMO_PUBLISH_KEY}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_redirect_runs_no_javascript_urls_in_chromium(server, open_page) -> None:
    from tests.e2e.conftest import eventually, wait_open

    page = open_page(server, "/notifications/")
    wait_open(page)
    page.evaluate("""() => {
      window.__errors = [];
      const original = console.error.bind(console);
      console.error = (...args) => { window.__errors.push(args.join(" ")); original(...args); };
    }""")
    title = page.title()
    group = "hgws.notifications.listen"
    for url in ["javascript:document.title='pwned'", " JavaScript:document.title='pwned'",
                "java\tscript:document.title='pwned'", "data:text/html,<script>alert(1)</script>"]:
        assert publish_commands(server, group, [["hypergen.redirect", url]]) == 200
    refused = "() => window.__errors.filter((line) => line.includes('hypergen.redirect refused')).length"
    eventually(lambda: page.evaluate(refused) == 4, "four refusals in the console")
    assert page.title() == title and page.url == f"{server.url}/notifications/"
    assert publish_commands(server, group, [["hypergen.redirect", "/counter/"]]) == 200
    page.wait_for_url(f"{server.url}/counter/")


@pytest.mark.parametrize("server_kind", ["daphne", "uvicorn"])
async def test_a_page_on_another_port_of_the_same_host_cannot_open_sockets(server_kind, live_server_factory):
    from websockets.typing import Origin

    server = live_server_factory(server=server_kind)
    url = server.ws_url + "/ws/notifications/listen/"
    for foreign in ("http://127.0.0.1:1234", "https://127.0.0.1:" + str(server.port), "http://localhost:1234"):
        with pytest.raises(InvalidStatus) as refused:
            async with ws_connect(url, origin=Origin(foreign), open_timeout=10):
                pass
        assert refused.value.response.status_code == 403, foreign
    async with ws_connect(url, origin=_origin(url), open_timeout=10) as ws:
        await ws.ping()
    log = log_tail(server.log_path, 200)
    assert log.count("Refused a websocket to /ws/notifications/listen/ from origin") == 3, log


async def test_on_redis_a_new_socket_gets_its_presence_list_before_any_group_frame(redis_server,
                                                                                  live_server_factory):
    """Sockets connect while another process publishes to the room without pause: each one's first frame is
    the presence list, never a message or a join that was in flight."""
    import json
    import subprocess
    import sys

    from tests.e2e.hostile import CHAT, Browser
    from tests.support.servers import REPO_ROOT

    server = live_server_factory(server="daphne", redis_url=redis_server.url)
    alice, bob = Browser(server).login("alice"), Browser(server).login("bob")
    publishers = [subprocess.Popen(
        [sys.executable, "-c", "import django; django.setup()\n"
         "from hypergen_ws import consumer_command\n"
         "from testproject.chat.consumers import send_message\n"
         "group = send_message.group_name(room_name='lobby')\n"
         "for n in range(1000000):\n"
         f"    consumer_command(group, [['hypergen.append', 'messages', str(n)]], history={bool(i % 2)})\n"],
        cwd=REPO_ROOT, env=server.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for i in range(3)]
    try:
        keeper = await bob.socket(CHAT.format(room="lobby"))  # the group stays joined: frames flow all the time
        while json.loads(await keeper.recv()).get("type") != "commands":
            pass
        firsts = []
        for _ in range(40):
            ws = await (alice if len(firsts) % 2 else bob).socket(CHAT.format(room="lobby"))
            first = json.loads(await ws.recv())
            while first.get("type") == "sync":  # the socket's own position comes first; it is no group frame
                first = json.loads(await ws.recv())
            firsts.append((first.get("type"), first.get("event")))
            await ws.close()
        assert all(p.poll() is None for p in publishers), "a publisher stopped"
        assert firsts == [("presence", "list")] * 40, firsts
        await keeper.close()
    finally:
        for p in publishers:
            p.kill()
            p.wait()


async def test_a_forged_frame_far_ahead_leads_to_a_resync_not_to_silence(redis_server, live_server_factory):
    import json

    from tests.e2e.hostile import CHAT, Browser, frames_until, run_django

    server = live_server_factory(server="daphne", redis_url=redis_server.url)
    alice = Browser(server).login("alice")
    ws = await alice.socket(CHAT.format(room="lobby"))
    sync = (await frames_until(ws, lambda f: f.get("type") == "sync"))[-1]
    await ws.send(json.dumps({"args": ["before"], "id": 1}))
    before = (await frames_until(ws, lambda f: f.get("type") == "commands"))[-1]
    run_django(server, "from asgiref.sync import async_to_sync\n"  # someone with access to Redis forges a frame
                       "from channels.layers import get_channel_layer\n"
                       "from hypergen_ws.core.protocol import stamp\n"
                       "from testproject.chat.consumers import send_message\n"
                       f"seq, epoch = 10**9, {sync['epoch']}\n"
                       "async_to_sync(get_channel_layer().group_send)(send_message.group_name(room_name='lobby'), {\n"
                       "    'type': 'hypergen_ws.frame', 'seq': seq, 'epoch': epoch,\n"
                       "    'text': stamp('{\"type\":\"commands\",\"commands\":[]}', seq, epoch)})\n")
    resync = (await frames_until(ws, lambda f: f.get("type") == "resync"))[-1]
    assert resync["reason"] == "out_of_sequence" and resync["seq"] == before["seq"]
    await ws.send(json.dumps({"args": ["after"], "id": 2}))
    after = (await frames_until(ws, lambda f: f.get("type") == "commands"))[-1]
    assert after["seq"] == before["seq"] + 1 and "after" in json.dumps(after)
