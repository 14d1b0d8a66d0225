"""Websocket clients for the fan-out end-to-end tests, and the publisher process they run.

* ``collect``: a ``websockets`` client that reads ``count`` ``message`` frames and returns their data.
* ``StuckClient``: a raw TCP websocket client that completes the handshake and then never reads, with a small
  receive buffer, like a browser tab whose network stalls; ``read_rest()`` reads what the server still sends.
* ``run_publisher``: ``python -m tests.e2e.publisher`` in its own process with the test project's settings.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect as ws_connect

from tests.support.servers import REPO_ROOT

LISTEN_PATH = "/ws/notifications/listen/"


async def open_clients(urls: list[str], per_url: int) -> list[Any]:
    """Open ``per_url`` ``websockets`` clients on each url (max_size large enough for padded messages).

    Every other client negotiates ``permessage-deflate`` (as browsers do); the others use no extension, so
    uvicorn's connections get both kinds (``hypergen_ws.backends.uvicorn`` writes only to the ones without).
    """
    coros = [ws_connect(url, origin=_origin(url), max_size=2**24, open_timeout=30, ping_interval=None,
                        max_queue=None, compression="deflate" if n % 2 else None)
             for url in urls for n in range(per_url)]
    return list(await asyncio.gather(*coros))


def _origin(url: str) -> Any:
    """The Origin the test project's AllowedHostsOriginValidator accepts: the server's own address."""
    from websockets.typing import Origin

    return Origin("http://" + url.split("://", 1)[1].split("/", 1)[0])


async def collect(ws: Any, count: int, timeout: float) -> list[Any]:
    """Read ``message`` frames until ``count`` arrived or ``timeout`` seconds passed; return their ``data``."""
    got: list[Any] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(got) < count:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        try:
            raw = await asyncio.wait_for(ws.recv(), remaining)
        except (asyncio.TimeoutError, OSError):
            break
        frame = json.loads(raw)
        if frame.get("type") == "message":
            got.append(frame["data"])
    return got


def first_gap(got: list[int], expected: list[int]) -> int | None:
    """Index of the first difference between two sequences (``None`` when equal)."""
    for i, (a, b) in enumerate(zip(got, expected)):
        if a != b:
            return i
    return None if len(got) == len(expected) else min(len(got), len(expected))


@dataclass
class StuckClient:
    """A websocket client that handshakes and then stops reading (receive buffer ``rcvbuf`` bytes)."""

    port: int
    path: str = LISTEN_PATH
    rcvbuf: int = 4096
    sock: socket.socket = field(init=False)
    leftover: bytes = field(init=False, default=b"")

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        self.sock.connect(("127.0.0.1", self.port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: http://127.0.0.1:{self.port}\r\n\r\n").encode())
        self.sock.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"handshake failed: {data!r}")
            data += chunk
        head, _, self.leftover = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"handshake refused: {head!r}")

    def read_rest(self, timeout: float = 30) -> tuple[int, int | None, bool]:
        """Read everything still coming: ``(text frames, close code or None, connection ended)``."""
        self.sock.settimeout(timeout)
        buf = self.leftover
        frames = 0
        close_code: int | None = None
        ended = False
        while True:
            parsed = _parse_frame(buf)
            if parsed is None:
                try:
                    chunk = self.sock.recv(1 << 16)
                except (socket.timeout, ConnectionResetError):
                    ended = not isinstance(sys.exc_info()[1], socket.timeout)
                    break
                if not chunk:
                    ended = True
                    break
                buf += chunk
                continue
            opcode, payload, buf = parsed
            if opcode == 1:
                frames += 1
            elif opcode == 8:
                close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
        return frames, close_code, ended

    def close(self) -> None:
        self.sock.close()


def _parse_frame(buf: bytes) -> tuple[int, bytes, bytes] | None:
    if len(buf) < 2:
        return None
    opcode, length = buf[0] & 0x0F, buf[1] & 0x7F
    offset = 2
    if length == 126:
        if len(buf) < 4:
            return None
        length, offset = struct.unpack("!H", buf[2:4])[0], 4
    elif length == 127:
        if len(buf) < 10:
            return None
        length, offset = struct.unpack("!Q", buf[2:10])[0], 10
    if len(buf) < offset + length:
        return None
    return opcode, buf[offset:offset + length], buf[offset + length:]


def run_publisher(redis_url: str, *args: str, env: dict[str, str] | None = None,
                  timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tests.e2e.publisher ARGS`` with the test project's settings and ``REDIS_URL``."""
    return subprocess.run([sys.executable, "-m", "tests.e2e.publisher", *args], cwd=REPO_ROOT,
                          env=publisher_env(redis_url, env), capture_output=True, text=True, timeout=timeout)


def start_publisher(redis_url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start the publisher without waiting for it."""
    return subprocess.Popen([sys.executable, "-m", "tests.e2e.publisher", *args], cwd=REPO_ROOT,
                            env=publisher_env(redis_url, env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def publisher_env(redis_url: str, env: dict[str, str] | None = None) -> dict[str, str]:
    child = dict(os.environ, DJANGO_SETTINGS_MODULE="testproject.settings", REDIS_URL=redis_url,
                 PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
    child.pop("HYPERGEN_WS_LAYER", None)
    child.update(env or {})
    return child


def wait_until(condition: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())
