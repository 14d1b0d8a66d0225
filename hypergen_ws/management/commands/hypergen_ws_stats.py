"""``python manage.py hypergen_ws_stats``: the traffic counters of every server process (on Redis), or of one."""
from __future__ import annotations

import json
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hypergen_ws.cli import KEY_ENV, format_stats
from hypergen_ws.client import PublishClient, PublishError
from hypergen_ws.stats.cluster import get_stats

LOCAL_NOTE = (
    "Note: these are the counters of this command's own process, which serves no websockets: without Redis, "
    "counters are kept in each server process. Pass --url http://HOST/hypergen_ws/ --key KEY to read those of a "
    "running server."
)
NO_PROCESS_NOTE = "Note: no server process reports to this Redis right now (none has sockets open, or none runs)."


class Command(BaseCommand):
    help = ("Print connections, messages and bytes in/out per consumer and per group, and the events (refusals, "
            "errors, slow clients, ...). On Redis: of every live server process, summed, read from Redis; with "
            "--url, from a running server's stats/ endpoint; else this process's own counters.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", help="where hypergen_ws.urls is included, e.g. http://127.0.0.1:8000/hypergen_ws/")
        parser.add_argument("--key", help=f"an access key from HYPERGEN_WS['PUBLISH_KEYS'] (default: ${KEY_ENV})")
        parser.add_argument("--timeout", type=float, default=10, help="seconds to wait for the server (default 10)")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
        parser.add_argument("--per-process", action="store_true",
                            help="also print each server process's own counters")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["url"]:
            key = options["key"] or os.environ.get(KEY_ENV, "")
            if not key:
                raise CommandError(f"No access key: pass --key KEY or set the environment variable {KEY_ENV}.")
            try:
                client = PublishClient(options["url"], key, timeout=options["timeout"])
                result = client.stats(per_process=options["per_process"])
            except (ValueError, PublishError) as exc:
                raise CommandError(str(exc)) from None
        else:
            if options["key"]:
                raise CommandError("--key goes with --url: the server to read the counters from.")
            try:
                result = get_stats(per_process=options["per_process"])
            except Exception as exc:
                raise CommandError(f"Reading the stats from Redis failed ({type(exc).__name__}: {exc}); is Redis "
                                   "reachable? Or pass --url to ask a server.") from None
            if result["scope"] == "process":
                self.stderr.write(self.style.WARNING(LOCAL_NOTE))
            elif not result["processes"]:
                self.stderr.write(self.style.WARNING(NO_PROCESS_NOTE))
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
        else:
            self.stdout.write(format_stats(result), ending="")
