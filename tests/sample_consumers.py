"""Consumers used by the tests (outside any installed app, hence app_label="tests")."""
from __future__ import annotations

import asyncio
from typing import Any

from django.core.exceptions import PermissionDenied
from django.utils.html import format_html

from hypergen_ws import NO_PERM_REQUIRED, command, consumer
from hypergen_ws.consumers import HypergenConsumer


@consumer(perm=NO_PERM_REQUIRED, path="<slug:room>/", app_label="tests")
def echo(consumer, request, text: str, *, room):
    """Appends the text for the whole room."""
    command("hypergen.append", "messages", format_html("<li>{}</li>", text))


@consumer(perm=NO_PERM_REQUIRED, path="<slug:room>/", app_label="tests")
async def aecho(consumer, request, text, count=1, *, room):
    for _ in range(count):
        command("hypergen.append", "messages", f"{room}:{text}")


@consumer(perm="auth.view_user", app_label="tests")
def guarded(consumer, request, text):
    command("said", request.user.username, text)


@consumer(perm=["auth.view_user", "auth.add_user"], any_perm=True, app_label="tests")
def guarded_any(consumer, request):
    command("ok")


def _owner_only(user, *, owner):
    return user.is_authenticated and user.username == owner


@consumer(perm=_owner_only, path="<str:owner>/", app_label="tests")
def private(consumer, request, *, owner):
    command("private", owner)


async def _async_check(user, *, n):
    await asyncio.sleep(0)
    return n % 2 == 0


@consumer(perm=_async_check, path="<int:n>/", app_label="tests")
async def even_only(consumer, request, *, n):
    command("even", n)


@consumer(perm=NO_PERM_REQUIRED, target_id="counter", app_label="tests")
def counter(consumer, request, value):
    return f"<b>{value}</b>"


@consumer(perm=NO_PERM_REQUIRED, send_to="caller", app_label="tests")
def whisper(consumer, request, text):
    consumer.calls = getattr(consumer, "calls", 0) + 1
    return [["whisper", text, consumer.calls]]


@consumer(perm=NO_PERM_REQUIRED, app_label="tests")
def boom(consumer, request):
    raise ZeroDivisionError("division by zero in boom")


@consumer(perm=NO_PERM_REQUIRED, app_label="tests")
def refuse(consumer, request):
    raise PermissionDenied("Only on Tuesdays.")


@consumer(perm=NO_PERM_REQUIRED, app_label="tests", receive=False)
def listen_only(consumer, request):
    command("never")


class Handlers(HypergenConsumer):
    async def chat_note(self, message: dict[str, Any]) -> None:
        await self.send_json({"type": "note", "text": message["text"]})

    async def chat_bye(self, message: dict[str, Any]) -> None:
        await self.close(code=4000, reason=message["reason"])

    async def chat_crash(self, message: dict[str, Any]) -> None:
        raise RuntimeError("a layer handler crashed")


@consumer(perm=NO_PERM_REQUIRED, app_label="tests", consumer_class_base=Handlers)
def with_handlers(consumer, request):
    pass


@consumer(perm=NO_PERM_REQUIRED, app_label="tests",
          group_name=lambda c: "custom." + c.scope["query_string"].decode().replace("=", "-"))
async def custom_group(consumer, request, topic):
    await consumer.join("topic." + topic)
    return [["joined", topic]]


@consumer(perm=NO_PERM_REQUIRED, re_path=r"^(?P<year>[0-9]{4})/(?P<slug>[-\w]+)/$", app_label="tests")
def archive(consumer, request, *, year, slug):
    command("archive", year, slug)


@consumer(perm=NO_PERM_REQUIRED, path="<slug:room>/", app_label="tests")
def positional_kwarg(consumer, request, room, text):
    command("pos", room, text)


@consumer(perm=NO_PERM_REQUIRED, send_to="caller", app_label="tests")
def meta_echo(consumer, request, *args):
    """Sends the caller its arguments and the call's meta."""
    command("meta", list(args), consumer.meta)


@consumer(perm=NO_PERM_REQUIRED, app_label="tests")
def nan_result(consumer, request):
    """Returns commands that are not JSON (a bug in the app): the caller gets server_error."""
    return [["alert", float("nan")]]
