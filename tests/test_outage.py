"""An outage of the channel layer logged once per process (hypergen_ws.delivery.outage), with a real redis-server
killed and started again, and the errors of a real Redis told from bugs."""
from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from redis import asyncio as aioredis

from hypergen_ws.delivery import outage
from hypergen_ws.delivery.publishing import LayerUnavailable, apublish
from tests import sample_consumers as sc
from tests.recutil import use_layer

pytestmark = pytest.mark.django_db(transaction=True)

FRAME = '{"type":"message","data":1}'


def outage_lines(caplog: Any) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records
            if getattr(r, "event", None) in ("layer_unavailable", "layer_available")]


async def test_an_outage_gives_one_warning_when_it_starts_and_one_info_with_the_count_when_it_ends(
        settings: Any, redis_server: Any, caplog: Any) -> None:
    use_layer("redis", settings, redis_server.url)
    settings.HYPERGEN_WS = {"PUBLISH_TIMEOUT": 2}
    group = sc.echo.group_name(room="outage")
    await apublish(group, FRAME)
    caplog.set_level(logging.DEBUG, "hypergen_ws")
    redis_server.kill()
    for _ in range(5):
        with pytest.raises((LayerUnavailable, TimeoutError)):
            await apublish(group, FRAME)
    lines = outage_lines(caplog)
    assert len(lines) == 1 and lines[0][0] == "WARNING", lines
    assert "The channel layer (Redis) is unavailable: a publish failed" in lines[0][1]
    redis_server.start()
    await apublish(group, FRAME)
    await apublish(group, FRAME)
    lines = outage_lines(caplog)
    assert [level for level, _ in lines] == ["WARNING", "INFO"], lines
    assert re.search(r"answers again after [\d.]+ s; 5 operations failed meanwhile \(publish 5\)", lines[1][1])
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.exc_info], "no traceback above DEBUG"


async def test_errors_of_a_real_redis_are_an_outage_only_when_redis_cannot_be_used(redis_server: Any) -> None:
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        with pytest.raises(Exception) as bug:
            await client.execute_command("NO_SUCH_COMMAND")  # a ResponseError: a bug, not an outage
        assert not outage.is_outage(bug.value)
        wrapped = LayerUnavailable("Publishing failed")
        wrapped.__cause__ = bug.value
        assert not outage.is_outage(wrapped), "judged by what it was raised from"
        redis_server.kill()
        with pytest.raises(Exception) as down:
            await client.ping()
        assert outage.is_outage(down.value)
        wrapped.__cause__ = down.value
        assert outage.is_outage(wrapped)
        assert outage.is_outage(TimeoutError("no answer within 10 s"))
        assert not outage.is_outage(ValueError("not JSON"))
    finally:
        await client.aclose()
        redis_server.start()


async def test_a_failure_that_is_no_outage_is_not_counted(caplog: Any) -> None:
    caplog.set_level(logging.DEBUG, "hypergen_ws")
    assert outage.failed("publish", ValueError("a bug")) is False
    outage.answered()
    assert outage_lines(caplog) == []
