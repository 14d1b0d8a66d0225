"""Consumers of the chaos run (``tests/support/chaos``; app_label="tests"): history groups, one with presence.

A call publishes its text to the whole group (the default ``send_to``), so a client's calls are one of the
run's publishers: the reply tells the caller that the frame was published.
"""
from __future__ import annotations

from hypergen_ws import NO_PERM_REQUIRED, command, consumer


@consumer(perm=NO_PERM_REQUIRED, path="<slug:room>/", app_label="tests", history=500)
def chaos_feed(consumer, request, text: str, *, room):
    command("append", text)


@consumer(perm=NO_PERM_REQUIRED, path="<slug:room>/", app_label="tests", history=500, presence=True)
def chaos_room(consumer, request, text: str, *, room):
    command("append", text)
