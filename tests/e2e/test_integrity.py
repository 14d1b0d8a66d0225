"""Integrity under hostile input, against real servers: unroutable paths, forged frames, origins, redirects."""
from __future__ import annotations

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from tests.e2e.wsclients import _origin
from tests.support.servers import log_tail

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("server_kind", ["daphne", "uvicorn"])
async def test_an_unroutable_websocket_path_is_refused_with_one_log_line(server_kind, live_server_factory):
    server = live_server_factory(server=server_kind)
    url = server.ws_url + "/ws/chat/no_such_consumer/"
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(url, origin=_origin(url), open_timeout=10):
            pass
    assert refused.value.response.status_code == 403
    log = log_tail(server.log_path, 200)
    assert log.count("No websocket route for path '/ws/chat/no_such_consumer/'") == 1, log
    assert "Traceback" not in log and " 500" not in log, log
