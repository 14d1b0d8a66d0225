"""The per-socket outbox (hypergen_ws.delivery.outbox): order, overflow, pause, failure, close."""
from __future__ import annotations

import asyncio

from hypergen_ws.delivery.outbox import Outbox
from tests.support.sockets import Socket, started_outbox


async def test_outbox_writes_to_an_idle_socket_at_once_without_a_task():
    socket = Socket()
    outbox = started_outbox(socket)
    tasks_before = len(asyncio.all_tasks())
    for i in range(100):
        outbox.push_text(str(i))
        assert socket.sent[-1] == str(i), "an idle socket gets the frame inside push()"
    assert outbox._task is None and len(asyncio.all_tasks()) == tasks_before
    assert len(outbox) == 0


async def test_outbox_keeps_order_behind_a_blocked_send():
    socket = Socket()
    outbox = started_outbox(socket)
    outbox.push_text("0")
    socket.block()
    for i in range(1, 50):
        outbox.push_text(str(i))
    assert socket.sent == ["0"] and len(outbox) == 48, "frame 1 is in the blocked send, 2..49 wait"
    socket.unblock()
    await asyncio.sleep(0.01)
    assert socket.sent == [str(i) for i in range(50)]
    outbox.push_text("50")
    assert socket.sent[-1] == "50", "after draining the socket is idle again"


async def test_outbox_frames_before_start_wait_and_are_not_overflow():
    socket = Socket()
    overflows: list[int] = []
    outbox = Outbox(socket.send, 3, lambda: overflows.append(1))
    outbox.push_text("b")
    outbox.push_first({"type": "websocket.send", "text": "a"})
    for i in range(10):
        outbox.push_text(f"c{i}")
    assert socket.sent == []
    outbox.start()
    await asyncio.sleep(0.01)
    assert socket.sent == ["a", "b", *(f"c{i}" for i in range(10))]
    assert not overflows


async def test_outbox_overflows_only_when_limit_frames_wait_behind_a_blocked_send():
    socket = Socket()
    overflows: list[int] = []
    outbox = started_outbox(socket, limit=5, overflows=overflows)
    for i in range(1000):  # a burst to an idle, reading socket is no overflow
        outbox.push_text(str(i))
    assert not overflows and len(socket.sent) == 1000
    socket.block()
    outbox.push_text("blocked")
    for i in range(5):
        outbox.push_text(f"w{i}")
    assert not overflows and len(outbox) == 5
    outbox.push_text("one too many")
    assert overflows == [1] and outbox.overflowed and len(outbox) == 0
    calls = socket.calls
    for i in range(10_000):  # nothing more is kept or sent
        outbox.push_text(str(i))
    assert len(outbox) == 0 and socket.calls == calls and overflows == [1]
    await outbox.flush_and_stop()


async def test_outbox_pause_holds_frames_and_resume_sends_them_in_order():
    socket = Socket()
    overflows: list[int] = []
    outbox = started_outbox(socket, limit=3, overflows=overflows)
    outbox.push_text("0")
    outbox.pause()
    outbox.push_text("1")
    outbox.push_text("2")
    assert socket.sent == ["0"] and len(outbox) == 2
    outbox.resume()
    await asyncio.sleep(0.01)
    assert socket.sent == ["0", "1", "2"]
    outbox.pause()
    for i in range(4):
        outbox.push_text(str(i))
    assert overflows == [1], "paused frames count towards the limit"


async def test_outbox_send_failure_closes_it_quietly():
    socket = Socket()
    outbox = started_outbox(socket)
    socket.error = OSError("client went away")
    outbox.push_text("x")
    assert outbox.closed
    socket.error = None
    outbox.push_text("y")
    assert socket.sent == []


async def test_outbox_close_ends_sending_and_flush_and_stop_cancels_a_blocked_send():
    socket = Socket()
    outbox = started_outbox(socket)
    outbox.push({"type": "websocket.close", "code": 1000})
    outbox.push_text("after close")
    assert socket.sent == ["websocket.close"] and outbox.closed

    socket = Socket()
    outbox = started_outbox(socket)
    socket.block()
    outbox.push_text("stuck")
    outbox.push_text("waiting")
    await asyncio.sleep(0.01)
    await outbox.flush_and_stop()
    assert outbox._task is None and len(outbox) == 0 and socket.sent == []


async def test_wrap_send_changes_or_drops_every_message_and_turns_off_direct_writes():
    socket = Socket()
    outbox = Outbox(socket.send, 10, lambda: None)
    written: list[bytes] = []
    outbox.direct = lambda frame: written.append(frame) is None

    def upper(send):
        async def wrapped(message):
            if message.get("text") == "drop":
                return
            await send({**message, "text": message["text"].upper()} if "text" in message else message)
        return wrapped

    outbox.wrap_send(upper)
    assert outbox.direct is None
    outbox.start()
    outbox.push_text("queued")
    outbox.push_text("drop")
    outbox.push_encoded({"type": "websocket.send", "text": "group"}, b"\x81\x05group")
    assert socket.sent == ["QUEUED", "GROUP"] and written == []
