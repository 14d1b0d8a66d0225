"""``python -m hypergen_ws``: publish to a running server over HTTP, read its traffic counters (as the plain-text
tables of :func:`format_stats`, which ``manage.py hypergen_ws_stats`` prints too), or listen to a consumer's frames.

::

    python -m hypergen_ws publish --url https://example.com/hypergen_ws/ --key KEY \\
        (--group GROUP | --consumer LABEL [--kwarg NAME=VALUE ...]) (--data JSON | --commands JSON)
    python -m hypergen_ws stats --url https://example.com/hypergen_ws/ --key KEY [--json] [--per-process]
    python -m hypergen_ws listen wss://example.com/ws/chat/send_message/vip/ --token TOKEN [--header NAME:VALUE]

The key may come from the environment variable ``HYPERGEN_WS_PUBLISH_KEY`` instead of ``--key``. ``--data -``
(or ``--commands -``) reads the JSON from standard input. Needs only the standard library: no Django settings.
``listen`` prints every frame of the socket as a JSON line until Ctrl-C (the token may come from
``HYPERGEN_WS_TOKEN``); it needs the ``websockets`` package (the extra ``client``).

Exit codes: 0 published; 1 the server refused the request (its explanation is printed); 2 wrong usage (bad
arguments, invalid JSON, no key); 3 the server could not be reached.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from .client import PublishClient, PublishError
from .client.listen import run as run_listen
from .stats.counters import FIELDS

KEY_ENV = "HYPERGEN_WS_PUBLISH_KEY"
TOKEN_ENV = "HYPERGEN_WS_TOKEN"
EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


class UsageError(Exception):
    """Arguments that cannot work; the message says what to change."""


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments naming the group and the payload, shared with ``manage.py hypergen_ws_publish``."""
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--group", help="a group name, e.g. the result of <consumer>.group_name(...)")
    target.add_argument("--consumer", metavar="LABEL",
                        help="a consumer label like chat.send_message; its group for the --kwarg values")
    parser.add_argument("--kwarg", action="append", default=[], metavar="NAME=VALUE",
                        help="a URL kwarg of --consumer (repeat for several)")
    payload = parser.add_mutually_exclusive_group(required=True)
    payload.add_argument("--data", metavar="JSON", help='JSON sent as {"type": "message", "data": ...}; - reads stdin')
    payload.add_argument("--commands", metavar="JSON",
                         help='a JSON list of commands, e.g. \'[["hypergen.append", "messages", "<li>hi</li>"]]\'; '
                              "- reads stdin")


def request_body(args: argparse.Namespace, stdin: TextIO | None = None) -> dict[str, Any]:
    """The publish request body for parsed arguments; ``UsageError`` when they cannot work."""
    body: dict[str, Any] = {}
    if args.group is not None:
        if args.kwarg:
            raise UsageError("--kwarg goes with --consumer, not with --group.")
        body["group"] = args.group
    else:
        body["consumer"] = args.consumer
        body["kwargs"] = parse_kwargs(args.kwarg)
    name = "data" if args.data is not None else "commands"
    text = args.data if args.data is not None else args.commands
    if text == "-":
        text = (stdin or sys.stdin).read()
    try:
        body[name] = json.loads(text)
    except ValueError as exc:
        example = "'{\"text\": \"hi\"}'" if name == "data" else "'[[\"alert\", \"hi\"]]'"
        raise UsageError(f"--{name} is not valid JSON ({exc}); quote it for the shell, e.g. --{name} {example}. "
                         "A plain string needs JSON quotes too: '\"hi\"'.") from None
    if name == "commands" and not isinstance(body[name], list):
        raise UsageError("--commands must be a JSON list of commands, e.g. '[[\"alert\", \"hi\"]]'.")
    return body


