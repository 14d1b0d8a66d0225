"""hypergen_ws.client.connect against a scripted websockets server: the protocol's rules that a live hypergen_ws
server cannot be made to break on demand (a skipped seq, a new epoch, a ping, a reconnect hint, an expiring
token). The same client against real daphne and uvicorn servers: tests/e2e/test_tokens_live.py."""
from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

from hypergen_ws.client import (CallResult, NoRoute, NotAuthenticated, PermissionDenied, PublishClient,
                                connect)
from hypergen_ws.client.position import Position, backoff


class Script:
    """A websockets server that runs ``handler(ws, n)`` for its n-th socket (0 first) and records the URLs and
    headers it was opened with."""

    def __init__(self, handler):
        self.handler = handler
        self.paths: list[str] = []
        self.auth: list[str | None] = []
        self.received: list[dict] = []

    async def __aenter__(self):
        async def run(ws):
            n = len(self.paths)
            self.paths.append(ws.request.path)
            self.auth.append(ws.request.headers.get("Authorization"))
            await self.handler(ws, n)

        self.server = await serve(run, "127.0.0.1", 0, subprotocols=["hypergen-ws"])
        self.url = f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/ws/app/name/"
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()

    async def read(self, ws) -> dict:
        frame = json.loads(await ws.recv())
        self.received.append(frame)
        return frame


def msg(seq, epoch=7, n=None):
    return json.dumps({"seq": seq, "epoch": epoch, "type": "message", "data": {"n": seq if n is None else n}})


async def take(conn, count):
    got = []
    async with asyncio.timeout(10):
        async for frame in conn.frames():
            got.append(frame)
            if len(got) == count:
                return got


def test_the_position_rules_are_the_js_clients():
    p = Position()
    assert p.track({"type": "message", "seq": 5, "epoch": 1}) == "handle"  # before the sync: taken as it comes
    assert p.track({"type": "sync", "seq": 5, "epoch": 1}) == "handle" and p.synced
    assert p.track({"type": "message", "seq": 5, "epoch": 1}) == "drop"
    assert p.track({"type": "message", "seq": 6, "epoch": 1}) == "handle"
    assert p.track({"type": "message", "seq": 8, "epoch": 1}) == ("recover", 8)
    assert p.track({"type": "message", "seq": 2, "epoch": 9}) == (
        "resync", {"type": "resync", "reason": "epoch_changed", "seq": 2, "epoch": 9})
    assert p.url("ws://h/ws/a/b/?x=1") == "ws://h/ws/a/b/?x=1&hgws_seq=2&hgws_epoch=9"
    assert [backoff(n, 0.5, 2, 30, lambda: 1.0) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff(3, 0.5, 2, 30, lambda: 0.0) == 2.0  # "equal jitter": half of it at least


def test_the_same_epoch_and_seq_is_never_handled_twice_across_resyncs_and_epochs():
    """The rules of hypergen-ws.js (tests/js/recovery.test.mjs has the same cases)."""
    p = Position()
    p.track({"type": "sync", "seq": 0, "epoch": 77})
    assert [p.track({"type": "message", "seq": n, "epoch": 77}) for n in (1, 2, 3)] == ["handle"] * 3
    # a late frame of an epoch left: dropped, not taken as a second resync
    assert p.track({"type": "message", "seq": 1, "epoch": 88})[0] == "resync"
    assert p.track({"type": "message", "seq": 2, "epoch": 77}) == "drop"
    assert (p.last_seq, p.epoch) == (1, 88)
    # the history went back in epoch 77 (a resync to seq 1), then forward: 2-3 are replayed again
    p.reset_socket()
    p.track({"type": "resync", "reason": "unknown_position", "seq": 1, "epoch": 77})
    p.reset_socket()
    p.track({"type": "sync", "seq": 1, "epoch": 77})
    assert [p.track({"type": "message", "seq": n, "epoch": 77}) for n in (2, 3)] == ["drop", "drop"]
    assert (p.last_seq, p.epoch) == (3, 77)  # the position moved: no gap, no reconnect
    assert p.track({"type": "message", "seq": 4, "epoch": 77}) == (
        "resync", {"type": "resync", "reason": "rolled_back", "seq": 4, "epoch": 77})
    assert p.track({"type": "message", "seq": 5, "epoch": 77}) == "handle"
    for epoch in range(100, 110):  # only the last 8 epochs are remembered
        p.track({"type": "message", "seq": 1, "epoch": epoch})
    assert sorted(p.handled) == list(range(102, 110))


def test_publish_client_is_still_importable_where_it_was():
    assert PublishClient.__module__ == "hypergen_ws.client.publish"
    with pytest.raises(ValueError, match="websocket URL"):
        connect("http://example.com/ws/a/b/")


async def test_a_call_gets_its_commands_and_reply_and_group_frames_come_in_order_once():
    async def handler(ws, n):
        await ws.send(json.dumps({"type": "sync", "seq": 0, "epoch": 7, "replayed": 0}))
        call = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "commands", "commands": [["said", call["args"][0]]]}))
        await ws.send(json.dumps({"type": "reply", "id": call["id"]}))
        for seq in (1, 1, 2):  # a duplicate is dropped
            await ws.send(msg(seq))
        await ws.wait_closed()

    async with Script(handler) as server, connect(server.url, token="tok") as conn:
        result = await conn.call("hi")
        assert isinstance(result, CallResult) and result.commands == [["said", "hi"]]
        assert result.reply == {"type": "reply", "id": 1} and result.error is None
        frames = await take(conn, 3)
        assert [f["type"] for f in frames] == ["commands", "message", "message"]
        assert [f["data"]["n"] for f in frames[1:]] == [1, 2]
    assert server.auth == ["Bearer tok"]


