"""HTTP routes of hypergen_ws: ``path("hypergen_ws/", include("hypergen_ws.urls"))``.

``publish/`` (POST) publishes to a group, ``stats/`` (GET) returns the traffic counters (of every live process on
Redis); both need an access key from ``HYPERGEN_WS["PUBLISH_KEYS"]`` (see :mod:`hypergen_ws.http`). ``metrics/``
(GET) serves the Prometheus metrics to the same keys or to a staff user's session, and ``dashboard/`` is the live
dashboard page for staff users, and ``token/`` (GET) gives a logged-in user a connection token (see
:mod:`hypergen_ws.views`).
"""
from django.urls import path

from . import http, views

app_name = "hypergen_ws"

urlpatterns = [
    path("publish/", http.publish, name="publish"),
    path("stats/", http.stats_view, name="stats"),
    path("metrics/", views.metrics_view, name="metrics"),
    path("dashboard/", views.dashboard_view, name="dashboard"),
    path("token/", views.token_view, name="token"),
]
