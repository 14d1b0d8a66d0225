"""Consumers in Hypergen's protocol mode, for tests/test_hypergen.py (app_label="tests")."""
from __future__ import annotations

import datetime
from typing import Any

from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator  # django-hypergen frames: ConsumerCommunicator does not decode them
from django.contrib.auth.models import AnonymousUser

from hypergen_ws import NO_PERM_REQUIRED, autoconsumers, command, consumer


@consumer(perm=NO_PERM_REQUIRED, path="<slug:room>/", app_label="tests", protocol="hypergen")
def hg_note(consumer: Any, request: Any, event_type: str, *args: Any, room: str) -> None:
    """Like Hypergen's ChatConsumer: the first argument says what happened."""
    if event_type == "note":
        text, = args
        command("hypergen.append", "notes", f"<li>{text}</li>")
    elif event_type == "when":
        day, = args
        command("hypergen.append", "notes", f"<li>{type(day).__name__}:{day.isoformat()}</li>")
    elif event_type == "values":
        command("values", *(repr(value) for value in args))
    elif event_type == "boom":
        raise ZeroDivisionError("boom in hg_note")


@consumer(perm=NO_PERM_REQUIRED, app_label="tests", protocol="hypergen", send_to="caller", target_id="counter")
def hg_counter(consumer: Any, request: Any, n: int) -> str:
    return f"<b>{n + 1}</b>"


@consumer(perm="auth.view_user", app_label="tests", protocol="hypergen")
def hg_guarded(consumer: Any, request: Any) -> None:
    command("never")


@hg_counter.on_connect
def hg_counter_hello(consumer: Any, request: Any) -> None:
    command("hypergen.morph", "counter", f"<b>0</b> at {datetime.date(2026, 12, 1).isoformat()}")


application = URLRouter(autoconsumers("tests.hypergen_consumers"))


async def hypergen_socket(path: str, user: Any = None) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, path)
    comm.scope["user"] = user if user is not None else AnonymousUser()
    connected, _ = await comm.connect()
    assert connected
    return comm
