"""A publisher in its own process, like a task worker: ``python -m tests.e2e.publisher --count 1000``.

Needs ``DJANGO_SETTINGS_MODULE=testproject.settings`` and ``REDIS_URL``. Publishes ``{"i": n, "pad": "..."}``
for n = 0..count-1 to the notifications group with the sync ``group_send``, one call per message, from the main
thread or (``--threads``) from a new short-lived thread per call, as thread-pool workers do. Prints one JSON line:
the count, the seconds it took and the most connections to Redis this process held at once.
"""
from __future__ import annotations

import argparse
import json
import threading
import time

import django
import psutil


def redis_connections(port: int) -> int:
    """Open TCP connections of this process to the redis-server on ``port``."""
    return sum(1 for c in psutil.Process().net_connections("tcp")
               if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--pad", type=int, default=0, help="characters of padding in every message")
    parser.add_argument("--threads", action="store_true", help="publish each message from a new thread")
    parser.add_argument("--interval", type=float, default=0.0, help="seconds between two messages")
    parser.add_argument("--tag", default="", help="added to every message as \"tag\" (tells publishers apart)")
    args = parser.parse_args()

    django.setup()
    from django.conf import settings

    from hypergen_ws import group_send
    from testproject.notifications.consumers import listen

    port = int(settings.REDIS_URL.rsplit(":", 1)[1].split("/")[0])
    group = listen.group_name()
    pad = "x" * args.pad
    most = 0
    started = time.perf_counter()
    for i in range(args.count):
        if args.threads:
            errors: list[BaseException] = []

            def publish(n: int = i) -> None:
                try:
                    group_send(group, {"i": n, "pad": pad, "tag": args.tag})
                except BaseException as exc:  # reported below
                    errors.append(exc)

            thread = threading.Thread(target=publish)
            thread.start()
            thread.join()
            if errors:
                raise errors[0]
        else:
            group_send(group, {"i": i, "pad": pad, "tag": args.tag})
        if i % 50 == 0 or i == args.count - 1:
            most = max(most, redis_connections(port))
        if args.interval:
            time.sleep(args.interval)
    print(json.dumps({"count": args.count, "seconds": round(time.perf_counter() - started, 3),
                      "max_redis_connections": most}), flush=True)


if __name__ == "__main__":
    main()
