"""What anonymous large websocket frames cost a server: its RSS while clients send frames over ``MAX_MESSAGE_SIZE``.

Each round opens ``--sockets`` anonymous sockets to the demo's counter (``perm=NO_PERM_REQUIRED``) at once, and
each sends one text frame of ``--frame-mib`` MiB as fast as the server reads it; the round ends when every socket
is closed (hypergen_ws closes with 1009 once the server hands it the frame; a server whose own limit is lower
closes before reading the payload). The script prints the server's RSS before and after every round, for each
``--ws-max-size`` given (uvicorn's default is 16 MiB; docs/security.rst says to start it with ``MAX_MESSAGE_SIZE``).

.. code-block:: shell

   python benchmarks/frame_memory.py                                   # uvicorn's default, then 1 MiB
   python benchmarks/frame_memory.py --server daphne --limits 0 1048576 # daphne: 0 is no limit
"""
from __future__ import annotations

import argparse
import asyncio
import os
import struct
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.servers import AsgiServer  # noqa: E402

PATH = "/ws/counter/increment/"
MiB = 2**20


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / MiB


async def send_big_frame(port: int, size: int, deadline: float) -> str:
    """Handshake, then send one masked text frame of ``size`` bytes; what ended it (a close code, or a reason)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    writer.write((f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n\r\n"
                  ).encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    if not head.startswith(b"HTTP/1.1 101"):
        writer.close()
        return "refused"
    mask = os.urandom(4)
    chunk = bytes(b ^ mask[i % 4] for i, b in enumerate(b"x" * 4)) * (MiB // 4)  # "x" masked: the mask repeats
    writer.write(bytes((0x81, 0x80 | 127)) + struct.pack("!Q", size) + mask)
    sent = 0
    try:
        while sent < size and time.monotonic() < deadline:
            writer.write(chunk[: min(MiB, size - sent)])
            sent += min(MiB, size - sent)
            await writer.drain()
    except ConnectionError:  # the server stopped reading: its answer may be waiting
        pass
    outcome = f"answered after {sent // MiB} MiB sent: "
    try:
        data = await asyncio.wait_for(reader.read(64), max(1.0, deadline - time.monotonic()))
        outcome += f"close {struct.unpack('!H', data[2:4])[0]}" if len(data) >= 4 and data[0] & 0x0F == 8 else \
            "dropped"
    except ConnectionError:
        outcome += "dropped"
    except TimeoutError:
        outcome = f"no answer after {sent // MiB} MiB sent"
    finally:
        writer.close()
    return outcome


async def run(server: AsgiServer, args: argparse.Namespace) -> None:
    assert server.process is not None
    pid = server.process.pid
    size = int(args.frame_mib * MiB)
    print(f"  start: {rss_mib(pid):7.1f} MiB")
    for number in range(1, args.rounds + 1):
        deadline = time.monotonic() + args.max_seconds
        outcomes = await asyncio.gather(*(send_big_frame(server.port, size, deadline) for _ in range(args.sockets)))
        counts = {o: outcomes.count(o) for o in sorted(set(outcomes))}
        await asyncio.sleep(0.5)  # the server frees what it will free
        print(f"  round {number}: {rss_mib(pid):7.1f} MiB  ({', '.join(f'{n} {o}' for o, n in counts.items())})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    parser.add_argument("--limits", type=int, nargs="+", default=[16 * MiB, MiB],
                        help="the server's message limits to run with, in bytes (uvicorn --ws-max-size, daphne "
                             "--websocket-max-message-size and --websocket-max-frame-size)")
    parser.add_argument("--sockets", type=int, default=10, help="sockets per round, all at once")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--frame-mib", type=float, default=15.0)
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time limit of one round")
    args = parser.parse_args()
    for limit in args.limits:
        flags = (["--ws-max-size", str(limit)] if args.server == "uvicorn" else
                 ["--websocket-max-message-size", str(limit), "--websocket-max-frame-size", str(limit)])
        print(f"{args.server} {' '.join(flags)}: {args.rounds} rounds of {args.sockets} anonymous "
              f"{args.frame_mib:g} MiB frames")
        with AsgiServer(server=args.server, server_args=flags) as server:
            asyncio.run(run(server, args))


if __name__ == "__main__":
    main()
