"""Reading, changing and rendering the shared counter (used by the page view and by the consumers)."""
from __future__ import annotations

from django.db.models import F
from django.db.models.functions import Now
from django.template.loader import render_to_string

from .models import Counter

#: The one counter of the demo.
COUNTER_NAME = "shared"
FRAGMENT_TEMPLATE = "counter/_counter.html"


def get_counter() -> Counter:
    return Counter.objects.get_or_create(name=COUNTER_NAME)[0]


async def aget_counter() -> Counter:
    return (await Counter.objects.aget_or_create(name=COUNTER_NAME))[0]


async def achange_counter(delta: int) -> Counter:
    """Add ``delta`` in the database (atomic: ``F()`` expression, no lost updates) and return the fresh row."""
    await aget_counter()
    await Counter.objects.filter(name=COUNTER_NAME).aupdate(value=F("value") + delta, updated=Now())
    return await aget_counter()


def render_counter(counter: Counter) -> str:
    """The ``#counter`` fragment: the same template for the first render and for every live update.

    It touches no database (the row is already loaded), so async code may call it directly.
    """
    return render_to_string(FRAGMENT_TEMPLATE, {"counter": counter})

