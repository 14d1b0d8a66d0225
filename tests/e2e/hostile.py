"""Helpers of the hostile-conditions end-to-end tests: logged-in HTTP sessions, sockets that carry them, closes
timed, and Django code run in a process of its own (like a web worker or a shell)."""
from __future__ import annotations

import asyncio
import http.client
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from tests.support.servers import REPO_ROOT, AsgiServer

CHAT = "/ws/chat/send_message/{room}/"
LISTEN = "/ws/notifications/listen/"


@dataclass
class Browser:
    """The cookies of one browser: a session logged in through the real login form."""

    server: AsgiServer
    cookies: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, fields: dict[str, str] | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        headers = {"Host": f"127.0.0.1:{self.server.port}"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if fields is not None:
            body = "&".join(f"{k}={v}" for k, v in fields.items())
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    key, _, rest = value.partition("=")
                    self.cookies[key.strip()] = rest.split(";", 1)[0]
            return response.status, response.read().decode(errors="replace")
        finally:
            conn.close()

    def csrf(self, path: str) -> str:
        status, page = self.request("GET", path)
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert match, f"no CSRF token on {path} ({status})"
        return match[1]

    def login(self, username: str) -> Browser:
        token = self.csrf("/accounts/login/")
        status, _ = self.request("POST", "/accounts/login/", {"username": username, "password": username,
                                                                "csrfmiddlewaretoken": token})
        assert status == 302 and "sessionid" in self.cookies, f"login of {username} failed ({status})"
        return self

    def logout(self) -> None:
        token = self.csrf("/chat/lobby/")
        status, _ = self.request("POST", "/accounts/logout/", {"csrfmiddlewaretoken": token})
        assert status == 302, f"logout failed ({status})"

    def change_password(self, old: str, new: str) -> None:
        """Django's PasswordChangeView: this browser stays logged in (its session moves to a new key)."""
        token = self.csrf("/accounts/password_change/")
        status, page = self.request("POST", "/accounts/password_change/", {
            "old_password": old, "new_password1": new, "new_password2": new, "csrfmiddlewaretoken": token})
        assert status == 302, f"password change failed ({status}): {page[:300]}"

    @property
    def session_key(self) -> str:
        return self.cookies["sessionid"]

    async def socket(self, path: str, server: AsgiServer | None = None) -> Any:
        """A websocket to ``path`` on ``server`` (default: the login's), carrying this browser's cookies."""
        server = server or self.server
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return await ws_connect(server.ws_url + path, origin=Origin(server.url), open_timeout=30, ping_interval=None,
                                additional_headers={"Cookie": cookie} if cookie else None, max_queue=None)


async def frames_until(ws: Any, predicate: Any, timeout: float = 10) -> list[dict[str, Any]]:
    """Read frames until one satisfies ``predicate``; returns every frame read (the last one matches)."""
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            got.append(frame)
            if predicate(frame):
                return got


@dataclass
class Closed:
    """How a socket ended: its close code (None: still open at the deadline), when (``time.monotonic()``), and
    the frames it received before."""

    code: int | None
    at: float
    frames: list[dict[str, Any]]


async def closed(ws: Any, timeout: float = 15) -> Closed:
    """Wait until the server closes ``ws`` (at most ``timeout`` seconds)."""
    frames: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                frames.append(json.loads(await ws.recv()))
    except ConnectionClosed:
        return Closed(ws.close_code, time.monotonic(), frames)
    except TimeoutError:
        return Closed(None, time.monotonic(), frames)


def run_django(server: AsgiServer, code: str, timeout: float = 60) -> str:
    """Run Python ``code`` with Django set up like ``server`` (same database, same Redis) in a new process."""
    program = "import django; django.setup()\n" + code
    result = subprocess.run([sys.executable, "-c", program], cwd=REPO_ROOT, env=server.env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result.stdout
