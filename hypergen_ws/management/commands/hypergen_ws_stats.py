"""``python manage.py hypergen_ws_stats``: the traffic counters of a running server (or of this process)."""
from __future__ import annotations

import json
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hypergen_ws import stats
from hypergen_ws.cli import KEY_ENV
from hypergen_ws.client import PublishClient, PublishError

LOCAL_NOTE = (
    "Note: these are the counters of this command's own process, which serves no websockets. Counters are kept "
    "per server process; pass --url http://HOST/hypergen_ws/ --key KEY to read those of a running server."
)


class Command(BaseCommand):
    help = ("Print connections, messages and bytes in/out per consumer and per group. With --url, fetched from a "
            "running server's stats/ endpoint (the process that answers); without, this process's own counters.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", help="where hypergen_ws.urls is included, e.g. http://127.0.0.1:8000/hypergen_ws/")
        parser.add_argument("--key", help=f"an access key from HYPERGEN_WS['PUBLISH_KEYS'] (default: ${KEY_ENV})")
        parser.add_argument("--timeout", type=float, default=10, help="seconds to wait for the server (default 10)")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["url"]:
            key = options["key"] or os.environ.get(KEY_ENV, "")
            if not key:
                raise CommandError(f"No access key: pass --key KEY or set the environment variable {KEY_ENV}.")
            try:
                snapshot = PublishClient(options["url"], key, timeout=options["timeout"]).stats()
            except (ValueError, PublishError) as exc:
                raise CommandError(str(exc)) from None
        else:
            if options["key"]:
                raise CommandError("--key goes with --url: the server to read the counters from.")
            snapshot = stats.snapshot()
            self.stderr.write(self.style.WARNING(LOCAL_NOTE))
        if options["json"]:
            self.stdout.write(json.dumps(snapshot, indent=2))
        else:
            self.stdout.write(stats.format_table(snapshot), ending="")
