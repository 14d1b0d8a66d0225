"""Searchable logs (hypergen_ws.core.logs): every log call of the package carries the event, consumer, group,
user id and code; the events are the documented ones; a JSON formatter writes them as keys."""
from __future__ import annotations

import ast
import json
import logging
import os
import re
import subprocess
import sys

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from hypergen_ws.core.logs import EVENTS, FIELDS, LOGGER_NAME, fields
from hypergen_ws.core.state import ConnectionState, Identity
from hypergen_ws.testing import ConsumerCommunicator
from tests import sample_consumers as sc
from tests.support.servers import REPO_ROOT
from tests.wsutil import application

pytestmark = pytest.mark.django_db(transaction=True)

PACKAGE = REPO_ROOT / "hypergen_ws"
LEVELS = {"debug": "DEBUG", "info": "INFO", "warning": "WARNING", "error": "ERROR", "exception": "ERROR",
          "critical": "CRITICAL"}


def log_calls() -> list[tuple[str, int, str | None, ast.Call]]:
    """Every call of a logger method (or of a ``log`` picked from one) in the package: (file, line, level, call)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in LEVELS and isinstance(func.value, ast.Name) \
                    and func.value.id == "logger":
                found.append((str(path.relative_to(REPO_ROOT)), node.lineno, LEVELS[func.attr], node))
            elif isinstance(func, ast.Name) and func.id == "log":
                found.append((str(path.relative_to(REPO_ROOT)), node.lineno, None, node))
    return found


def event_of(call: ast.Call) -> str | None:
    extra = next((k.value for k in call.keywords if k.arg == "extra"), None)
    if not (isinstance(extra, ast.Call) and isinstance(extra.func, ast.Name) and extra.func.id == "fields"):
        return None
    first = extra.args[0] if extra.args else None
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


def test_every_log_call_names_a_documented_event_with_its_level():
    calls = log_calls()
    assert len(calls) > 40, "the package's log calls were found"
    for where, line, level, node in calls:
        event = event_of(node)
        assert event is not None, f"{where}:{line}: pass extra=fields('<event>', ...) (hypergen_ws.core.logs)"
        assert event in EVENTS, f"{where}:{line}: {event!r} is not in hypergen_ws.core.logs.EVENTS"
        if level is not None and event not in ("layer_receive_failed",):  # WARNING for a socket, ERROR for a group
            assert EVENTS[event][0] == level, f"{where}:{line}: {event} is logged at {level}, listed as {EVENTS[event][0]}"
    used = {event_of(node) for _where, _line, _level, node in calls}
    assert set(EVENTS) == used, f"listed but never logged: {set(EVENTS) - used}"


def test_every_module_logs_to_the_one_logger():
    for path in PACKAGE.rglob("*.py"):
        for name in re.findall(r"getLogger\(([^)]*)\)", path.read_text()):
            assert name in ('"hypergen_ws"', "LOGGER_NAME"), f"{path}: getLogger({name})"
    assert LOGGER_NAME == "hypergen_ws"


def test_the_docs_list_every_event_with_its_level():
    page = (REPO_ROOT / "docs" / "operations.rst").read_text()
    section = page[page.index("\nLogs\n"):]
    rows = dict(re.findall(r"^``(\w+)``\s+(DEBUG|INFO|WARNING|ERROR)\b", section, re.M))
    assert rows == {event: level for event, (level, _when) in EVENTS.items()}


def test_fields_from_a_state_a_user_or_nothing():
    state = ConnectionState(primary_group="hgws.a.b", identity=Identity("u:7", 7, "ann"))
    assert fields("bad_frame", consumer="a.b", state=state, code=1009) == {
        "event": "bad_frame", "consumer": "a.b", "group": "hgws.a.b", "user_id": 7, "code": "1009"}
    assert fields("bad_frame", group="other", state=state)["group"] == "other"
    assert fields("presence_remove_failed", user=Identity("u:8", 8, "bob"))["user_id"] == 8
    assert fields("redis_data_lost") == dict.fromkeys(FIELDS) | {"event": "redis_data_lost"}


async def test_records_carry_the_fields(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    ann = await sync_to_async(User.objects.create_user)("log_ann", password="x")
    async with ConsumerCommunicator(sc.guarded, user=ann, application=application) as refused:
        assert refused.close_code == 4403
    async with ConsumerCommunicator(sc.echo, user=ann, application=application, room="logs") as echo:
        await echo.send("{not json")
        assert (await echo.receive())["code"] == "bad_request"
    async with ConsumerCommunicator(sc.boom, application=application) as boom:
        assert (await boom.call()).error is not None
    by_event = {record.event: record for record in caplog.records if record.name == LOGGER_NAME}
    denied = by_event["connection_refused"]
    assert (denied.consumer, denied.user_id, denied.code, denied.levelname) == ("tests.guarded", ann.pk, "4403", "WARNING")
    bad = by_event["bad_frame"]
    assert (bad.consumer, bad.group, bad.user_id, bad.code) == (
        "tests.echo", "hgws.tests.echo.room.logs", ann.pk, "bad_request")
    error = by_event["consumer_error"]
    assert (error.consumer, error.user_id, error.code, error.levelname) == ("tests.boom", None, "server_error", "ERROR")
    assert error.exc_info is not None


def test_a_json_formatter_writes_the_fields_as_keys():
    """The LOGGING of docs/operations.rst, from the page, with python-json-logger, in a process of its own."""
    script = """
import asyncio, logging.config, sys
import django
django.setup()
from tests.test_operations_docs import page_settings
logging.config.dictConfig(page_settings()["LOGGING"])
from hypergen_ws.testing import ConsumerCommunicator
from tests import sample_consumers as sc
from tests.wsutil import application

async def main():
    async with ConsumerCommunicator(sc.guarded, application=application) as refused:
        assert refused.close_code == 4401
    async with ConsumerCommunicator(sc.echo, application=application, room="json") as echo:
        await echo.send("[1, 2")
        await echo.receive()

asyncio.run(main())
"""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="testproject.settings", PYTHONPATH=str(REPO_ROOT),
               HYPERGEN_WS_PUBLISH_KEY="json-logs-test-key-0123456789")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, env=env,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    by_event = {line["event"]: line for line in lines}
    assert by_event["connection_refused"] | {"asctime": None} == {
        "asctime": None, "levelname": "WARNING", "name": "hypergen_ws", "event": "connection_refused",
        "consumer": "tests.guarded", "group": None, "user_id": None, "code": "4401",
        "message": by_event["connection_refused"]["message"]}
    assert by_event["bad_frame"]["group"] == "hgws.tests.echo.room.json"
    assert by_event["bad_frame"]["code"] == "bad_request"