async def test_a_skipped_seq_reconnects_with_the_last_one_and_a_new_epoch_is_a_resync_frame():
    async def handler(ws, n):
        if n == 0:
            await ws.send(json.dumps({"type": "sync", "seq": 0, "epoch": 7, "replayed": 0}))
            await ws.send(msg(1))
            await ws.send(msg(3))  # 2 is missing: the client reconnects from 1
        else:
            await ws.send(json.dumps({"type": "sync", "seq": 1, "epoch": 7, "replayed": 2}))
            await ws.send(msg(2))
            await ws.send(msg(3))
            await ws.send(msg(1, epoch=8))  # the group's history started over
        await ws.wait_closed()

    async with Script(handler) as server, connect(server.url) as conn:
        frames = await take(conn, 5)
    assert [(f["type"], f.get("seq")) for f in frames] == [
        ("message", 1), ("message", 2), ("message", 3), ("resync", 1), ("message", 1)]
    assert frames[3]["reason"] == "epoch_changed"
    assert parse_qs(urlsplit(server.paths[1]).query) == {"hgws_seq": ["1"], "hgws_epoch": ["7"]}


async def test_a_redacted_frame_of_a_replay_counts_for_the_position_and_is_not_handed_on():
    async def handler(ws, n):
        await ws.send(json.dumps({"type": "sync", "seq": 0, "epoch": 7, "replayed": 3}))
        await ws.send(msg(1))
        await ws.send(json.dumps({"seq": 2, "epoch": 7, "type": "redacted"}))
        await ws.send(msg(3))
        await ws.wait_closed()

    async with Script(handler) as server, connect(server.url) as conn:
        frames = await take(conn, 2)
        assert [(f["type"], f["seq"]) for f in frames] == [("message", 1), ("message", 3)]
    assert len(server.paths) == 1, "no gap: the client did not reconnect to recover seq 2"


async def test_pings_are_answered_a_reconnect_hint_is_honoured_and_a_token_is_refreshed():
    tokens = iter(["first", "second", "third"])

    async def handler(ws, n):
        if n == 0:
            await ws.send('{"type":"ping"}')
            assert await server.read(ws) == {"type": "pong"}
            await ws.send(json.dumps({"type": "token", "event": "expiring", "expires_at": 1.0}))
            assert await server.read(ws) == {"type": "token", "token": "second"}
            await ws.send(json.dumps({"type": "reconnect", "delay": 0}))
            await ws.close(1012, "restarting")
        else:
            await ws.send(json.dumps({"type": "message", "data": "back"}))
            await ws.wait_closed()

    async with Script(handler) as server:
        async with connect(server.url, get_token=lambda: next(tokens), backoff_base=60) as conn:
            [frame] = await take(conn, 1)  # a backoff of 60 s would time out: the hint said 0
        assert frame == {"type": "message", "data": "back"}
        assert server.auth == ["Bearer first", "Bearer third"]


@pytest.mark.parametrize("code, error", [(4401, NotAuthenticated), (4403, PermissionDenied)])
async def test_refusals_raise_and_do_not_reconnect(code, error):
    async def handler(ws, n):
        await ws.close(code)

    async with Script(handler) as server:
        async with connect(server.url, token="t") as conn:  # accepted, then closed at once: as the server refuses
            with pytest.raises(error, match=str(code)) as caught:
                async with asyncio.timeout(10):
                    async for _ in conn.frames():
                        pass
            assert caught.value.code == code
            with pytest.raises(error):
                await conn.call("after the refusal")
        assert len(server.paths) == 1, "no reconnect after a refusal"


async def test_a_refused_handshake_is_no_route_and_a_lost_call_is_disconnected():
    async def process_request(connection, request):
        return Response(403, "Forbidden", Headers(), b"")

    server = await serve(lambda ws: None, "127.0.0.1", 0, process_request=process_request)
    url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws/x/"
    with pytest.raises(NoRoute, match="HTTP 403"):
        async with connect(url):
            pass
    server.close()

    async def handler(ws, n):
        await ws.recv()
        await ws.close(1011)  # the reply never comes

    async with Script(handler) as script, connect(script.url, backoff_base=0.01) as conn:
        from hypergen_ws.client import Disconnected
        with pytest.raises(Disconnected, match="may or may not have run"):
            await conn.call("x")
