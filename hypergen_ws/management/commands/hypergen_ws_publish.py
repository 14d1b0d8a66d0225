"""``python manage.py hypergen_ws_publish``: publish data or commands to a group through the channel layer."""
from __future__ import annotations

import argparse
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hypergen_ws.core import conf, registry
from hypergen_ws.decorators import get_consumer
from hypergen_ws.cli import UsageError, add_target_arguments, request_body
from hypergen_ws.core.groups import check_group_name
from hypergen_ws.core.protocol import check_commands
from hypergen_ws.publish import consumer_command, group_send

IN_MEMORY_ERROR = (
    "Nothing was published: the channel layer is the in-memory layer, which lives inside one process. This command "
    "runs in its own process, so it cannot reach websocket clients of a server running in another process. Use "
    "channels_redis (CHANNEL_LAYERS with RedisChannelLayer) or publish over HTTP to the running server: "
    "python -m hypergen_ws publish --url http://HOST/hypergen_ws/ --key KEY ... "
    "(pass --in-process to publish to this process's own in-memory layer on purpose)."
)
IN_PROCESS_NOTE = ("Note: published to this process's in-memory layer only (--in-process); no other process's "
                   "websocket clients can receive it.")


class Command(BaseCommand):
    help = ("Publish data or commands to a group through the channel layer (Redis), from this process. "
            "To publish to a server over HTTP, use `python -m hypergen_ws publish`.")

    def add_arguments(self, parser: CommandParser) -> None:
        add_target_arguments(parser)
        parser.add_argument(
            "--in-process", action="store_true",
            help="publish even when the channel layer is the in-memory one, whose messages stay in this process "
                 "(without it, that is an error: no server can receive them)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            body = request_body(argparse.Namespace(**options))
        except UsageError as exc:
            raise CommandError(str(exc)) from None
        group = self._group(body)
        layer = get_channel_layer(conf.get("CHANNEL_LAYER"))
        if layer is None:
            raise CommandError(f"No channel layer {conf.get('CHANNEL_LAYER')!r} in settings.CHANNEL_LAYERS; "
                               "configure one (see `manage.py check`).")
        in_memory = isinstance(layer, InMemoryChannelLayer)
        if in_memory and not options.get("in_process"):
            try:  # say first what is wrong with the arguments, if anything
                check_group_name(group)
                if "commands" in body:
                    check_commands(body["commands"])
            except (TypeError, ValueError) as exc:
                raise CommandError(str(exc)) from None
            raise CommandError(IN_MEMORY_ERROR)
        try:
            if "commands" in body:
                consumer_command(group, body["commands"])
            else:
                group_send(group, body["data"])
        except (TypeError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        except Exception as exc:
            raise CommandError(f"Publishing to {group} failed ({type(exc).__name__}: {exc}); is the channel layer "
                               "(Redis) reachable?") from None
        kind = "commands" if "commands" in body else "message"
        self.stdout.write(f"Published {kind} to group {group}.")
        if in_memory:
            self.stderr.write(self.style.WARNING(IN_PROCESS_NOTE))

    @staticmethod
    def _group(body: dict[str, Any]) -> str:
        if "group" in body:
            return str(body["group"])
        registry.discover()
        try:
            spec = get_consumer(body["consumer"])
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        if spec.group_name_func is not None:
            raise CommandError(f"{spec.label} picks its groups with group_name=...; publish with --group instead.")
        try:
            return spec.group_name(**body["kwargs"])
        except (TypeError, ValueError, ImproperlyConfigured) as exc:
            raise CommandError(f"--kwarg values do not fit {spec.label}: {exc}") from None
