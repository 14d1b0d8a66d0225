"""Closes that race connects (hypergen_ws.features.revocation): a logout or ``disconnect_user()`` reaches the sockets
of the user that were still connecting when it arrived, in their permission check (before they were counted) or
while they joined their group (counted, not open yet). Across daphne and uvicorn, with sockets connecting while
a logout runs: tests/e2e/test_revocation_race.py."""
from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from django.conf import settings as django_settings

from hypergen_ws import adisconnect_user, autoconsumers
from hypergen_ws.core.state import Identity, Lifecycle
from hypergen_ws.features.access import tables
from hypergen_ws.features.revocation import REVOCATION_MEMORY, Admitted, Revocation, Revocations
from hypergen_ws.testing import ConsumerCommunicator
from tests import gate_consumers, sample_consumers
from tests import sample_consumers as sc
from tests.gate_consumers import GATE, gated, open_gate, waiting
from tests.recutil import use_layer
from tests.test_access import log_out, login_session, said
from tests.users import make_user

pytestmark = pytest.mark.django_db(transaction=True)

application = AuthMiddlewareStack(URLRouter(autoconsumers(gate_consumers, sample_consumers)))


def socket(consumer, session) -> ConsumerCommunicator:
    cookie = {"cookie": f"{django_settings.SESSION_COOKIE_NAME}={session.session_key}"}
    return ConsumerCommunicator(consumer, application=application, headers=cookie, timeout=20)


async def until(condition, what: str, timeout: float = 10) -> None:
    """Poll ``condition`` until it holds (the states it waits for give no event to wait on)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.01)


@pytest.fixture
def gate(tmp_path):
    GATE[:] = [tmp_path]
    yield tmp_path
    open_gate(tmp_path)  # (connects a failed test left waiting go on)
    GATE.clear()


async def test_a_close_reaches_sockets_that_wait_in_their_permission_check(gate):
    sam, kim = await make_user("t_sam"), await make_user("t_kim")
    laptop, phone, kims = await login_session(sam), await login_session(sam), await login_session(kim)
    bystander = socket(sc.listen_only, kims)  # (the process serves sockets: its hub hears closes)
    assert await bystander.connect()
    comms = [socket(gated, laptop), socket(gated, phone), socket(gated, phone), socket(gated, kims)]
    connects = [asyncio.create_task(comm.connect()) for comm in comms]
    await until(lambda: waiting(gate) == 4, "four connects at the gate")
    assert [key for table in tables.by_hub.values() for key in table] == [f"u:{kim.pk}"], "none counted yet"
    await log_out(sam, laptop)  # LOGOUT_CLOSES="user": every socket of sam, of either session
    open_gate(gate)
    assert await asyncio.gather(*connects) == [False, False, False, True]  # refused with the close's code
    assert [comm.accepted for comm in comms] == [True] * 4, "accepted, to be told why they close"
    assert [await comm.wait_closed() for comm in comms[:3]] == [4401, 4401, 4401]
    assert await said(comms[3], "another user stays") == [["said", "t_kim", "another user stays"]]
    # A connect that begins after the logout is a new one: the phone's session is still logged in.
    later = socket(gated, phone)
    assert await later.connect()
    assert await said(later, "phone") == [["said", "t_sam", "phone"]]
    for comm in (later, comms[3], bystander):
        await comm.disconnect()


def connecting(user_key: str) -> list[object]:
    return [conn for table in tables.by_hub.values() for conn in table.get(user_key, ())
            if conn.state.lifecycle is Lifecycle.CONNECTING]


async def test_a_close_reaches_a_socket_that_is_counted_but_still_joining_its_group(settings, redis_server):
    use_layer("redis", settings, redis_server.url)
    settings.HYPERGEN_WS = {"PUBLISH_TIMEOUT": 3.0}
    sam = await make_user("t_sam", "auth.view_user")
    session = await login_session(sam)
    comm = socket(sc.guarded, session)
    redis_server.freeze()  # the join waits for Redis: the socket is counted, and not open
    try:
        connect = asyncio.create_task(comm.connect())
        await until(lambda: len(connecting(f"u:{sam.pk}")) == 1, "the socket counted while it joins")
        sending = asyncio.create_task(adisconnect_user(sam))  # this process's sockets at once; Redis is frozen
        await until(lambda: all(conn.state.extras["access"].revoked for conn in connecting(f"u:{sam.pk}")),
                    "the close marked on the joining socket")
    finally:
        redis_server.thaw()
    assert await connect
    assert await comm.wait_closed() == 4401
    with contextlib.suppress(TimeoutError, ConnectionError):
        await sending


def test_a_hub_remembers_closes_for_connects_under_way_for_a_bounded_time():
    sam, kim = Identity("u:1", 1, "sam", "s1"), Identity("u:2", 2, "kim", None)
    now = time.monotonic()
    revocations = Revocations()
    revocations.record(Revocation(now - REVOCATION_MEMORY - 1, "u:1", None, 4401, "old"))
    revocations.record(Revocation(now, "u:1", "s2", 4401, "another session"))
    assert len(revocations) == 1, "a close older than REVOCATION_MEMORY is forgotten"
    assert revocations.since(now - 1, sam) is None, "a close of another session of sam"
    revocations.record(Revocation(now, "u:1", None, 4000, "every session"))
    assert revocations.since(now - 1, sam).code == 4000
    assert revocations.since(now + 1, sam) is None, "a connect that began after the close"
    assert revocations.since(now - 1, kim) is None, "another user"
    revocations.record(Revocation(now, None, None, 4401, "everyone"))
    assert revocations.since(now - 1, kim).reason == "everyone"
    assert isinstance(Admitted(None), Admitted)
