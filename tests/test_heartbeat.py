"""The heartbeat's wheel (hypergen_ws.delivery.heartbeat): who is pinged, who is closed, what costs nothing."""
from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from hypergen_ws.core.state import ConnectionState
from hypergen_ws.delivery.heartbeat import Heartbeat


class Socket:
    """What the wheel beats: records its pings; answers them when ``answers`` (after ``heard()``)."""

    def __init__(self, answers: bool = True, groups: tuple[str, ...] = ()) -> None:
        self.outbox = SimpleNamespace(sent_at=0.0)
        self.state = ConnectionState(groups=list(groups))
        self.answers = answers
        self.pings = 0
        self.unanswered = asyncio.Event()
        self.beat = None

    def ping(self) -> None:
        self.pings += 1
        if self.answers:
            self.beat.heard()

    def ping_unanswered(self) -> None:
        self.unanswered.set()


def wheel(group_sent=None, interval=0.1, timeout=0.2) -> Heartbeat:
    return Heartbeat(asyncio.get_running_loop(), group_sent if group_sent is not None else {}, interval, timeout)


def add(heart: Heartbeat, socket: Socket, strict: bool = False) -> Socket:
    socket.beat = heart.add(socket, strict=strict)
    return socket


async def until(condition, bound: float = 5.0) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true within the bound"
        await asyncio.sleep(0.01)


async def test_quiet_sockets_are_pinged_again_and_again_while_they_answer():
    heart = wheel()
    sockets = [add(heart, Socket()) for _ in range(50)]
    await until(lambda: all(s.pings >= 3 for s in sockets))
    assert not any(s.unanswered.is_set() for s in sockets) and len(heart) == 50


async def test_a_socket_that_does_not_answer_is_given_up_and_leaves_the_wheel():
    heart = wheel()
    deaf, alive = add(heart, Socket(answers=False)), add(heart, Socket())
    await asyncio.wait_for(deaf.unanswered.wait(), 5)
    assert deaf.pings == 1, "one ping, then the timeout"
    assert len(heart) == 1
    await until(lambda: alive.pings >= 3)
    assert not alive.unanswered.is_set()


async def test_frames_to_a_socket_or_its_group_put_its_ping_off():
    sent_at: dict[str, float] = {}
    heart = wheel(sent_at)
    own, grouped, idle = add(heart, Socket()), add(heart, Socket(groups=("g",))), add(heart, Socket())
    for _ in range(40):  # 0.8 s of frames every 20 ms, well inside the 0.1 s interval
        own.outbox.sent_at = sent_at["g"] = time.monotonic()
        await asyncio.sleep(0.02)
    assert own.pings == 0 and grouped.pings == 0, "a busy socket pays nothing"
    assert idle.pings >= 2


async def test_a_strict_socket_is_pinged_when_its_client_is_silent_however_busy():
    sent_at: dict[str, float] = {}
    heart = wheel(sent_at)
    strict = add(heart, Socket(answers=False, groups=("g",)), strict=True)
    relaxed = add(heart, Socket(answers=False, groups=("g",)))

    async def busy() -> None:
        while True:
            sent_at["g"] = time.monotonic()
            await asyncio.sleep(0.02)

    task = asyncio.create_task(busy())
    try:
        await asyncio.wait_for(strict.unanswered.wait(), 5)
        assert relaxed.pings == 0 and not relaxed.unanswered.is_set()
    finally:
        task.cancel()


async def test_the_wheel_has_no_timer_without_sockets_and_a_removed_socket_is_never_pinged():
    heart = wheel()
    assert heart._timer is None
    gone = add(heart, Socket(answers=False))
    assert heart._timer is not None
    gone.beat.stop()
    gone.beat.stop()  # idempotent
    assert len(heart) == 0 and heart._timer is None
    other = add(heart, Socket())
    await until(lambda: other.pings >= 2)
    assert gone.pings == 0


async def test_the_default_wheel_looks_at_each_socket_once_per_slot_not_every_tick():
    heart = Heartbeat(asyncio.get_running_loop(), {}, 25.0, 10.0)
    assert heart.resolution == 1.0
    sockets = [add(heart, Socket()) for _ in range(1000)]
    assert len(heart.slots) <= 2, "sockets opened within a second share one or two slots"
    for socket in sockets:
        socket.beat.stop()
    assert heart.slots == {} and heart._timer is None
