"""Connection tokens and the Python client on live servers (daphne and uvicorn), with real websockets clients:
tokens from hypergen_ws/token/, forged, expired, replayed after a password change and query-string tokens,
revocation across two processes sharing a real redis-server, a refresh, the client recovering across a kill -9
of its server, and ``python -m hypergen_ws listen``."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys

import pytest
from websockets.asyncio.client import connect as ws_connect

from hypergen_ws.client import NotAuthenticated, connect
from tests.e2e.hostile import CHAT, Browser, closed, frames_until, run_django
from tests.support.servers import REPO_ROOT

pytestmark = pytest.mark.timeout(240)
LOBBY = CHAT.format(room="lobby")
GROUP = "from testproject.chat.consumers import send_message; group = send_message.group_name(room_name='lobby')\n"


def token_of(server, username: str) -> str:
    """A token from GET hypergen_ws/token/ of a session logged in through the login form."""
    status, body = Browser(server).login(username).request("GET", "/hypergen_ws/token/")
    assert status == 200, body
    return json.loads(body)["token"]


def issued(server, code: str) -> str:
    """The token printed by ``code`` (run with Django set up like ``server``; ``alice`` is the user)."""
    return run_django(server, "from django.contrib.auth.models import User\nfrom hypergen_ws import issue_token\n"
                              "alice = User.objects.get(username='alice')\n" + code).strip().splitlines()[-1]


async def refused_code(url: str, **options) -> int | None:
    async with ws_connect(url, open_timeout=30, **options) as ws:
        return (await closed(ws, timeout=10)).code


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
async def test_tokens_open_sockets_without_an_origin_and_bad_ones_close_with_4401(kind, live_server_factory):
    server = live_server_factory(server=kind)
    url = server.ws_url + LOBBY
    token = token_of(server, "alice")
    async with ws_connect(url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=30) as ws:
        await ws.send(json.dumps({"args": ["by token"], "id": 1}))
        frames = await frames_until(ws, lambda f: f.get("type") == "reply")
        assert any("by token" in json.dumps(f) and "alice" in json.dumps(f) for f in frames), frames
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    expired = issued(server, "from hypergen_ws.core import tokens\nimport time\nreal = time.time\n"
                             "tokens.time = type('T', (), {'time': staticmethod(lambda: real() - 7200)})\n"
                             "print(issue_token(alice, max_age=60))")
    replayed = issued(server, "t = issue_token(alice)\nalice.set_password('changed'); alice.save()\nprint(t)")
    gone, inactive = issued(server, "carol = User.objects.create_user('carol'); dave = User.objects.create_user('dave')\n"
                                    "print(issue_token(carol), issue_token(dave))\ncarol.delete()\n"
                                    "dave.is_active = False; dave.save()").split()
    for bad in (forged, expired, replayed, "garbage", gone, inactive):
        assert await refused_code(url, additional_headers={"Authorization": f"Bearer {bad}"}) == 4401, bad
    assert await refused_code(url + f"?hgws_token={token_of(server, 'bob')}") == 4401  # the query string is off
    log = server.log_path.read_text()
    for reason in ("forged", "expired at", "before their password changed", "TOKEN_QUERY_STRING",
                   "does not exist (deleted?)", "'dave' is inactive"):
        assert reason in log, f"{reason!r} is not in the server's log"
    # A browser on another site: the subprotocol form, selected in the accept; the consumer does not allow it.
    protocol = "hypergen-ws.bearer." + base64.urlsafe_b64encode(token_of(server, "bob").encode()).decode().rstrip("=")
    async with ws_connect(url, subprotocols=["hypergen-ws", protocol], origin="https://elsewhere.example",
                          open_timeout=30) as ws:
        assert ws.subprotocol == "hypergen-ws"
        assert (await closed(ws, timeout=10)).code == 4403


async def test_a_query_string_token_works_when_the_setting_is_on(live_server_factory):
    server = live_server_factory(server="uvicorn", env={"HYPERGEN_WS_OVERRIDES": '{"TOKEN_QUERY_STRING": true}'})
    async with ws_connect(server.ws_url + LOBBY + f"?hgws_token={token_of(server, 'bob')}", open_timeout=30) as ws:
        await ws.send(json.dumps({"args": ["by query"], "id": 1}))
        assert (await frames_until(ws, lambda f: f.get("type") == "reply"))[-1] == {"type": "reply", "id": 1}


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
async def test_the_python_client_calls_and_reads_group_frames_in_order(kind, redis_server, live_server_factory):
    server = live_server_factory(server=kind, redis_url=redis_server.url)  # another process publishes
    async with connect(server.ws_url + LOBBY, token=token_of(server, "alice")) as conn:
        result = await conn.call("from python")
        assert result.reply == {"type": "reply", "id": 1} and result.error is None
        bad = await conn.call(42)  # not a str: the consumer's annotation refuses it
        assert bad.error is not None and bad.error["code"] == "bad_request" and bad.reply is None
        run_django(server, GROUP + "from hypergen_ws import group_send\n"
                                   "for n in range(5): group_send(group, {'n': n})")
        seen = []
        async with asyncio.timeout(20):
            async for frame in conn.frames():
                if frame["type"] == "message":
                    seen.append(frame["data"]["n"])
                    if len(seen) == 5:
                        break
        assert seen == [0, 1, 2, 3, 4]


async def test_revocation_closes_token_sockets_in_every_process(redis_server, live_server_factory):
    daphne, uvicorn = [live_server_factory(server=kind, redis_url=redis_server.url) for kind in ("daphne", "uvicorn")]
    token = token_of(daphne, "alice")
    raw = await ws_connect(uvicorn.ws_url + LOBBY, additional_headers={"Authorization": f"Bearer {token}"},
                           open_timeout=30)
    async with connect(daphne.ws_url + LOBBY, token=token) as conn:
        await conn.call("before")
        bobs = await ws_connect(uvicorn.ws_url + LOBBY, open_timeout=30,
                                additional_headers={"Authorization": f"Bearer {token_of(uvicorn, 'bob')}"})
        run_django(daphne, "from hypergen_ws import disconnect_user\n"
                           "from django.contrib.auth.models import User\n"
                           "disconnect_user(User.objects.get(username='alice'))")
        assert (await closed(raw, timeout=10)).code == 4401
        with pytest.raises(NotAuthenticated, match="4401"):
            async with asyncio.timeout(10):
                async for _ in conn.frames():
                    pass
        assert (await closed(bobs, timeout=0.5)).code is None, "another user keeps their socket"
        await bobs.close()


async def test_the_python_client_refreshes_its_token(live_server_factory):
    server = live_server_factory(server="daphne", env={"HYPERGEN_WS_OVERRIDES": '{"TOKEN_MAX_AGE": 2}'})
    browser = Browser(server).login("alice")
    fetched = []

    def get_token():
        status, body = browser.request("GET", "/hypergen_ws/token/")
        fetched.append(status)
        return json.loads(body)["token"]

    async with connect(server.ws_url + LOBBY, get_token=get_token) as conn:
        async with asyncio.timeout(20):
            while len(fetched) < 3:  # the connect, then a refresh before each 2-second token expires
                await asyncio.sleep(0.1)
        assert (await conn.call("after two refreshes")).reply is not None
        assert conn.close_code is None and conn.state == "open", "the first token's expiry did not close it"


async def test_the_python_client_recovers_across_a_kill_9_of_its_server(redis_server, live_server_factory):
    first = live_server_factory(server="uvicorn", redis_url=redis_server.url)
    publish = GROUP + "import sys\nfrom hypergen_ws import group_send\n" \
                      "for n in range(int(sys.argv[1]), int(sys.argv[2])): group_send(group, {'n': n})"

    def send(start: int, stop: int) -> None:
        run_django(first, publish.replace("sys.argv[1]", str(start)).replace("sys.argv[2]", str(stop)))

    seen: list[int] = []
    async with connect(first.ws_url + LOBBY, token=token_of(first, "alice"), backoff_base=0.2,
                       backoff_max=1.0) as conn:
        frames = conn.frames()

        async def until(count: int) -> None:
            async with asyncio.timeout(30):
                async for frame in frames:
                    assert frame["type"] != "resync", frame
                    if frame["type"] == "message":
                        seen.append(frame["data"]["n"])
                        if len(seen) == count:
                            return
        send(0, 3)
        await until(3)
        first.kill()  # kill -9: no close frame, no cleanup
        send(3, 6)  # while the client has no server: kept in the group's history on Redis
        second = live_server_factory(server="uvicorn", redis_url=redis_server.url, port=first.port)
        await until(6)
        send(6, 8)
        await until(8)
        assert second.running
    assert seen == list(range(8)), "every frame once, in order, across the kill"


async def test_the_listen_command_prints_frames_as_json_lines(redis_server, live_server_factory):
    server = live_server_factory(server="daphne", redis_url=redis_server.url)
    env = {**os.environ, "HYPERGEN_WS_TOKEN": token_of(server, "alice")}
    proc = subprocess.Popen([sys.executable, "-m", "hypergen_ws", "listen", server.ws_url + LOBBY], cwd=REPO_ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        # The listener is in once its presence join is published; then two messages follow it.
        first = await asyncio.to_thread(proc.stdout.readline)
        lines.append(json.loads(first))
        run_django(server, GROUP + "from hypergen_ws import group_send\n"
                                   "group_send(group, {'n': 1}); group_send(group, {'n': 2})")
        while [f.get("data") for f in lines if f.get("type") == "message"] != [{"n": 1}, {"n": 2}]:
            lines.append(json.loads(await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    refused = subprocess.run([sys.executable, "-m", "hypergen_ws", "listen", server.ws_url + LOBBY, "--token", "x"],
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "4401" in refused.stderr


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
async def test_a_token_for_alice_never_acts_as_the_browser_session_of_bob(kind, live_server_factory):
    server = live_server_factory(server=kind)
    bob = Browser(server).login("bob")
    cookie = "; ".join(f"{k}={v}" for k, v in bob.cookies.items())
    async with ws_connect(server.ws_url + LOBBY, open_timeout=30, origin=server.url, additional_headers={
            "Authorization": f"Bearer {token_of(server, 'alice')}", "Cookie": cookie}) as ws:
        await ws.send(json.dumps({"args": ["who am i"], "id": 1}))
        frames = await frames_until(ws, lambda f: f.get("type") == "reply")
    posted = [json.dumps(f) for f in frames if f.get("type") == "commands"]
    assert posted and all("alice" in text and "bob" not in text for text in posted), frames
    presence = [f for f in frames if f.get("type") == "presence"]
    assert all(u["username"] == "alice" for f in presence for u in f.get("users", [])), presence
