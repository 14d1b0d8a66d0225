"""A publisher in its own process, like a task worker: ``python -m tests.support.chaos.worker NAME ROOM...``.

Needs the chaos run's environment (``DJANGO_SETTINGS_MODULE=tests.e2e.chaos_settings`` and the Sentinel's
address). Calls the sync ``group_send`` in a loop, one message ``{"id": "NAME:n"}`` at a time, round robin over
the rooms of ``tests.chaos_consumers.chaos_feed`` and ``chaos_room`` (``feed/<room>`` or ``room/<room>``), and
prints one JSON line per message: what the call said (``acked`` true, or false with the error) and when.
Runs until its standard input closes.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("groups", nargs="+", help="feed/<room> or room/<room>")
    parser.add_argument("--interval", type=float, default=0.02)
    args = parser.parse_args()
    django.setup()
    from hypergen_ws import group_send
    from tests.chaos_consumers import chaos_feed, chaos_room

    consumers = {"feed": chaos_feed, "room": chaos_room}
    names = {key: consumers[key.split("/")[0]].group_name(room=key.split("/")[1]) for key in args.groups}
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    number = 0
    while not stop.is_set():
        key = args.groups[number % len(args.groups)]
        number += 1
        message_id, sent = f"{args.name}:{number}", time.time()
        try:
            group_send(names[key], {"id": message_id})
            outcome = {"acked": True}
        except Exception as exc:  # noqa: BLE001 - every failure is an outcome the checker reads
            outcome = {"acked": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
        print(json.dumps({"id": message_id, "group": key, "sent": sent, "answered": time.time(), **outcome}),
              flush=True)
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
