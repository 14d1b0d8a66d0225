"""Rate limits (hypergen_ws.features.ratelimit): a token bucket per connection, rate_limited errors, 1008."""
from __future__ import annotations

import pytest
from channels.routing import URLRouter
from django.core.exceptions import ImproperlyConfigured

from hypergen_ws import NO_PERM_REQUIRED, autoconsumers, consumer
from hypergen_ws.features.ratelimit import Bucket, parse_rate
from tests.recutil import next_close, opened

# The consumers' sync functions run in a thread that may hold a database connection from an earlier
# transactional test; Django checks it before and after each call.
pytestmark = pytest.mark.django_db


class Clock:
    """The buckets' clock, moved by hand: refills happen exactly when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(Bucket, "clock", staticmethod(fake))
    return fake


def module_with(**options):
    """A module with one consumer, ``limited``, declared with ``options``; the consumer and its router."""
    import types

    module = types.ModuleType("tests.ratelimited")

    def limited(consumer, request, n):
        return [["n", n]]

    limited.__module__ = module.__name__
    module.limited = consumer(perm=NO_PERM_REQUIRED, app_label="tests", send_to="caller", **options)(limited)
    return module.limited, URLRouter(autoconsumers(module))


async def open_limited(limited_and_router):
    limited, router = limited_and_router
    return await opened(limited, application=router)


async def frames(comm, count):
    return [await comm.receive() for _ in range(count)]


async def test_a_burst_passes_the_next_call_is_refused_and_an_abuser_is_closed_with_1008(clock):
    comm = await open_limited(module_with(rate="5/s", burst=3))
    for n in range(4):
        await comm.send({"args": [n], "id": n})
    got = await frames(comm, 7)
    assert sorted(f["id"] for f in got if f["type"] == "reply") == [0, 1, 2]
    [refused] = [f for f in got if f["type"] == "error"]
    assert refused["code"] == "rate_limited" and refused["id"] == 3
    assert "takes 5 per second (bursts of 3)" in refused["message"]
    clock.now += 0.2  # one token back: an honest client that waits is served again
    await comm.send({"args": [9], "id": 9})
    assert [f["type"] for f in await frames(comm, 2)] == ["commands", "reply"]
    for n in range(3):  # refused, refused, refused (bad frames cost a token too) ...
        await comm.send("{not json" if n == 1 else {"args": [n], "id": 10 + n})
    assert [(f["code"], f.get("id")) for f in await frames(comm, 3)] == [
        ("rate_limited", 10), ("rate_limited", None), ("rate_limited", 12)]
    await comm.send({"args": [0], "id": 20})  # ... and one more: closed
    assert await next_close(comm) == (1008, "Rate limit exceeded.")


async def test_the_settings_give_the_default_and_rate_none_switches_it_off(settings, clock):
    settings.HYPERGEN_WS = {"RATE_LIMIT": "2/s"}  # burst: twice the rate per second
    comm = await open_limited(module_with())
    for n in range(5):
        await comm.send({"args": [n], "id": n})
    got = await frames(comm, 9)
    assert [f.get("code") for f in got if f["type"] == "error"] == ["rate_limited"]
    unlimited = await open_limited(module_with(rate=None))
    for n in range(100):
        await unlimited.send({"args": [n], "id": n})
    assert all(f["type"] != "error" for f in await frames(unlimited, 200))
    settings.HYPERGEN_WS = {"RATE_LIMIT": None}
    off = await open_limited(module_with())
    for n in range(100):
        await off.send({"args": [n], "id": n})
    assert all(f["type"] != "error" for f in await frames(off, 200))


async def test_raw_frames_are_limited_too(clock):
    comm = await open_limited(module_with(rate="1/s", burst=1, frames="json"))
    await comm.send("1")
    await comm.send('{"id": 6, "x": 2}')  # raw frames carry no call id, even one that looks like it
    got = await frames(comm, 2)
    assert {"type": "commands", "commands": [["n", 1]]} in got
    [refused] = [f for f in got if f["type"] == "error"]
    assert refused["code"] == "rate_limited" and "id" not in refused


async def test_frames_are_counted_when_they_arrive_not_when_their_turn_comes(clock):
    """Frames sent while a call runs are refused at once: they never wait behind it, and never run later."""
    import asyncio
    import types

    gate = asyncio.Event()
    module = types.ModuleType("tests.ratelimited_slow")

    async def slow(consumer, request, n):
        if n == 0:
            await gate.wait()
        return [["n", n]]

    slow.__module__ = module.__name__
    module.slow = consumer(perm=NO_PERM_REQUIRED, app_label="tests", send_to="caller", rate="1/s", burst=3)(slow)
    comm = await opened(module.slow, application=URLRouter(autoconsumers(module)))
    for n in range(5):
        await comm.send({"args": [n], "id": n})
    first = await frames(comm, 2)  # call 0 still waits at the gate: calls 3 and 4 are refused meanwhile
    assert [(f["type"], f["code"], f["id"]) for f in first] == [("error", "rate_limited", 3),
                                                                 ("error", "rate_limited", 4)]
    gate.set()
    rest = await frames(comm, 6)
    assert [(f["type"], f.get("id")) for f in rest] == [("commands", None), ("reply", 0)] + [
        ("commands", None), ("reply", 1), ("commands", None), ("reply", 2)]
    await comm.assert_nothing()


def test_rates_are_written_like_drf_throttles():
    assert parse_rate("20/s", "x") == 20
    assert parse_rate("100/min", "x") == pytest.approx(100 / 60)
    assert parse_rate("1000/hour", "x") == pytest.approx(1000 / 3600)
    assert parse_rate("5/10s", "x") == 0.5
    for bad in ("fast", "20", "0/s", "-1/s", 20):
        with pytest.raises(ImproperlyConfigured, match="write a number of frames per period, e.g. '20/s'"):
            module_with(rate=bad)
    with pytest.raises(ImproperlyConfigured, match="burst=0; pass how many frames may arrive at once"):
        module_with(rate="5/s", burst=0)
