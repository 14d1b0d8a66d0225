"""A real daphne server (test project, in-memory layer): publish over HTTP with PublishClient and the CLI, and read
its counters, while real websocket clients listen."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from websockets.asyncio.client import connect

from hypergen_ws.client import PublishClient, PublishError
from tests.support.servers import REPO_ROOT

KEY = "live-test-key-0123456789abcdef"
OLD_KEY = "rotated-out-key-0123456789abcdef"


async def next_frame(ws, timeout: float = 5) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def test_http_publishing_reaches_real_websocket_clients(live_server_factory):
    server = live_server_factory(server="daphne", env={"HYPERGEN_WS_PUBLISH_KEY": KEY, "DJANGO_DEBUG": "0"})
    listen_url = server.ws_url + "/ws/notifications/listen/"
    base = server.url + "/hypergen_ws/"
    async with connect(listen_url, origin=server.url) as first, connect(listen_url, origin=server.url) as second:
        client = PublishClient(base, KEY, timeout=10)

        # 1. The Python client, by consumer label.
        answer = await asyncio.to_thread(client.send_to_consumer, "notifications.listen", {"text": "from client"})
        assert answer == {"published": "message", "group": "hgws.notifications.listen"}
        for ws in (first, second):
            assert await next_frame(ws) == {"type": "message", "data": {"text": "from client"}}

        # 2. The command line, in its own process, by group name; the key from the environment.
        env = {**os.environ, "HYPERGEN_WS_PUBLISH_KEY": KEY}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "hypergen_ws", "publish", "--url", base, "--group", "hgws.notifications.listen",
             "--commands", '[["hypergen.append", "log", "<li>from the CLI</li>"]]'],
            capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "Published commands to group hgws.notifications.listen.\n"
        for ws in (first, second):
            assert await next_frame(ws) == {"type": "commands",
                                            "commands": [["hypergen.append", "log", "<li>from the CLI</li>"]]}

        # 3. Refused requests publish nothing and explain themselves, through the real server too.
        with pytest.raises(PublishError) as info:
            await asyncio.to_thread(PublishClient(base, OLD_KEY).send, "hgws.notifications.listen", "nope")
        assert info.value.status == 403 and "Wrong access key" in info.value.error
        bad = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "hypergen_ws", "publish", "--url", base, "--key", KEY,
             "--consumer", "notifications.nope", "--data", "1"],
            capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60)
        assert bad.returncode == 1 and "404: No consumer is labelled 'notifications.nope'" in bad.stderr

        # 4. The server's counters: fetched by the management command from the server process.
        stats_run = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "manage.py", "hypergen_ws_stats", "--url", base, "--key", KEY, "--json"],
            capture_output=True, text=True, env={**env, "DJANGO_SETTINGS_MODULE": "testproject.settings"},
            cwd=REPO_ROOT, timeout=60)
        assert stats_run.returncode == 0, stats_run.stderr
        snapshot = json.loads(stats_run.stdout)
        listen = snapshot["consumers"]["notifications.listen"]
        assert listen["connections"] == 2
        assert listen["messages_out"] == 4
        assert snapshot["groups"]["hgws.notifications.listen"]["messages_out"] == 4

        for ws in (first, second):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)
