"""The counter page."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .state import get_counter


def counter_page(request: HttpRequest) -> HttpResponse:
    """The shared counter, rendered with the fragment the consumers send on every change."""
    return render(request, "counter/counter.html", {"counter": get_counter()})
