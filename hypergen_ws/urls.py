"""HTTP routes of hypergen_ws: ``path("hypergen_ws/", include("hypergen_ws.urls"))``.

``publish/`` (POST) publishes to a group, ``stats/`` (GET) returns the server's traffic counters; both need an
access key from ``HYPERGEN_WS["PUBLISH_KEYS"]`` (see :mod:`hypergen_ws.http`).
"""
from django.urls import path

from . import http

app_name = "hypergen_ws"

urlpatterns = [
    path("publish/", http.publish, name="publish"),
    path("stats/", http.stats_view, name="stats"),
]
