"""Project-level pages: the index of demos, and the login/logout wiring."""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

#: Every demo, as (title, URL name, URL kwargs, one-line explanation). The index page lists them in this order.
DEMOS = [
    ("Chat", "chat:room_list", {},
     "Rooms with stored messages; one @consumer with a permission appends each message for the whole room, "
     "replays what a reconnecting page missed (history=50) and shows who is online (presence=True)."),
    ("Announcements", "chat:room", {"room_name": "lobby"},
     "From a room page, publish to its group from a sync view (consumer_command) and an async view "
     "(aconsumer_command)."),
    ("Shared counter", "counter:page", {},
     "Two async consumers return the rendered fragment; every open page morphs #counter."),
    ("Notifications", "notifications:page", {},
     "Data frames (group_send) from a sync view, an async view, a thread and a management command."),
    ("Messages from the admin", "admin:chat_message_add", {},
     "A chat message added, edited or deleted in the Django admin reaches its room's open pages once the "
     "admin's transaction commits (@model_changes); it needs a staff account."),
]


#: Shown when django-hypergen is installed (settings.HYPERGEN_INSTALLED).
HYPERGEN_DEMO = ("Hypergen chat", "hgdemo:chat", {},
                 "The chat of Hypergen's websocket docs: a page built with django-hypergen calls a "
                 "@consumer(protocol=\"hypergen\") through callback(...), unchanged.")


def index(request: HttpRequest) -> HttpResponse:
    """Links to every demo, with a one-line explanation each."""
    shown = DEMOS + [HYPERGEN_DEMO] if settings.HYPERGEN_INSTALLED else DEMOS
    demos = [
        {"title": title, "url": reverse(name, kwargs=kwargs), "about": about} for title, name, kwargs, about in shown
    ]
    return render(request, "index.html", {"demos": demos})


class LoginView(auth_views.LoginView):
    """Django's login view; the template lists the demo accounts."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change: this browser stays logged in (``update_session_auth_hash()``) and keeps its
    sockets; the user's other sessions are logged out, and their sockets close with 4401 (docs/security.rst)."""

    template_name = "registration/password_change.html"


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    """After a password change."""

    template_name = "registration/password_change_done.html"


class LogoutView(auth_views.LogoutView):
    """Django's logout view (POST only, as Django requires)."""
