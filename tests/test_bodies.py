"""BodyLimit (hypergen_ws.core.bodies): bodies over their view's limit, or MAX_BODY_SIZE, are refused before they are
read."""
from __future__ import annotations

import json

import pytest

from django.http import HttpResponse
from django.urls import include, path

from hypergen_ws.core.bodies import DEFAULT_SETTING, BodyLimit, Rule, daphne_rule_for, max_body_size, rule_for
from hypergen_ws.http import publish


@max_body_size(5000)
def upload(request):
    return HttpResponse("ok")


urlpatterns = [path("hypergen_ws/", include("hypergen_ws.urls")), path("upload/", upload)]
pytestmark = pytest.mark.urls(__name__)

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
    assert rule_for(URL) == Rule(1234, "HYPERGEN_WS['PUBLISH_MAX_BODY_SIZE']")
    assert rule_for(URL, default=False) == rule_for(URL)
    assert getattr(publish, "hypergen_ws_max_body_size")[0]() == 1234
    assert rule_for("/upload/") == Rule(5000, "the max_body_size() of its view")


def test_every_other_view_has_max_body_size_which_follows_django_by_default(settings):
    assert rule_for("/nowhere/") == Rule(settings.DATA_UPLOAD_MAX_MEMORY_SIZE, DEFAULT_SETTING) == Rule(2621440,
                                                                                                     DEFAULT_SETTING)
    assert rule_for("/nowhere/", default=False) is None
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    assert rule_for("/nowhere/").limit == 1000
    settings.HYPERGEN_WS = {"MAX_BODY_SIZE": 50}
    assert rule_for("/nowhere/").limit == 50 and rule_for("/upload/").limit == 5000
    settings.HYPERGEN_WS = {}
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = None  # Django's "no limit"
    assert rule_for("/nowhere/") is None


def test_daphne_enforces_max_body_size_once_a_body_limit_wraps_the_application():
    BodyLimit(Recorder())  # made by asgi.py at start-up, before any request
    assert daphne_rule_for("POST", "/nowhere/") == Rule(2621440, DEFAULT_SETTING)
    assert daphne_rule_for("GET", URL).setting == "HYPERGEN_WS['PUBLISH_MAX_BODY_SIZE']"


def test_a_limit_is_a_number_of_bytes_or_a_callable():
    for wrong in ("1MB", -1, 2.5, True):
        with pytest.raises(TypeError, match="number of bytes"):
            max_body_size(wrong)


async def test_a_declared_length_over_the_limit_is_refused_without_reading(settings):
    settings.HYPERGEN_WS = {"PUBLISH_MAX_BODY_SIZE": 100}
    inner = Recorder()
    sent, read = await run(BodyLimit(inner), scope(length=400 * 2**20), [b"x" * 1000] * 5)
    assert read == 0 and inner.bodies == []
    assert sent[0]["status"] == 413
    error = json.loads(sent[1]["body"])["error"]
    assert "over the limit of 100 bytes" in error and "HYPERGEN_WS['PUBLISH_MAX_BODY_SIZE']" in error


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


async def test_a_body_over_max_body_size_is_refused_on_any_view_and_method(settings):
    settings.HYPERGEN_WS = {"MAX_BODY_SIZE": 100}
    inner = Recorder()
    app = BodyLimit(inner)
    for method in ("POST", "GET"):
        sent, read = await run(app, scope(path="/accounts/login/", method=method, length=400 * 2**20), [b"x"] * 3)
        assert read == 0 and sent[0]["status"] == 413
        assert "HYPERGEN_WS['MAX_BODY_SIZE']" in json.loads(sent[1]["body"])["error"]
    sent, _ = await run(app, scope(path="/upload/", length=4000), [b"u" * 4000])  # its own, larger limit
    assert sent[0]["status"] == 200 and inner.bodies == [b"u" * 4000]
    chunked = {**scope(path="/accounts/login/"), "http_version": "1.1", "headers": [(b"transfer-encoding", b"chunked")]}
    sent, read = await run(app, chunked, [b"x" * 60] * 4)
    assert read == 2 and sent[0]["status"] == 413 and inner.bodies == [b"u" * 4000]
    plain_get = {**scope(path="/accounts/login/", method="GET"), "http_version": "1.1"}
    sent, read = await run(app, plain_get, [b""])  # HTTP/1.1 without a length or chunks: no body, passed on
    assert sent[0]["status"] == 200 and inner.bodies[-1] == b""
