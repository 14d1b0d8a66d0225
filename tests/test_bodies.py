"""BodyLimit (hypergen_ws.core.bodies): bodies over a view's limit are refused before they are read."""
from __future__ import annotations

import json

import pytest

from hypergen_ws.core.bodies import BodyLimit, limit_for
from hypergen_ws.http import publish

pytestmark = pytest.mark.urls("tests.http_urls")

URL = "/hypergen_ws/publish/"


class Recorder:
    """The wrapped application: records what reached it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def scope(path=URL, method="POST", length=None):
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http", "method": method, "path": path, "headers": headers}


async def run(app, scope, chunks):
    """Drive ``app`` with ``chunks`` as the body; returns (sent messages, how many body messages were read)."""
    pending = list(chunks)
    read = [0]
    sent = []

    async def receive():
        if not pending:
            return {"type": "http.disconnect"}
        read[0] += 1
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return sent, read[0]


def test_the_publish_view_declares_its_limit(settings):
    settings.HYPERGEN_WS = {"PUBLISH_MAX_BODY_SIZE": 1234}
    assert limit_for("POST", URL) == 1234
    assert limit_for("GET", URL) is None
    assert limit_for("POST", "/nowhere/") is None
    assert getattr(publish, "hypergen_ws_max_body_size")() == 1234


async def test_a_declared_length_over_the_limit_is_refused_without_reading(settings):
    settings.HYPERGEN_WS = {"PUBLISH_MAX_BODY_SIZE": 100}
    inner = Recorder()
    sent, read = await run(BodyLimit(inner), scope(length=400 * 2**20), [b"x" * 1000] * 5)
    assert read == 0 and inner.bodies == []
    assert sent[0]["status"] == 413
    assert "over the limit of 100 bytes" in json.loads(sent[1]["body"])["error"]


async def test_a_body_without_length_is_refused_once_it_goes_over(settings):
    settings.HYPERGEN_WS = {"PUBLISH_MAX_BODY_SIZE": 100}
    inner = Recorder()
    sent, read = await run(BodyLimit(inner), scope(), [b"x" * 60, b"x" * 60, b"x" * 60, b"x" * 60])
    assert read == 2 and inner.bodies == [] and sent[0]["status"] == 413


async def test_bodies_within_the_limit_and_other_requests_pass_unchanged(settings):
    settings.HYPERGEN_WS = {"PUBLISH_MAX_BODY_SIZE": 100}
    inner = Recorder()
    app = BodyLimit(inner)
    sent, _ = await run(app, scope(length=100), [b"a" * 50, b"b" * 50])
    assert sent[0]["status"] == 200 and inner.bodies == [b"a" * 50 + b"b" * 50]
    await run(app, scope(path="/elsewhere/", length=10_000), [b"c" * 10_000])
    await run(app, scope(method="GET"), [b""])
    assert inner.bodies[1:] == [b"c" * 10_000, b""]
