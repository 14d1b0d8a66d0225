"""Consumers of the history, recovery, presence, groups and expiry tests (app_label="tests")."""
from __future__ import annotations

from channels.routing import URLRouter

from hypergen_ws import NO_PERM_REQUIRED, autoconsumers, command, consumer


@consumer(perm=NO_PERM_REQUIRED, path="<slug:room>/", app_label="tests", history=50)
def rec_feed(consumer, request, text: str, *, room):
    """Keeps 50 frames per room."""
    command("append", text)


@consumer(perm=NO_PERM_REQUIRED, path="<slug:room>/", app_label="tests", history=3)
def rec_short(consumer, request, text: str, *, room):
    command("append", text)


@consumer(perm=NO_PERM_REQUIRED, app_label="tests", history=20,
          group_name=lambda c: "rec.custom." + (c.scope["query_string"].decode() or "none").replace("=", "-"))
async def rec_custom(consumer, request, topic: str):
    await consumer.join("rec.topic." + topic)
    return [["joined", topic]]


@consumer(perm=NO_PERM_REQUIRED, path="<slug:room>/", app_label="tests", presence=True)
def rec_room(consumer, request, text: str, *, room):
    command("said", text)


@consumer(perm=NO_PERM_REQUIRED, path="<slug:room>/", app_label="tests", history=10, expires=0.3)
def rec_brief(consumer, request, *, room):
    pass


@consumer(perm=NO_PERM_REQUIRED, path="<slug:room>/", app_label="tests")
def rec_plain(consumer, request, *, room):
    pass


@consumer(perm=NO_PERM_REQUIRED, path="<slug:room>/", app_label="tests", history=1000)
def rec_deploy(consumer, request, *, room):
    """Keeps 1,000 frames per room: enough for a publisher that goes on while the clients reconnect."""


@consumer(perm=NO_PERM_REQUIRED, path="<slug:room>/", app_label="tests", frames="json")
def rec_raw(consumer, request, payload, *, room):
    """A raw JSON consumer: its clients cannot answer pings, so it gets none."""
    command("raw", payload)


application = URLRouter(autoconsumers(__name__))
