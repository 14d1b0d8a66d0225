"""The notifications page, and three ways to push a notification from HTTP: a sync view, an async view, a thread.

The fourth way is the ``notify`` management command (``python manage.py notify "text"``).
Pushing is POST only, CSRF protected, for logged-in users; the page itself is public.
"""
from __future__ import annotations

import threading
import time

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from .publish import MAX_TEXT_LENGTH, anotify, notify

#: Seconds the background thread waits before publishing, to show that it runs after the response was sent.
THREAD_DELAY = 1.0


def page(request: HttpRequest) -> HttpResponse:
    """Shows every notification published while the page is open."""
    return render(request, "notifications/page.html", {"max_length": MAX_TEXT_LENGTH})


def _text(request: HttpRequest) -> str | None:
    text = request.POST.get("text", "").strip()
    return text if text and len(text) <= MAX_TEXT_LENGTH else None


def _bad_text() -> HttpResponse:
    return HttpResponseBadRequest(f"Send a non-empty 'text' of at most {MAX_TEXT_LENGTH} characters.")


@require_POST
@login_required
def push_sync(request: HttpRequest) -> HttpResponse:
    """Publish from a sync view with ``group_send``."""
    text = _text(request)
    if text is None:
        return _bad_text()
    notify(text, "a sync view")
    return JsonResponse({"ok": True, "via": "sync"})


@require_POST
@login_required
async def push_async(request: HttpRequest) -> HttpResponse:
    """Publish from an async view with ``await agroup_send``."""
    text = _text(request)
    if text is None:
        return _bad_text()
    await anotify(text, "an async view")
    return JsonResponse({"ok": True, "via": "async"})


def _notify_later(text: str) -> None:
    time.sleep(THREAD_DELAY)
    notify(text, "a background thread")


@require_POST
@login_required
def push_thread(request: HttpRequest) -> HttpResponse:
    """Start a plain ``threading.Thread`` that publishes with ``group_send`` after the response has gone."""
    text = _text(request)
    if text is None:
        return _bad_text()
    threading.Thread(target=_notify_later, args=(text,), name="notify-later", daemon=True).start()
    return JsonResponse({"ok": True, "via": "thread", "delay": THREAD_DELAY})
