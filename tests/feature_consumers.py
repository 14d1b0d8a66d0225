"""Consumers for the hook, raw-frame, stats and HTTP publishing tests (app_label="tests")."""
from __future__ import annotations

import asyncio
from typing import Any

from channels.routing import URLRouter
from django.core.exceptions import PermissionDenied

from hypergen_ws import NO_PERM_REQUIRED, agroup_send, autoconsumers, command, consumer
from hypergen_ws.consumers import HypergenConsumer

#: What the hooks saw, in order: ("connect" | "disconnect", consumer label, room, close code).
EVENTS: list[tuple[Any, ...]] = []


# ---- hooks --------------------------------------------------------------------------------------------------
@consumer(perm=NO_PERM_REQUIRED, path="<slug:room>/", app_label="tests")
def hooked(consumer, request, text: str, *, room):
    if text == "boom":
        raise ValueError("boom in hooked")
    command("said", room, text)


@hooked.on_connect
def hooked_connect(consumer, request, *, room):
    EVENTS.append(("connect", "hooked", room, None))
    consumer.joined_as = f"guest-{len(EVENTS)}"
    command("state", room, consumer.joined_as)


@hooked.on_disconnect
async def hooked_disconnect(consumer, request, room):  # a URL kwarg bound by name, as a plain parameter
    EVENTS.append(("disconnect", "hooked", room, consumer.close_code))
    command("left", room, consumer.joined_as)


@consumer(perm=NO_PERM_REQUIRED, app_label="tests")
def ordered(consumer, request):
    pass


@ordered.on_connect
async def ordered_connect(consumer, request):
    # A group frame published while the hook runs: the new client still gets its initial state first.
    await agroup_send(ordered.group_name(), "published during on_connect")
    await asyncio.sleep(0.01)
    return [["state", "initial"]]


@consumer(perm="auth.view_user", app_label="tests")
def hooked_guarded(consumer, request):
    pass


@hooked_guarded.on_connect
def hooked_guarded_connect(consumer, request):
    EVENTS.append(("connect", "hooked_guarded", None, None))


@hooked_guarded.on_disconnect
def hooked_guarded_disconnect(consumer, request):
    EVENTS.append(("disconnect", "hooked_guarded", None, None))


@consumer(perm=NO_PERM_REQUIRED, path="<slug:how>/", app_label="tests")
def failing_connect(consumer, request, *, how):
    pass


@failing_connect.on_connect
def failing_connect_hook(consumer, request, *, how):
    if how == "denied":
        raise PermissionDenied("Room is full.")
    raise RuntimeError("database is down")


@failing_connect.on_disconnect
def failing_connect_gone(consumer, request, *, how):
    EVENTS.append(("disconnect", "failing_connect", how, consumer.close_code))


class Crashing(HypergenConsumer):
    async def crash_now(self, message: dict[str, Any]) -> None:
        raise RuntimeError("a layer handler crashed")


@consumer(perm=NO_PERM_REQUIRED, app_label="tests", consumer_class_base=Crashing)
def crashing(consumer, request):
    pass


@crashing.on_disconnect
def crashing_gone(consumer, request):
    EVENTS.append(("disconnect", "crashing", None, consumer.close_code))


@crashing.on_disconnect
def crashing_gone_badly(consumer, request):
    raise KeyError("a broken disconnect hook")


@crashing.on_disconnect
def crashing_gone_after(consumer, request):
    EVENTS.append(("disconnect-after", "crashing", None, None))


# ---- one-way ----------------------------------------------------------------------------------------------
@consumer(perm=NO_PERM_REQUIRED, app_label="tests", receive=False)
def ticker(consumer, request):
    raise AssertionError("a receive=False consumer's function is never called")


@ticker.on_connect
def ticker_connect(consumer, request):
    return [["ticker.state", "open"]]


# ---- raw frames ---------------------------------------------------------------------------------------------
@consumer(perm=NO_PERM_REQUIRED, path="<slug:room>/", app_label="tests", frames="json")
def raw_json(consumer, request, payload, *, room):
    command("json", room, payload)


@consumer(perm=NO_PERM_REQUIRED, app_label="tests", frames="text", send_to="caller")
def raw_text(consumer, request, text: str):
    if text == "boom":
        raise ValueError("boom in raw_text")
    return [["text", text.upper()]]


@consumer(perm=NO_PERM_REQUIRED, app_label="tests", frames="bytes")
async def raw_bytes(consumer, request, data):
    command("bytes", len(data), data.hex())


@consumer(perm="auth.view_user", app_label="tests", frames="text")
def raw_guarded(consumer, request, text):
    command("guarded", request.user.username, text)


@consumer(perm=NO_PERM_REQUIRED, app_label="tests", frames="json", target_id="box")
def raw_morph(consumer, request, payload: dict):
    return f"<p>{payload['n']}</p>"


application = URLRouter(autoconsumers(__name__))

