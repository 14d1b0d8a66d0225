"""``python manage.py hypergen_ws_consumers``: list every consumer with its route, group and permission."""
from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandParser

from hypergen_ws.core import registry
from hypergen_ws.decorators import all_consumers


class Command(BaseCommand):
    help = "List every @consumer: label, route, group name pattern, permission and options."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")

    @staticmethod
    def _sort_key(spec: Any) -> str:
        try:
            return str(spec.label)
        except ImproperlyConfigured:
            return ""

    def handle(self, *args: Any, **options: Any) -> None:
        registry.discover()
        rows = []
        for spec in sorted(all_consumers(), key=self._sort_key):
            try:
                spec.label
            except ImproperlyConfigured as exc:
                self.stderr.write(self.style.ERROR(str(exc)))
                continue
            placeholders = {k: "{" + k + "}" for k in spec.url_kwarg_names}
            group = ("custom: " + getattr(spec.group_name_func, "__qualname__", "callable")
                     if spec.group_name_func else "hgws." + spec.label + "".join(f".{k}.{{{k}}}" for k in sorted(placeholders)))
            rows.append({
                "label": spec.label, "route": "/" + spec.route, "group": group,
                "perm": spec.permission.describe(), "send_to": spec.send_to,
                "async": spec.is_async, "receive": spec.receive,
            })
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write("No consumers found. Define @consumer functions in an app's consumers.py or views.py.")
            return
        for row in rows:
            self.stdout.write(self.style.SUCCESS(str(row["label"])))
            for key in ("route", "group", "perm", "send_to", "async", "receive"):
                self.stdout.write(f"  {key:8} {row[key]}")