def parse_kwargs(items: Sequence[str]) -> dict[str, str]:
    """``["room_name=vip", "n=2"]`` -> ``{"room_name": "vip", "n": "2"}`` (the server converts the values)."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--kwarg {item!r} must look like NAME=VALUE, e.g. --kwarg room_name=vip.")
        if name in out:
            raise UsageError(f"--kwarg {name} is given twice.")
        out[name] = value
    return out


# ---- the counters as plain-text tables -------------------------------------------------------------------
def format_table(snapshot: dict[str, Any]) -> str:
    """A snapshot as a plain-text table, one row per consumer and per group, then the totals."""
    headers = ("open", "total", "msgs in", "bytes in", "msgs out", "bytes out")
    lines = [f"process {snapshot.get('pid')}, up {snapshot.get('uptime', 0):.0f} s"]

    def section(title: str, rows: dict[str, dict[str, int]]) -> None:
        lines.append("")
        if not rows:
            lines.append(f"{title}: none")
            return
        width = max(len(title), *(len(name) for name in rows))
        lines.append(f"{title:<{width}}  " + "  ".join(f"{h:>10}" for h in headers))
        for name, row in rows.items():
            lines.append(f"{name:<{width}}  " + "  ".join(f"{row.get(field, 0):>10}" for field in FIELDS))

    section("consumer", snapshot.get("consumers", {}))
    section("group", snapshot.get("groups", {}))
    section("", {"total": snapshot.get("totals", {})})
    return "\n".join(lines) + "\n"


def format_stats(result: dict[str, Any]) -> str:
    """A stats result as plain text: the processes, then the table of consumers, groups and totals, then the
    events; with per-process rows (``per_process=True``), one table per process as well."""
    processes = result.get("processes", [])
    if result.get("scope") == "cluster":
        head = f"cluster: {len(processes)} live process{'es' if len(processes) != 1 else ''}"
    else:
        only = processes[0] if processes else result  # a single process's snapshot has pid and uptime itself
        head = f"process {only.get('pid')} on {only.get('host')}, up {only.get('uptime') or 0:.0f} s"
    rates = result.get("rates", {})
    lines = [head + f"; {rates.get('messages_in', 0):g} msgs/s in, {rates.get('messages_out', 0):g} msgs/s out"]
    if result.get("scope") == "cluster":
        lines += ["", f"{'process':<40} {'pid':>8} {'up (s)':>9} {'beat (s)':>9} {'open':>7} {'msgs out':>10}"]
        for row in processes:
            totals = row.get("totals", {})
            lines.append(f"{row['id']:<40} {row.get('pid') or '-':>8} {row.get('uptime') or 0:>9.0f} "
                         f"{row.get('beat', 0):>9.1f} {totals.get('connections', 0):>7} "
                         f"{totals.get('messages_out', 0):>10}")
    table = format_table(result).split("\n", 1)[1]  # without its one-process heading
    lines.append(table.rstrip("\n"))
    events = result.get("events", {})
    counted = [(kind, label, code, n) for kind, by_label in events.items() for label, codes in by_label.items()
               for code, n in codes.items()]
    if counted:
        lines += ["", f"{'event':<14} {'consumer':<30} {'code':<24} {'count':>8}"]
        for kind, label, code, n in counted:
            lines.append(f"{kind:<14} {label or '-':<30} {code or '-':<24} {n:>8}")
    if any("consumers" in row for row in processes):
        for row in processes:
            lines += ["", f"---- {row['id']} ----", format_table(row).split("\n", 1)[1].rstrip("\n")]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m hypergen_ws`` argument parser."""
    parser = argparse.ArgumentParser(prog="python -m hypergen_ws",
                                     description="Publish to a hypergen_ws server over HTTP, or read its counters.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{publish,stats,listen}")
    for name, help_text in (("publish", "publish data or commands to a group"),
                            ("stats", "print the traffic counters of a running server")):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--url", required=True,
                         help="where hypergen_ws.urls is included, e.g. https://example.com/hypergen_ws/")
        sub.add_argument("--key", help=f"an access key from the server's HYPERGEN_WS['PUBLISH_KEYS'] "
                                       f"(default: ${KEY_ENV})")
        sub.add_argument("--timeout", type=float, default=10, help="seconds to wait for the server (default 10)")
        if name == "publish":
            add_target_arguments(sub)
        else:
            sub.add_argument("--json", action="store_true", help="print JSON instead of a table")
            sub.add_argument("--per-process", action="store_true",
                             help="also print each server process's own counters (on Redis)")
    listen = commands.add_parser("listen", help="print a consumer's frames as JSON lines until Ctrl-C",
                                 description="print a consumer's frames as JSON lines until Ctrl-C")
    listen.add_argument("url", help="the consumer's websocket URL, e.g. wss://example.com/ws/chat/send_message/vip/")
    listen.add_argument("--token", help=f"a connection token (issue_token(), hypergen_ws/token/; default: ${TOKEN_ENV})")
    listen.add_argument("--header", action="append", default=[], metavar="NAME:VALUE",
                        help="a header for the handshake, e.g. Origin:https://example.com (repeat for several)")
    listen.add_argument("--timeout", type=float, default=10, help="seconds to wait for the first socket (default 10)")
    return parser


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None,
         stdin: TextIO | None = None) -> int:
    """Run the command line; returns the exit code."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    args = build_parser().parse_args(argv)
    if args.command == "listen":
        headers = {}
        for item in args.header:
            name, sep, value = item.partition(":")
            if not sep or not name.strip():
                err.write(f"error: --header {item!r} must look like NAME:VALUE, e.g. Origin:https://example.com.\n")
                return EXIT_USAGE
            headers[name.strip()] = value.strip()
        return run_listen(args.url, args.token or os.environ.get(TOKEN_ENV) or None, out, err, headers=headers,
                          open_timeout=args.timeout)
    key = args.key or os.environ.get(KEY_ENV, "")
    try:
        if not key:
            raise UsageError(f"No access key: pass --key KEY or set the environment variable {KEY_ENV}.")
        try:
            client = PublishClient(args.url, key, timeout=args.timeout)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if args.command == "stats":
            result = client.stats(per_process=args.per_process)
            out.write(json.dumps(result, indent=2) + "\n" if args.json else format_stats(result))
            return EXIT_OK
        answer = client.publish(request_body(args, stdin))
    except UsageError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    except PublishError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_UNREACHABLE if exc.status is None else EXIT_REFUSED
    out.write(f"Published {answer.get('published')} to group {answer.get('group')}.\n")
    return EXIT_OK
