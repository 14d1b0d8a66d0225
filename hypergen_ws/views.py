"""HTTP views for operators: Prometheus metrics and the live dashboard page (docs/operations.rst).

* ``GET metrics/``: the metrics in the Prometheus text format (:mod:`hypergen_ws.stats.metrics`), for a staff user's
  session or ``Authorization: Bearer <key>`` with one of ``HYPERGEN_WS["PUBLISH_KEYS"]``. 404 when
  ``HYPERGEN_WS["METRICS"]`` is False, 501 when ``prometheus_client`` is not installed.
* ``GET dashboard/``: the dashboard page, staff only (others are sent to ``LOGIN_URL``, or get 403 when logged
  in). One self-contained page (its CSS and JavaScript, the hypergen_ws client included, are inline): it opens
  the socket of :data:`hypergen_ws.dashboard.dashboard` and draws every update.
* ``GET token/``: a connection token for the logged-in user (docs/clients.rst):
  ``{"token": "...", "expires_at": <unix seconds>, "expires_in": <seconds>}``; 403 for an anonymous user.
  A GET that changes nothing (a token is signed, not stored), so CSRF cannot abuse it: another site's page may
  make the browser request it but cannot read the answer (no CORS headers; a JSON object is not a script), and
  ``Cache-Control: no-store`` keeps it out of caches.
"""
from __future__ import annotations

import time
from functools import cache
from pathlib import Path
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.csrf import csrf_exempt

from .core import conf
from .core.identity import aissue_token, max_age_of
from .dashboard import COMMAND, dashboard, is_staff
from .stats import metrics
from .http import HttpError, _method, authenticate, error_response

__all__ = ["dashboard_view", "metrics_view", "token_view"]

CLIENT_JS = Path(__file__).resolve().parent / "static" / "hypergen_ws" / "hypergen-ws.js"
#: Groups listed on the dashboard (those with the most connections).
TOP_GROUPS = 20


async def _staff_session(request: HttpRequest) -> bool:
    auser = getattr(request, "auser", None)  # set by AuthenticationMiddleware
    return auser is not None and is_staff(await auser())


async def _not_staff(request: HttpRequest) -> str | None:
    """The name of the logged-in user who is not staff, when the request brings no key: they get a message that
    says so, rather than one about access keys they were never meant to have."""
    auser = getattr(request, "auser", None)
    if auser is None or request.headers.get("Authorization"):
        return None
    user = await auser()
    return str(user.get_username()) if getattr(user, "is_authenticated", False) else None


@csrf_exempt
async def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET metrics/``: the Prometheus metrics (see the module docstring)."""
    try:
        _method(request, ("GET", "HEAD"))
        if not await _staff_session(request):
            username = await _not_staff(request)
            if username is not None:
                raise HttpError(403, f"You are logged in as {username!r}, who is not an active staff user: the "
                                     "metrics are for staff users (is_staff) and for scrapers with an access key "
                                     "('Authorization: Bearer <key>', HYPERGEN_WS['PUBLISH_KEYS']).")
            authenticate(request)
        if not metrics.available():
            raise HttpError(501, f"Prometheus metrics need prometheus_client, which is not installed: "
                                 f"{metrics.INSTALL_HINT}, then restart the server.")
        if not metrics.enabled():
            raise HttpError(404, "Prometheus metrics are turned off on this server: HYPERGEN_WS['METRICS'] is "
                                 "False. Set it to True (or remove it) to turn them on.")
    except HttpError as exc:
        return error_response(exc)
    body, content_type = metrics.exposition(request.headers.get("Accept", ""))
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response


@cache
def client_script() -> SafeString:
    """The JavaScript client, to inline in the page (it contains no ``</script>``)."""
    text = CLIENT_JS.read_text(encoding="utf-8")
    if "</script" in text.lower():
        raise RuntimeError(f"{CLIENT_JS} contains '</script' and cannot be inlined")
    return mark_safe(text)  # noqa: S308 - the package's own file


async def dashboard_view(request: HttpRequest) -> HttpResponse:
    """``GET dashboard/``: the live dashboard page, staff only."""
    auser = getattr(request, "auser", None)
    if auser is None:
        raise PermissionDenied("The dashboard needs django.contrib.auth's AuthenticationMiddleware in MIDDLEWARE.")
    user = await auser()
    if not getattr(user, "is_authenticated", False):
        return redirect_to_login(request.get_full_path())
    if not is_staff(user):
        raise PermissionDenied("The dashboard is for staff users only.")
    context: dict[str, Any] = {
        "ws_url": dashboard.reverse(),
        "command": COMMAND,
        "interval": conf.get("DASHBOARD_INTERVAL"),
        "top_groups": TOP_GROUPS,
        "client_js": client_script(),
    }
    response = render(request, "hypergen_ws/dashboard.html", context)
    response["Cache-Control"] = "no-store"
    return response


async def token_view(request: HttpRequest) -> HttpResponse:
    """``GET token/``: a connection token for the logged-in user, with its expiry (see the module docstring)."""
    try:
        _method(request, ("GET", "HEAD"))
        auser = getattr(request, "auser", None)
        if auser is None:
            raise HttpError(500, "The token view needs django.contrib.auth's AuthenticationMiddleware in MIDDLEWARE.")
        user = await auser()
        if not getattr(user, "is_authenticated", False):
            raise HttpError(403, "Log in first: a connection token is issued to a logged-in user only.")
    except HttpError as exc:
        return error_response(exc)
    max_age = max_age_of(None)
    token = await aissue_token(user, max_age)
    response = JsonResponse({"token": token, "expires_at": round(time.time() + max_age, 3), "expires_in": max_age})
    response["Cache-Control"] = "no-store, private"
    response["X-Content-Type-Options"] = "nosniff"
    return response
