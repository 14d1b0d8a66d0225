"""Dispatch: Django's close_old_connections() runs before an event only where the app's own code may need it."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hypergen_ws import consumers
from hypergen_ws.testing.fixtures import CommunicatorFactory
from tests import feature_consumers as fc
from tests import sample_consumers as sc
from tests.wsutil import application

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hgws_application() -> Any:
    return application


@pytest.fixture
def cleanups(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every ``close_old_connections()`` a connection runs before it handles an event (still run for real).

    (Channels' test communicator makes Django's own function a no-op while it sends and receives, so the
    dispatch's call is what is counted.)"""
    seen: list[str] = []
    real = consumers.aclose_old_connections

    async def counted() -> None:
        seen.append("cleanup")
        await real()

    monkeypatch.setattr(consumers, "aclose_old_connections", counted)
    yield seen


@pytest.mark.parametrize(("spec", "event", "expected"), [
    (sc.echo, "websocket.connect", False),  # NO_PERM_REQUIRED, no hooks
    (sc.echo, "websocket.receive", False),  # a sync function: database_sync_to_async cleans up itself
    (sc.echo, "websocket.disconnect", False),
    (sc.aecho, "websocket.receive", True),  # an async function may use the async ORM
    (sc.aecho, "websocket.connect", False),
    (sc.guarded, "websocket.connect", False),  # a permission string: checked in a worker thread
    (sc.even_only, "websocket.connect", True),  # an async permission callable
    (fc.ordered, "websocket.connect", True),  # an async on_connect hook
    (fc.ordered, "websocket.disconnect", False),
    (fc.hooked, "websocket.disconnect", True),  # an async on_disconnect hook
    (fc.hooked, "websocket.connect", False),  # a sync on_connect hook
    (sc.with_handlers, "websocket.connect", True),  # a consumer_class_base subclass: Channels' rule, always
    (sc.with_handlers, "hypergen_ws.layer_event", True),
    (sc.echo, "hypergen_ws.layer_event", False),
])
def test_which_events_close_old_connections_first(spec: Any, event: str, expected: bool) -> None:
    assert spec.closes_old_connections(event) is expected


async def test_a_sync_consumer_never_takes_the_extra_thread_hop(
        hgws_communicator: CommunicatorFactory, cleanups: list[str]) -> None:
    async with hgws_communicator(sc.echo, room="lobby") as comm:
        result = await comm.call("hi")  # the function cleans up in its own worker thread
        assert result.commands == [["hypergen.append", "messages", "<li>hi</li>"]]
    assert comm.close_code is None
    assert cleanups == []


async def test_an_async_consumer_cleans_up_before_each_call_as_channels_does(
        hgws_communicator: CommunicatorFactory, cleanups: list[str]) -> None:
    async with hgws_communicator(sc.aecho, room="lobby") as comm:
        assert cleanups == []
        await comm.call("a")
        await comm.call("b")
        assert cleanups == ["cleanup", "cleanup"]
    assert cleanups == ["cleanup", "cleanup"]


async def test_a_subclassed_consumer_cleans_up_before_every_event(
        hgws_communicator: CommunicatorFactory, cleanups: list[str]) -> None:
    async with hgws_communicator(sc.with_handlers) as comm:
        assert cleanups == ["cleanup"]  # the connect
        await comm.call()
        assert cleanups == ["cleanup"] * 2
    assert cleanups == ["cleanup"] * 3  # and the disconnect
